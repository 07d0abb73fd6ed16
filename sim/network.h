// File: sim/network.h
// -----------------------------------------------------------------------------
//
// The simulated network between a World's hosts. A host binds an `Endpoint`
// on a port; endpoints exchange byte messages (`std::string` payloads; encode
// typed messages with whatever serialization you use: that is the one seam).
//
//   * Each message takes a seeded latency drawn from its link's
//     `LinkOptions` (per ordered pair of hosts; `SetDefaultLink` for all).
//     Links are FIFO unless the `reorder` rate lets a message overtake.
//   * Loss and duplication are seeded per message.
//   * Partitions cut links by host sets: `Partition(a, b)` both ways,
//     `PartitionOneWay(from, to)` one way; `Heal()` restores all. A message
//     sent across a cut is dropped. (Messages already in flight when a cut
//     starts still arrive, as packets already past the switch would.)
//   * A link holds at most `queue_limit` messages (sent, not yet received);
//     a send to a full link returns ResourceExhausted, or with
//     `drop_when_full` is dropped and counted.
//   * Every drop, duplicate and partition change is a world event; sent and
//     delivered messages are counted (`World::Counters()`).
//
// What `Send` does with bad input (nothing is silent):
//   * from a crashed host, or on a closed endpoint: FailedPrecondition;
//   * to a host that does not exist, or a port the destination host never
//     bound: NotFound (a typo, not a network condition);
//   * to a port that was bound but is closed now (its host crashed and has
//     not bound it again): OK, and the message is dropped as
//     "no endpoint" on arrival, like a datagram to a closed port.
//
// `Recv` waits for the next message; `Recv(timeout)` gives up with
// DeadlineExceeded. When the endpoint closes (its host crashes) a waiting
// `Recv` returns Unavailable. One task receives from an endpoint at a time;
// a second concurrent `Recv` returns FailedPrecondition.
//
// This header defines:
//   * `simsched::Address`, `simsched::Message`
//   * `simsched::Endpoint`, `simsched::Network`
//
// Example:
//
//   absl::StatusOr<simsched::Endpoint> ep = server.Bind(7000);
//   host.Spawn([ep = std::move(*ep)]() mutable -> simsched::Co<void> {
//     while (true) {
//       absl::StatusOr<simsched::Message> m = co_await ep.Recv();
//       if (!m.ok()) co_return;                    // closed: host crashed
//       (void)ep.Send(m->from, "pong:" + m->payload);
//     }
//   });

#ifndef SIMSCHED_SIM_NETWORK_H_
#define SIMSCHED_SIM_NETWORK_H_

#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/scheduler.h"
#include "scheduler/source_location.h"
#include "sim/fault_plan.h"

namespace simsched {

class Host;
class Network;

namespace internal {
struct EndpointState;
class WorldCore;
}  // namespace internal

// Address
//
// A host name and a port: "kv1:7000". Not an aggregate on purpose: g++ 12
// mis-destroys an aggregate temporary (`Address{...}` without a
// constructor) passed by value inside a `co_await` expression.
struct Address {
  Address() = default;
  Address(std::string host, uint32_t port) : host(std::move(host)), port(port) {}

  std::string host;
  uint32_t port = 0;

  std::string ToString() const;
  friend bool operator==(const Address&, const Address&) = default;
};

// Message
struct Message {
  Address from;
  Address to;
  std::string payload;
  // Unique per send (a duplicate carries the same id).
  uint64_t id = 0;
};

// Endpoint
//
// A bound port. Move-only; destroying it unbinds the port.
class Endpoint {
 public:
  Endpoint() = default;
  Endpoint(Endpoint&&) noexcept = default;
  Endpoint& operator=(Endpoint&& other) noexcept;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;
  ~Endpoint();

  const Address& address() const;
  bool IsOpen() const;

  // Send()
  //
  // Hands `payload` to the network for `to`. See the file comment for errors.
  absl::Status Send(const Address& to, std::string payload);

  class RecvAwaiter {
   public:
    RecvAwaiter(std::shared_ptr<internal::EndpointState> state, std::optional<Duration> timeout,
                SourceLocation location)
        : state_(std::move(state)), timeout_(timeout), location_(location) {}
    RecvAwaiter(const RecvAwaiter&) = delete;
    RecvAwaiter& operator=(const RecvAwaiter&) = delete;
    ~RecvAwaiter();
    bool await_ready();
    void await_suspend(std::coroutine_handle<>);
    absl::StatusOr<Message> await_resume();

   private:
    std::shared_ptr<internal::EndpointState> state_;
    std::optional<Duration> timeout_;
    SourceLocation location_;
    Instant deadline_ = Instant::max();
    bool waiting_ = false;
  };

  // Recv()
  //
  // The next message (see the file comment for errors).
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  RecvAwaiter Recv(SourceLocation location) { return RecvAwaiter(state_, std::nullopt, location); }
  RecvAwaiter Recv(Duration timeout, SourceLocation location) {
    return RecvAwaiter(state_, timeout, location);
  }
  // The call site as scalars rather than a defaulted SourceLocation: g++
  // keeps a `co_await` expression's class-type temporaries in the frame,
  // across the suspension (16 bytes of every waiting frame; see Sleep()).
  RecvAwaiter Recv(CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION()) {
    return RecvAwaiter(state_, std::nullopt, SourceLocation::current(site, function));
  }
  RecvAwaiter Recv(Duration timeout, CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION()) {
    return RecvAwaiter(state_, timeout, SourceLocation::current(site, function));
  }
#else
  RecvAwaiter Recv(SourceLocation location = SourceLocation::current()) {
    return RecvAwaiter(state_, std::nullopt, location);
  }
  RecvAwaiter Recv(Duration timeout, SourceLocation location = SourceLocation::current()) {
    return RecvAwaiter(state_, timeout, location);
  }
#endif

  // Close()
  //
  // Unbinds the port; a waiting Recv returns Unavailable, unread messages
  // are dropped.
  void Close();

 private:
  friend class Network;
  explicit Endpoint(std::shared_ptr<internal::EndpointState> state) : state_(std::move(state)) {}
  std::shared_ptr<internal::EndpointState> state_;
};

// Network
//
// Owned by the World (`world.network()`).
class Network {
 public:
  explicit Network(internal::WorldCore& core);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // SetDefaultLink() / SetLink()
  //
  // Link behaviour for every ordered pair of hosts, or for `from` -> `to`
  // (overriding the default). InvalidArgument for a rate outside [0, 1] or
  // negative latencies; NotFound for an unknown host.
  absl::Status SetDefaultLink(const LinkOptions& options);
  absl::Status SetLink(std::string_view from, std::string_view to, const LinkOptions& options);
  const LinkOptions& DefaultLink() const;

  // Partition() / PartitionOneWay() / Heal()
  //
  // Cuts every link between a host of `a` and a host of `b` (both ways, or
  // only from `from` to `to`). NotFound for an unknown host name.
  absl::Status Partition(const std::vector<std::string>& a, const std::vector<std::string>& b);
  absl::Status PartitionOneWay(const std::vector<std::string>& from,
                               const std::vector<std::string>& to);
  void Heal();
  // Whether messages from host `from` to host `to` are cut now.
  bool IsCut(std::string_view from, std::string_view to) const;
  bool AnyCut() const;

  // Messages sent and not yet received or dropped, over all links.
  uint64_t InFlight() const { return in_flight_; }
  uint64_t Delivered() const { return delivered_; }
  uint64_t Sent() const { return sent_; }
  // "kv1 -> kv2: 3 in flight" for each link with messages, for reports.
  std::string DescribeInFlight() const;

  // -- For Host --
  absl::StatusOr<Endpoint> Bind(Host& host, uint32_t port);
  void AddHost(Host& host);
  void OnCrash(Host& host);

  // -- For endpoints --
  absl::Status SendFrom(internal::EndpointState& from, const Address& to, std::string payload);
  void OnReceived(uint32_t link);
  void OnDiscarded(uint32_t link, uint64_t count);
  void Unbind(internal::EndpointState& endpoint);

 private:
  struct Link;
  struct HostEntry;
  uint32_t LinkIndex(uint32_t from, uint32_t to) const { return from * capacity_ + to; }
  absl::StatusOr<std::vector<uint32_t>> HostIds(const std::vector<std::string>& names) const;
  void Grow();

  internal::WorldCore& core_;
  LinkOptions default_link_;
  std::vector<HostEntry> hosts_;  // by host id
  uint32_t capacity_ = 0;         // the side of the link matrix
  std::vector<Link> links_;       // capacity_ x capacity_
  uint64_t next_message_id_ = 1;
  uint64_t in_flight_ = 0;
  uint64_t delivered_ = 0;
  uint64_t sent_ = 0;
  bool any_cut_ = false;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_NETWORK_H_
