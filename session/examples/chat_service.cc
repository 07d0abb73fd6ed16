#include "session/examples/chat_service.h"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace simsched::examples {
namespace {

const TaskLabel& PresenceLabel() {
  static const TaskLabel* const label = new TaskLabel("presence-update");
  return *label;
}
const TaskLabel& WriteLabel() {
  static const TaskLabel* const label = new TaskLabel("store-write");
  return *label;
}
const TaskLabel& SummaryLabel() {
  static const TaskLabel* const label = new TaskLabel("summary-refresh");
  return *label;
}

}  // namespace

ChatService::ChatService(ChatServiceOptions options) : options_(options), rooms_(options.rooms) {
  for (int user = 0; user < options_.users; ++user) {
    rooms_[user % options_.rooms].members.push_back(user);
  }
  for (int room = 0; room < options_.rooms; ++room) {
    for (int line = 0; line < kReplyLines; ++line) {
      rooms_[room].history.push_back(absl::StrCat("welcome to room ", room, " (", line, ")"));
    }
  }
}

int ChatService::Inbox(int user) const {
  auto it = inboxes_.find(user);
  return it == inboxes_.end() ? 0 : it->second;
}

Co<void> ChatService::StoreMessage(int room, std::string text) {
  co_await Sleep(kStoreLatency);
  rooms_[room].history.push_back(std::move(text));
}

Co<void> ChatService::Deliver(int member) {
  co_await Sleep(kDeliveryLatency);
  ++inboxes_[member];
}

Co<void> ChatService::RefreshSummary(int room) {
  co_await Sleep(kSummaryLatency);
  rooms_[room].summary =
      absl::StrCat(rooms_[room].history.size(), " messages, latest: ", rooms_[room].history.back());
  ++summary_refreshes_;
}

Co<void> ChatService::UpdatePresence(int user) {
  co_await Sleep(kPresenceLatency);  // the presence store's write
  last_seen_[user] = CurrentScheduler()->Now();
  ++presence_updates_;
}

Co<std::vector<std::string>> ChatService::RenderRecent(int room) {
  const std::vector<std::string>& history = rooms_[room].history;
  std::vector<std::string> lines;
  // Other requests may append while this one renders: fix the window first.
  const size_t end = history.size();
  for (size_t i = end - kReplyLines; i < end; ++i) {
    lines.push_back(absl::StrCat("[room ", room, "] ", history[i]));
    co_await Yield();  // rendering takes a step per line
  }
  co_return lines;
}

Co<PostReply> ChatService::PostMessage(ExecutionContext ctx, int user, int room, std::string text) {
  const Instant start = CurrentScheduler()->Now();
  // Presence runs alongside the post; the reply waits for it only until the
  // reply timer.
  Task<void> presence = ctx.SpawnLabeled(PresenceLabel(), UpdatePresence(user));

  // The durable write, then the fan-out to the room's other members.
  co_await ctx.SpawnLabeled(WriteLabel(), StoreMessage(room, std::move(text)));
  std::vector<Task<void>> deliveries;
  for (int member : rooms_[room].members) {
    if (member != user) deliveries.push_back(ctx.Spawn(Deliver(member)));
  }
  PostReply reply;
  for (Task<void>& delivery : deliveries) {
    co_await delivery;
    ++reply.delivered;
  }

  // The summary may be refreshed after the reply: WaitUntil.
  if (absl::Status status = ctx.WaitUntil(ctx.SpawnLabeled(SummaryLabel(), RefreshSummary(room)));
      !status.ok()) {
    throw std::logic_error(std::string(status.message()));
  }

  co_await SleepUntil(start + kReplyBudget);  // the reply timer
  reply.recent = co_await RenderRecent(room);
  if (presence.IsFinished()) {
    co_await presence;
    reply.presence_confirmed = true;
  } else if (options_.fixed) {
    // Fixed: the update may finish after the reply, within the grace period.
    if (absl::Status status = ctx.WaitUntil(std::move(presence)); !status.ok()) {
      throw std::logic_error(std::string(status.message()));
    }
  } else {
    // BUG (planted): nobody waits for the update any more, and the response
    // is about to be sent. Production kills it mid-way.
    presence.Detach();
  }
  co_return reply;
}

Co<std::vector<std::string>> ChatService::FetchHistory(ExecutionContext ctx, int room) {
  co_await Sleep(kStoreLatency);  // the read
  if (rooms_[room].summary.empty()) {
    if (absl::Status status = ctx.WaitUntil(ctx.SpawnLabeled(SummaryLabel(), RefreshSummary(room)));
        !status.ok()) {
      throw std::logic_error(std::string(status.message()));
    }
  }
  co_return co_await RenderRecent(room);
}

namespace {

// The server side of one request, in no session: runs the handler as the
// session's root task, then sends the response.
Co<void> ServePost(ChatService& service, ExecutionContext ctx, int user, int room,
                   Duration arrival) {
  co_await Sleep(arrival);
  PostReply reply = co_await ctx.Spawn(
      service.PostMessage(ctx, user, room, absl::StrCat("hello from user ", user)));
  if (reply.recent.size() != ChatService::kReplyLines) {
    throw std::logic_error("PostMessage replied without the room's recent lines");
  }
  if (absl::Status status = ctx.End(); !status.ok()) {
    throw std::logic_error(std::string(status.message()));
  }
}

Co<void> ServeFetch(ChatService& service, ExecutionContext ctx, int room, Duration arrival) {
  co_await Sleep(arrival);
  std::vector<std::string> lines = co_await ctx.Spawn(service.FetchHistory(ctx, room));
  if (lines.size() != ChatService::kReplyLines) {
    throw std::logic_error("FetchHistory replied without the room's recent lines");
  }
  if (absl::Status status = ctx.End(); !status.ok()) {
    throw std::logic_error(std::string(status.message()));
  }
}

}  // namespace

ChatTraffic SimulateChatTraffic(const ChatTrafficOptions& options) {
  ChatTraffic traffic;
  traffic.service = std::make_unique<ChatService>(options.service);
  traffic.test = TestScheduler::Create({.seed = options.seed});
  traffic.cloud = CloudSimulatedScheduler::Create(traffic.test);
  Rng& rng = traffic.test->rng();
  const uint64_t window_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options.arrival_window).count();
  for (int i = 0; i < options.sessions; ++i) {
    const SessionId session = traffic.cloud->CreateSession();
    traffic.sessions.push_back(session);
    ExecutionContext ctx = *traffic.cloud->Context(session);
    const int user = static_cast<int>(rng.Below(options.service.users));
    const int room = user % options.service.rooms;
    const Duration arrival = std::chrono::microseconds(rng.Below(window_us));
    if (rng.Chance(7, 10)) {
      ++traffic.posts;
      Spawn(*traffic.cloud, ServePost(*traffic.service, ctx, user, room, arrival)).Detach();
    } else {
      ++traffic.fetches;
      Spawn(*traffic.cloud, ServeFetch(*traffic.service, ctx, room, arrival)).Detach();
    }
  }
  traffic.run = traffic.test->Run();
  return traffic;
}

}  // namespace simsched::examples
