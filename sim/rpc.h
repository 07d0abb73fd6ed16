// File: sim/rpc.h
// -----------------------------------------------------------------------------
//
// Request/response over the simulated network, since that is what services
// use. An `RpcNode` binds a port on a host, serves the methods registered on
// it, and calls methods of other nodes:
//
//   * `Call(to, method, request, timeout)` sends a request with a fresh
//     request id and waits for the response with that id, or gives up with
//     DeadlineExceeded after `timeout` (a late response is then ignored).
//     Lost requests and lost responses look the same to the caller: a
//     timeout. Retrying is the caller's business (requests may run twice
//     when the network duplicates them: make handlers idempotent).
//   * A handler is a coroutine; each request runs in its own task owned by
//     the host, so a crash cancels handlers mid-flight. A handler's error
//     status travels back to the caller as the call's status (same code and
//     message). An unknown method comes back as Unimplemented.
//   * `Notify` sends a one-way request (fire and forget) at once.
//   * Payloads are bytes (`std::string`); the wire format is internal.
//
// Lifetime: the node's dispatcher task belongs to its host; a crash ends it,
// so make the node volatile state (`host.Emplace<RpcNode>(...)` in the boot
// hook) and start a new one after the restart.
//
// This header defines:
//   * `simsched::RpcNode`, `simsched::RpcHandler`
//
// Example:
//
//   host.OnBoot([](simsched::Host& h) {
//     auto& rpc = h.Emplace<simsched::RpcNode>(h, 7000);
//     rpc.Handle("echo", [](std::string req) -> simsched::Co<absl::StatusOr<std::string>> {
//       co_return req;
//     });
//     (void)rpc.Start();
//   });
//   // from a task on another host:
//   absl::StatusOr<std::string> r =
//       co_await client.Call({"server", 7000}, "echo", "hi", std::chrono::milliseconds(50));

#ifndef SIMSCHED_SIM_RPC_H_
#define SIMSCHED_SIM_RPC_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/co.h"
#include "scheduler/scheduler.h"
#include "sim/host.h"
#include "sim/network.h"

namespace simsched {

namespace internal {
struct RpcState;
}  // namespace internal

// RpcHandler
//
// Serves one method: the request bytes in, the response bytes (or an error)
// out.
using RpcHandler = std::function<Co<absl::StatusOr<std::string>>(std::string request)>;

// RpcNode
class RpcNode {
 public:
  // Binds nothing yet; see Start().
  RpcNode(Host& host, uint32_t port);
  // Closes the endpoint: the dispatcher ends, pending calls time out.
  ~RpcNode();
  RpcNode(const RpcNode&) = delete;
  RpcNode& operator=(const RpcNode&) = delete;

  // Handle()
  //
  // Registers (or replaces) the handler of `method`.
  void Handle(std::string method, RpcHandler handler);

  // Start()
  //
  // Binds the port and starts the dispatcher task on the host. The errors
  // of `Host::Bind` and `Host::Spawn`.
  absl::Status Start();

  Address address() const;

  // Call()
  //
  // See the file comment. FailedPrecondition before Start() or after the
  // host crashed; the errors of `Endpoint::Send`; DeadlineExceeded on
  // timeout; else the handler's result.
  Co<absl::StatusOr<std::string>> Call(Address to, std::string method, std::string request,
                                       Duration timeout);

  // Notify()
  //
  // Sends a one-way request at once (no response, no waiting): the handler
  // runs on the other node and its result is dropped. The errors of
  // `Endpoint::Send`.
  absl::Status Notify(const Address& to, std::string_view method, std::string_view request);

 private:
  std::shared_ptr<internal::RpcState> state_;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_RPC_H_
