// File: session/examples/chat_server.h
// -----------------------------------------------------------------------------
//
// The session layer's example served over the simulated network
// (sim/world.h): the chat backend of chat_service.h runs as a server on a
// simulated host, and clients on other hosts send it requests with
// `RpcNode::Call` through a network with latency, loss, duplication and
// partitions, while a fault plan crashes and restarts the server.
//
//   * Requests arrive as messages. Each one becomes a session of a
//     `CloudSimulatedScheduler`: the RPC handler creates the session, runs
//     the request's root task with `ctx.Spawn`, and calls `ctx.End()` as it
//     hands the response to the network: a response sent ends the session.
//   * The server's state (the `ChatService`, the `RpcNode`) is the host's
//     volatile state: a crash loses it and the restart starts afresh. Every
//     task of a session was spawned by a host task, so it belongs to the host
//     (sim/host.h): the crash cancels it mid-request, frames and RAII freed.
//     A session a crash cut short never responded, so it is not a leak;
//     `ValidateSessionCleanup` still names a task that outlived a response
//     the server did send.
//   * Clients retry a request until it is answered (a lost request, a lost
//     reply and a crashed server all look like a timeout).
//   * Two fault points: `SIMSCHED_BUGGIFY("chat.server.slow")` delays a
//     request past the clients' timeout, `SIMSCHED_BUGGIFY("chat.server.
//     unavailable")` refuses one. Both only make clients retry.
//
// With `ChatServiceOptions::fixed = false` the planted presence leak of
// chat_service.h shows up as an unclean session on some seeds of a sweep;
// the fixed handler passes.
//
// This header defines:
//   * `simsched::examples::ChatNetworkOptions`, `ChatNetworkResult`
//   * `RunChatOverNetwork()`, `ServeChat()`, `kChatPort`
//
// Example:
//
//   SIM_TEST(ChatNetworkSimTest, SessionsStayClean, .iterations = 100) {
//     simsched::examples::ChatNetworkResult r = simsched::examples::RunChatOverNetwork(
//         sim.scheduler_ptr(), {.service = {.fixed = true}});
//     EXPECT_EQ(r.Problem(), "") << r.report;
//   }

#ifndef SIMSCHED_SESSION_EXAMPLES_CHAT_SERVER_H_
#define SIMSCHED_SESSION_EXAMPLES_CHAT_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/test_scheduler.h"
#include "session/cloud_simulated_scheduler.h"
#include "session/examples/chat_service.h"
#include "sim/fault_plan.h"
#include "sim/host.h"

namespace simsched::examples {

// The port the chat server listens on.
inline constexpr uint32_t kChatPort = 8080;

// ServeChat()
//
// Makes `host` a chat server: at every boot, a fresh ChatService and an
// RpcNode on `kChatPort` serving "post" ("<user> <room> <text>") and
// "history" ("<room>"), each request in a new session of `cloud`. Malformed
// requests and unknown users or rooms get InvalidArgument. `cloud` must
// wrap the world's scheduler and outlive the host's tasks.
void ServeChat(Host& host, std::shared_ptr<CloudSimulatedScheduler> cloud,
               ChatServiceOptions options);

// ChatNetworkOptions
struct ChatNetworkOptions {
  ChatServiceOptions service;
  // Client hosts ("client0", ...), each sending this many requests in turn
  // (about 70% posts), retrying each until it is answered.
  int clients = 3;
  int requests_per_client = 10;
  Duration request_timeout = std::chrono::milliseconds(100);
  // Faults among all hosts; crashes hit the server ("chat") only.
  double loss = 0.05;
  double duplicate = 0.02;
  double partition_probability = 0.15;
  double crash_probability = 0.1;
  Duration chaos_duration = std::chrono::seconds(2);
  // Receives the world's events (pass sim.Log in a SIM_TEST).
  std::function<void(std::string_view)> log = nullptr;
};

// ChatNetworkResult
struct ChatNetworkResult {
  // OK, or why the run failed (a liveness violation, a deadlock, an
  // exception escaping a task).
  absl::Status status;
  int requests = 0;         // requests the clients completed
  int retries = 0;          // calls that failed and were retried
  int bad_replies = 0;      // answers that did not parse: a bug
  int sessions = 0;         // sessions the server created
  int sessions_cut = 0;     // sessions a crash ended before they responded
  int server_crashes = 0;
  // One ValidateSessionCleanup report per unclean session, in id order.
  std::vector<std::string> unclean;
  // Tasks still live once the world was destroyed (leaked frames): 0.
  size_t tasks_left = 0;
  uint64_t event_hash = 0;
  // World::Report() at the end of the run, for failure messages.
  std::string report;
  // The first unclean session's report, or the status, or "bad replies",
  // or "" when every session cleaned up.
  std::string Problem() const;
};

// RunChatOverNetwork()
//
// Builds the world on `test` (a server host "chat", `clients` client
// hosts), runs a fault plan whose liveness phase requires every client's
// requests answered, lets the sessions' grace periods play out, validates
// every session, and tears the world down.
ChatNetworkResult RunChatOverNetwork(std::shared_ptr<TestScheduler> test,
                                     const ChatNetworkOptions& options);

}  // namespace simsched::examples

#endif  // SIMSCHED_SESSION_EXAMPLES_CHAT_SERVER_H_
