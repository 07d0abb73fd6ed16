// File: session/examples/chat_service.h
// -----------------------------------------------------------------------------
//
// The session layer's example: a small chat backend served the serverless
// way, one session per request. Its handlers spawn the work a real one
// would: a durable write, a fan-out to the room's members, a background
// refresh of the room's summary (handed to `WaitUntil`, so it may finish
// after the reply), and an update of the poster's presence.
//
// `PostMessage` has a planted leak. It starts the presence update alongside
// the post and, when the reply timer fires, puts the presence result in the
// reply only if the update has already finished; otherwise it detaches the
// update and replies. The update usually wins that race, so the reply
// carries it; when the timer wins, the detached task outlives the response,
// which production would kill mid-way. Only some interleavings do that (the
// two are woken at the same instant and the reply has a few steps of
// rendering to do first), which is what a seed sweep with
// `ValidateSessionCleanup` finds. `ChatServiceOptions::fixed` hands the
// straggling update to `WaitUntil` instead.
//
// The service keeps its state in plain containers: run it on one thread (as
// the TestScheduler does).
//
// This header defines:
//   * `simsched::examples::ChatServiceOptions`, `ChatService`, `PostReply`
//   * `simsched::examples::ChatTrafficOptions`, `ChatTraffic`,
//     `SimulateChatTraffic()`: 100 concurrent requests on a TestScheduler
//
// Example:
//
//   simsched::examples::ChatTraffic traffic =
//       simsched::examples::SimulateChatTraffic({.seed = seed});
//   ASSERT_TRUE(traffic.run.ok()) << traffic.run;
//   for (simsched::SessionId session : traffic.sessions) {
//     EXPECT_SESSION_CLEAN(traffic.cloud, session) << "seed " << seed;
//   }

#ifndef SIMSCHED_SESSION_EXAMPLES_CHAT_SERVICE_H_
#define SIMSCHED_SESSION_EXAMPLES_CHAT_SERVICE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "session/cloud_simulated_scheduler.h"
#include "session/execution_context.h"

namespace simsched::examples {

// ChatServiceOptions
struct ChatServiceOptions {
  int rooms = 8;
  int users = 40;  // user u is a member of room u % rooms
  // Use the corrected PostMessage: a presence update still running at reply
  // time is handed to WaitUntil instead of being detached.
  bool fixed = false;
};

// PostReply
//
// What PostMessage answers.
struct PostReply {
  int delivered = 0;                // members the message was delivered to
  bool presence_confirmed = false;  // the presence update finished in time
  std::vector<std::string> recent;  // the room's latest lines, rendered
};

// ChatService
class ChatService {
 public:
  // Simulated latencies (virtual time under the TestScheduler).
  static constexpr Duration kStoreLatency = std::chrono::milliseconds(2);
  static constexpr Duration kDeliveryLatency = std::chrono::milliseconds(1);
  static constexpr Duration kPresenceLatency = std::chrono::milliseconds(5);
  static constexpr Duration kSummaryLatency = std::chrono::milliseconds(50);
  // The reply does not wait longer than this for the presence update.
  static constexpr Duration kReplyBudget = std::chrono::milliseconds(5);
  // Lines of the room's history a reply carries.
  static constexpr int kReplyLines = 6;

  explicit ChatService(ChatServiceOptions options = {});

  // PostMessage()
  //
  // Stores `text` in `room`, delivers it to the room's other members, starts
  // a background refresh of the room's summary and updates the poster's
  // presence. Replies within `kReplyBudget`.
  Co<PostReply> PostMessage(ExecutionContext ctx, int user, int room, std::string text);

  // FetchHistory()
  //
  // The room's latest lines. Refreshes the room's summary in the background
  // if it is missing.
  Co<std::vector<std::string>> FetchHistory(ExecutionContext ctx, int room);

  // Inspection, for tests.
  const std::vector<std::string>& History(int room) const { return rooms_[room].history; }
  int Inbox(int user) const;
  int SummaryRefreshes() const { return summary_refreshes_; }
  int PresenceUpdates() const { return static_cast<int>(presence_updates_); }
  const ChatServiceOptions& options() const { return options_; }

 private:
  struct Room {
    std::vector<std::string> history;
    std::vector<int> members;
    std::string summary;
  };

  Co<void> StoreMessage(int room, std::string text);
  Co<void> Deliver(int member);
  Co<void> RefreshSummary(int room);
  Co<void> UpdatePresence(int user);
  Co<std::vector<std::string>> RenderRecent(int room);

  ChatServiceOptions options_;
  std::vector<Room> rooms_;
  absl::btree_map<int, int> inboxes_;
  absl::btree_map<int, Instant> last_seen_;
  int summary_refreshes_ = 0;
  int64_t presence_updates_ = 0;
};

// ChatTrafficOptions
struct ChatTrafficOptions {
  uint64_t seed = 0;
  int sessions = 100;
  // Requests arrive at random instants in [0, arrival_window).
  Duration arrival_window = std::chrono::milliseconds(20);
  ChatServiceOptions service = {};
};

// ChatTraffic
//
// A finished simulation: the service, the schedulers (for validation) and
// the sessions, in id order. Members are destroyed bottom-up, so the service
// outlives the schedulers' shutdown.
struct ChatTraffic {
  std::unique_ptr<ChatService> service;
  std::shared_ptr<TestScheduler> test;
  std::shared_ptr<CloudSimulatedScheduler> cloud;
  std::vector<SessionId> sessions;
  int posts = 0;
  int fetches = 0;
  // The run's status: OK, or why the TestScheduler could not finish it.
  absl::Status run;
};

// SimulateChatTraffic()
//
// Serves `options.sessions` concurrent requests (about 70% posts, 30%
// history fetches, users and arrival times drawn from the seed) on a
// TestScheduler with a CloudSimulatedScheduler over it, each in its own
// session, and runs until everything, grace periods included, is over.
ChatTraffic SimulateChatTraffic(const ChatTrafficOptions& options);

}  // namespace simsched::examples

#endif  // SIMSCHED_SESSION_EXAMPLES_CHAT_SERVICE_H_
