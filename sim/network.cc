#include "sim/network.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "scheduler/time.h"
#include "scheduler/waker.h"
#include "sim/host.h"
#include "sim/internal/world_core.h"

namespace simsched {
namespace internal {

struct EndpointState {
  struct Pending {
    Instant due;
    uint64_t seq;
    uint32_t link;
    Message message;
  };
  // Min-heap order on (due, seq).
  struct Later {
    bool operator()(const Pending& a, const Pending& b) const {
      return a.due != b.due ? a.due > b.due : a.seq > b.seq;
    }
  };

  Network* network = nullptr;  // null once closed or the world is gone
  WorldCore* core = nullptr;
  uint32_t host_id = 0;
  Address address;
  bool open = true;
  std::vector<Pending> heap;
  uint64_t next_seq = 0;
  // The one waiting receiver, and the timer armed for it.
  bool has_waiter = false;
  Waker waker;
  TimerId timer;
  Instant armed = Instant::max();
  Instant deadline = Instant::max();

  void Arm(Instant when) {
    if (when >= armed) return;
    TestScheduler& scheduler = core->scheduler;
    if (armed != Instant::max()) scheduler.CancelTimer(timer);
    armed = when;
    timer = scheduler.StartTimer(when, waker);
  }
  void Disarm() {
    if (armed != Instant::max()) core->scheduler.CancelTimer(timer);
    armed = Instant::max();
  }
};

}  // namespace internal

using internal::EndpointState;

std::string Address::ToString() const { return absl::StrCat(host, ":", port); }

absl::Status LinkOptions::Validate() const {
  for (auto [field, rate] : {std::pair<const char*, double>{"tail_probability", tail_probability},
                             {"loss", loss},
                             {"duplicate", duplicate},
                             {"reorder", reorder}}) {
    if (absl::Status s = ValidateRate(absl::StrCat("LinkOptions::", field), rate); !s.ok()) {
      return s;
    }
  }
  if (min_latency < Duration::zero() || max_latency < min_latency ||
      tail_latency < Duration::zero()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LinkOptions: latencies must satisfy 0 <= min_latency <= max_latency (got ",
        FormatDuration(min_latency), " and ", FormatDuration(max_latency),
        ") and tail_latency >= 0"));
  }
  if (queue_limit == 0) {
    return absl::InvalidArgumentError(
        "LinkOptions::queue_limit is 0: no message could ever be sent; use at least 1");
  }
  return absl::OkStatus();
}

struct Network::Link {
  std::optional<LinkOptions> options;
  uint64_t in_flight = 0;
  Instant last_due{};
  bool cut = false;
};

struct Network::HostEntry {
  Host* host = nullptr;
  absl::flat_hash_map<uint32_t, std::shared_ptr<EndpointState>> ports;  // lookups only
  absl::flat_hash_set<uint32_t> ever_bound;
};

Network::Network(internal::WorldCore& core) : core_(core) {}

Network::~Network() {
  // Close every endpoint (waking waiting receivers) and cut them off from
  // this network: handles may outlive the world.
  for (HostEntry& entry : hosts_) {
    std::vector<std::shared_ptr<EndpointState>> open;
    for (auto& [port, state] : entry.ports) open.push_back(state);
    std::sort(open.begin(), open.end(),
              [](const auto& a, const auto& b) { return a->address.port < b->address.port; });
    for (auto& state : open) {
      Unbind(*state);
      state->core = nullptr;
    }
  }
}

// --- Endpoint ---

Endpoint& Endpoint::operator=(Endpoint&& other) noexcept {
  if (this != &other) {
    Close();
    state_ = std::move(other.state_);
  }
  return *this;
}

Endpoint::~Endpoint() { Close(); }

const Address& Endpoint::address() const {
  static const Address kNone;
  return state_ == nullptr ? kNone : state_->address;
}

bool Endpoint::IsOpen() const { return state_ != nullptr && state_->open; }

void Endpoint::Close() {
  if (state_ != nullptr && state_->network != nullptr) state_->network->Unbind(*state_);
}

absl::Status Endpoint::Send(const Address& to, std::string payload) {
  if (state_ == nullptr) {
    return absl::FailedPreconditionError(
        "Send on an empty Endpoint (default-constructed or moved from); get one from "
        "Host::Bind");
  }
  if (state_->network == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Send from ", state_->address.ToString(),
        ": the endpoint is closed (closed by its owner, its host crashed, or the world "
        "is gone); bind the port again after a restart"));
  }
  return state_->network->SendFrom(*state_, to, std::move(payload));
}

Endpoint::RecvAwaiter::~RecvAwaiter() {
  // Still waiting only if the receiving task was cancelled.
  if (waiting_ && state_->has_waiter) {
    if (state_->core != nullptr) state_->Disarm();
    state_->has_waiter = false;
    state_->waker = Waker();
  }
}

bool Endpoint::RecvAwaiter::await_ready() {
  if (state_ == nullptr || !state_->open || state_->core == nullptr) return true;
  if (state_->has_waiter) return true;  // a second receiver: an error in await_resume
  const Instant now = state_->core->scheduler.Now();
  if (timeout_.has_value()) deadline_ = DeadlineAfter(now, std::max(*timeout_, Duration::zero()));
  if (!state_->heap.empty() && state_->heap.front().due <= now) return true;
  return deadline_ <= now;
}

void Endpoint::RecvAwaiter::await_suspend(std::coroutine_handle<>) {
  DescribeWait("Endpoint::Recv", location_);
  waiting_ = true;
  state_->has_waiter = true;
  state_->waker = CurrentWaker();
  state_->deadline = deadline_;
  Instant when = deadline_;
  if (!state_->heap.empty()) when = std::min(when, state_->heap.front().due);
  if (when != Instant::max()) state_->Arm(when);
}

absl::StatusOr<Message> Endpoint::RecvAwaiter::await_resume() {
  if (state_ == nullptr) {
    return absl::FailedPreconditionError(
        "Recv on an empty Endpoint (default-constructed or moved from)");
  }
  if (waiting_) {
    waiting_ = false;
    if (state_->core != nullptr) state_->Disarm();
    state_->has_waiter = false;
    state_->waker = Waker();
  } else if (state_->has_waiter && state_->open) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Recv on ", state_->address.ToString(),
        " while another task is already receiving from it; one receiver per endpoint"));
  }
  if (!state_->open || state_->core == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "endpoint ", state_->address.ToString(),
        " is closed (closed by its owner, or its host crashed)"));
  }
  const Instant now = state_->core->scheduler.Now();
  if (!state_->heap.empty() && state_->heap.front().due <= now) {
    std::pop_heap(state_->heap.begin(), state_->heap.end(), EndpointState::Later{});
    EndpointState::Pending pending = std::move(state_->heap.back());
    state_->heap.pop_back();
    state_->network->OnReceived(pending.link);
    return std::move(pending.message);
  }
  if (deadline_ <= now) {
    return absl::DeadlineExceededError(absl::StrCat(
        "Recv on ", state_->address.ToString(), " got no message within ",
        FormatDuration(*timeout_)));
  }
  return absl::InternalError(absl::StrCat("Recv on ", state_->address.ToString(),
                                          " was woken with nothing to receive"));
}

// --- Network ---

absl::Status Network::SetDefaultLink(const LinkOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  default_link_ = options;
  return absl::OkStatus();
}

const LinkOptions& Network::DefaultLink() const { return default_link_; }

absl::StatusOr<std::vector<uint32_t>> Network::HostIds(
    const std::vector<std::string>& names) const {
  std::vector<uint32_t> ids;
  for (const std::string& name : names) {
    bool found = false;
    for (uint32_t id = 0; id < hosts_.size(); ++id) {
      if (hosts_[id].host->name() == name) {
        ids.push_back(id);
        found = true;
        break;
      }
    }
    if (!found) {
      std::vector<std::string> known;
      for (const HostEntry& e : hosts_) known.emplace_back(e.host->name());
      return absl::NotFoundError(absl::StrCat("no host named '", name, "' (hosts: ",
                                              absl::StrJoin(known, ", "), ")"));
    }
  }
  return ids;
}

absl::Status Network::SetLink(std::string_view from, std::string_view to,
                              const LinkOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  absl::StatusOr<std::vector<uint32_t>> ids = HostIds({std::string(from), std::string(to)});
  if (!ids.ok()) return ids.status();
  links_[LinkIndex((*ids)[0], (*ids)[1])].options = options;
  return absl::OkStatus();
}

absl::Status Network::Partition(const std::vector<std::string>& a,
                                const std::vector<std::string>& b) {
  absl::StatusOr<std::vector<uint32_t>> ia = HostIds(a);
  if (!ia.ok()) return ia.status();
  absl::StatusOr<std::vector<uint32_t>> ib = HostIds(b);
  if (!ib.ok()) return ib.status();
  for (uint32_t x : *ia) {
    for (uint32_t y : *ib) {
      links_[LinkIndex(x, y)].cut = true;
      links_[LinkIndex(y, x)].cut = true;
    }
  }
  any_cut_ = true;
  core_.Event("net.partition", 0x9a47ULL ^ (ia->size() << 8) ^ ib->size(),
              absl::StrCat("net: partition {", absl::StrJoin(a, ","), "} | {",
                           absl::StrJoin(b, ","), "}"));
  return absl::OkStatus();
}

absl::Status Network::PartitionOneWay(const std::vector<std::string>& from,
                                      const std::vector<std::string>& to) {
  absl::StatusOr<std::vector<uint32_t>> ia = HostIds(from);
  if (!ia.ok()) return ia.status();
  absl::StatusOr<std::vector<uint32_t>> ib = HostIds(to);
  if (!ib.ok()) return ib.status();
  for (uint32_t x : *ia) {
    for (uint32_t y : *ib) links_[LinkIndex(x, y)].cut = true;
  }
  any_cut_ = true;
  core_.Event("net.partition_one_way", 0x1a47ULL ^ (ia->size() << 8) ^ ib->size(),
              absl::StrCat("net: one-way partition {", absl::StrJoin(from, ","), "} -> {",
                           absl::StrJoin(to, ","), "} cut"));
  return absl::OkStatus();
}

void Network::Heal() {
  if (!any_cut_) return;
  for (Link& link : links_) link.cut = false;
  any_cut_ = false;
  core_.Event("net.heal", 0x4ea1ULL, "net: all partitions healed");
}

bool Network::IsCut(std::string_view from, std::string_view to) const {
  absl::StatusOr<std::vector<uint32_t>> ids = HostIds({std::string(from), std::string(to)});
  return ids.ok() && links_[LinkIndex((*ids)[0], (*ids)[1])].cut;
}

bool Network::AnyCut() const { return any_cut_; }

std::string Network::DescribeInFlight() const {
  std::string out;
  for (uint32_t from = 0; from < hosts_.size(); ++from) {
    for (uint32_t to = 0; to < hosts_.size(); ++to) {
      const Link& link = links_[LinkIndex(from, to)];
      if (link.in_flight == 0) continue;
      absl::StrAppend(&out, hosts_[from].host->name(), " -> ", hosts_[to].host->name(), ": ",
                      link.in_flight, " in flight", link.cut ? " (cut)" : "", "\n");
    }
  }
  return out;
}

void Network::Grow() {
  const uint32_t old = capacity_;
  const uint32_t grown = std::max<uint32_t>(4, old * 2);
  std::vector<Link> links(static_cast<size_t>(grown) * grown);
  for (uint32_t a = 0; a < old; ++a) {
    for (uint32_t b = 0; b < old; ++b) links[a * grown + b] = std::move(links_[a * old + b]);
  }
  links_ = std::move(links);
  capacity_ = grown;
}

void Network::AddHost(Host& host) {
  if (hosts_.size() == capacity_) Grow();
  HostEntry entry;
  entry.host = &host;
  hosts_.push_back(std::move(entry));
}

absl::StatusOr<Endpoint> Network::Bind(Host& host, uint32_t port) {
  if (!host.IsUp()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Bind(", port, ") on host '", host.name(), "', which is down; restart it first"));
  }
  HostEntry& entry = hosts_[host.id()];
  if (entry.ports.contains(port)) {
    return absl::AlreadyExistsError(
        absl::StrCat("port ", port, " on host '", host.name(), "' is already bound"));
  }
  auto state = std::make_shared<EndpointState>();
  state->network = this;
  state->core = &core_;
  state->host_id = host.id();
  state->address = Address{std::string(host.name()), port};
  entry.ports.emplace(port, state);
  entry.ever_bound.insert(port);
  return Endpoint(std::move(state));
}

void Network::Unbind(EndpointState& endpoint) {
  if (endpoint.network == nullptr) return;
  HostEntry& entry = hosts_[endpoint.host_id];
  auto it = entry.ports.find(endpoint.address.port);
  if (it != entry.ports.end() && it->second.get() == &endpoint) entry.ports.erase(it);
  endpoint.open = false;
  if (!endpoint.heap.empty()) {
    // Unread and in-flight messages to a closed endpoint are lost. Sorted so
    // the event order does not depend on the heap's layout.
    std::sort(endpoint.heap.begin(), endpoint.heap.end(),
              [](const auto& a, const auto& b) { return a.seq < b.seq; });
    for (const auto& pending : endpoint.heap) OnDiscarded(pending.link, 1);
    core_.Event("net.dropped_closed", 0xc105eULL ^ endpoint.heap.size(),
                absl::StrCat("net: ", endpoint.heap.size(), " unread messages to ",
                             endpoint.address.ToString(), " lost (endpoint closed)"));
    endpoint.heap.clear();
  }
  if (endpoint.has_waiter) {
    endpoint.Disarm();
    endpoint.waker.Wake("the endpoint closing");
  }
  endpoint.network = nullptr;
}

void Network::OnCrash(Host& host) {
  HostEntry& entry = hosts_[host.id()];
  std::vector<std::shared_ptr<EndpointState>> open;
  for (auto& [port, state] : entry.ports) open.push_back(state);
  std::sort(open.begin(), open.end(),
            [](const auto& a, const auto& b) { return a->address.port < b->address.port; });
  for (auto& state : open) Unbind(*state);
}

void Network::OnReceived(uint32_t link) {
  --links_[link].in_flight;
  --in_flight_;
  ++delivered_;
}

void Network::OnDiscarded(uint32_t link, uint64_t count) {
  links_[link].in_flight -= count;
  in_flight_ -= count;
}

namespace {

Duration DrawLatency(Rng& rng, const LinkOptions& options) {
  if (options.tail_probability > 0 && rng.NextDouble() < options.tail_probability) {
    return Duration(rng.InRange(options.max_latency.count(),
                                std::max(options.max_latency, options.tail_latency).count()));
  }
  if (options.min_latency == options.max_latency) return options.min_latency;
  return Duration(rng.InRange(options.min_latency.count(), options.max_latency.count()));
}

}  // namespace

absl::Status Network::SendFrom(EndpointState& from, const Address& to, std::string payload) {
  Host& sender = *hosts_[from.host_id].host;
  if (!sender.IsUp() || !from.open) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Send from ", from.address.ToString(), ": host '", sender.name(),
        "' is down (crashed); a crashed host sends nothing. Restart it and bind again"));
  }
  uint32_t dest_id = 0;
  bool found = false;
  for (uint32_t id = 0; id < hosts_.size(); ++id) {
    if (hosts_[id].host->name() == to.host) {
      dest_id = id;
      found = true;
      break;
    }
  }
  if (!found) {
    std::vector<std::string> known;
    for (const HostEntry& e : hosts_) known.emplace_back(e.host->name());
    return absl::NotFoundError(absl::StrCat("Send from ", from.address.ToString(), " to ",
                                            to.ToString(), ": no host named '", to.host,
                                            "' (hosts: ", absl::StrJoin(known, ", "), ")"));
  }
  HostEntry& dest = hosts_[dest_id];
  auto port = dest.ports.find(to.port);
  if (port == dest.ports.end() && !dest.ever_bound.contains(to.port)) {
    // A typo, not a send: neither counted nor numbered.
    return absl::NotFoundError(absl::StrCat("Send from ", from.address.ToString(), " to ",
                                            to.ToString(), ": host '", to.host,
                                            "' never bound port ", to.port));
  }
  const uint32_t link_index = LinkIndex(from.host_id, dest_id);
  Link& link = links_[link_index];
  const LinkOptions& options = link.options.has_value() ? *link.options : default_link_;
  if (link.in_flight >= options.queue_limit && !options.drop_when_full) {
    // Refused, not sent (as a full socket buffer): neither counted nor numbered.
    return absl::ResourceExhaustedError(absl::StrCat(
        "Send from ", from.address.ToString(), " to ", to.ToString(), ": the link ",
        sender.name(), " -> ", to.host, " already holds ", link.in_flight,
        " messages (LinkOptions::queue_limit); wait for replies, or raise the limit or set "
        "drop_when_full"));
  }
  const uint64_t id = next_message_id_++;
  ++sent_;
  if (port == dest.ports.end()) {
    if (core_.verbose()) {
      core_.Event("net.dropped_no_endpoint", id,
                  absl::StrCat("net: #", id, " ", from.address.ToString(), " -> ",
                               to.ToString(), " dropped: no endpoint (port closed)"));
    } else {
      core_.Event("net.dropped_no_endpoint", id);
    }
    return absl::OkStatus();
  }
  EndpointState& target = *port->second;
  Rng& rng = core_.network_rng;
  auto drop = [&](std::string_view counter, std::string_view why) {
    if (core_.verbose()) {
      core_.Event(counter, id,
                  absl::StrCat("net: #", id, " ", from.address.ToString(), " -> ",
                               to.ToString(), " dropped (", std::string(why), ")"));
    } else {
      core_.Event(counter, id);
    }
  };
  if (link.cut) {
    drop("net.dropped_partition", "partition");
    return absl::OkStatus();
  }
  if (options.loss > 0 && rng.NextDouble() < options.loss) {
    drop("net.dropped_loss", "loss");
    return absl::OkStatus();
  }
  if (link.in_flight >= options.queue_limit) {
    drop("net.dropped_full", "link queue full");  // drop_when_full: a refusal returned above
    return absl::OkStatus();
  }
  const Instant now = core_.scheduler.Now();
  const bool duplicate = options.duplicate > 0 && rng.NextDouble() < options.duplicate;
  const bool reorder = options.reorder > 0 && rng.NextDouble() < options.reorder;
  Instant due = DeadlineAfter(now, DrawLatency(rng, options));
  if (!reorder) {
    due = std::max(due, link.last_due);
    link.last_due = due;
  }
  Message message{from.address, to, std::move(payload), id};
  auto push = [&](Instant when, Message m) {
    ++link.in_flight;
    ++in_flight_;
    target.heap.push_back(EndpointState::Pending{when, target.next_seq++, link_index, std::move(m)});
    std::push_heap(target.heap.begin(), target.heap.end(), EndpointState::Later{});
    if (target.has_waiter) target.Arm(when);
  };
  if (duplicate && link.in_flight + 1 < options.queue_limit) {
    const Instant copy_due = DeadlineAfter(now, DrawLatency(rng, options));
    if (core_.verbose()) {
      core_.Event("net.duplicated", id,
                  absl::StrCat("net: #", id, " ", from.address.ToString(), " -> ",
                               to.ToString(), " duplicated"));
    } else {
      core_.Event("net.duplicated", id);
    }
    push(copy_due, message);
  }
  push(due, std::move(message));
  return absl::OkStatus();
}

}  // namespace simsched
