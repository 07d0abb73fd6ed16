#include "session/examples/chat_server.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sim/buggify.h"
#include "sim/random.h"
#include "sim/rpc.h"
#include "sim/world.h"

namespace simsched::examples {
namespace {

using namespace std::chrono_literals;

// How long a buggified slow request takes: past any sensible client timeout.
constexpr Duration kSlowRequest = 250ms;

absl::StatusOr<int> ParseIndex(std::string_view text, int limit, std::string_view what) {
  int value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &value) || value < 0 || value >= limit) {
    return absl::InvalidArgumentError(absl::StrCat("chat server: ", std::string(what), " '",
                                                   std::string(text), "' is not in [0, ", limit,
                                                   ")"));
  }
  return value;
}

// A response: a header line, then the room's recent lines.
std::string EncodeReply(std::string header, const std::vector<std::string>& lines) {
  return absl::StrCat(header, "\n", absl::StrJoin(lines, "\n"));
}

// The faults every request may meet on the server (BUGGIFY): shed, or slow.
Co<absl::Status> ServerFaults() {
  if (SIMSCHED_BUGGIFY("chat.server.unavailable")) {
    co_return absl::UnavailableError("chat server: shedding load");
  }
  if (SIMSCHED_BUGGIFY("chat.server.slow")) co_await Sleep(kSlowRequest);
  co_return absl::OkStatus();
}

// "post <user> <room> <text>": one session; the response sent ends it.
Co<absl::StatusOr<std::string>> HandlePost(ChatService& service, CloudSimulatedScheduler& cloud,
                                           std::string request) {
  std::vector<std::string> parts = absl::StrSplit(request, absl::MaxSplits(' ', 2));
  if (parts.size() != 3) {
    co_return absl::InvalidArgumentError(
        absl::StrCat("chat server: a post is '<user> <room> <text>', got '", request, "'"));
  }
  absl::StatusOr<int> user = ParseIndex(parts[0], service.options().users, "user");
  if (!user.ok()) co_return user.status();
  absl::StatusOr<int> room = ParseIndex(parts[1], service.options().rooms, "room");
  if (!room.ok()) co_return room.status();
  if (absl::Status faults = co_await ServerFaults(); !faults.ok()) co_return faults;

  const SessionId session = cloud.CreateSession();
  const ExecutionContext ctx = *cloud.Context(session);
  PostReply reply = co_await ctx.Spawn(service.PostMessage(ctx, *user, *room, parts[2]));
  std::string response = EncodeReply(
      absl::StrCat("delivered ", reply.delivered, reply.presence_confirmed ? " seen" : ""),
      reply.recent);
  // The response goes to the network as this handler returns.
  if (absl::Status ended = ctx.End(); !ended.ok()) co_return ended;
  co_return response;
}

// "history <room>".
Co<absl::StatusOr<std::string>> HandleHistory(ChatService& service,
                                              CloudSimulatedScheduler& cloud,
                                              std::string request) {
  absl::StatusOr<int> room = ParseIndex(request, service.options().rooms, "room");
  if (!room.ok()) co_return room.status();
  if (absl::Status faults = co_await ServerFaults(); !faults.ok()) co_return faults;

  const SessionId session = cloud.CreateSession();
  const ExecutionContext ctx = *cloud.Context(session);
  std::vector<std::string> lines = co_await ctx.Spawn(service.FetchHistory(ctx, *room));
  std::string response = EncodeReply("history", lines);
  if (absl::Status ended = ctx.End(); !ended.ok()) co_return ended;
  co_return response;
}

// A client's progress; kept outside the host so it survives the world.
struct ClientState {
  explicit ClientState(uint64_t seed) : rng(seed) {}
  Rng rng;
  int done = 0;
  int retries = 0;
  int bad_replies = 0;
};

bool WellFormed(const std::string& reply) {
  return std::count(reply.begin(), reply.end(), '\n') == ChatService::kReplyLines;
}

Co<void> ClientLoop(RpcNode& rpc, ClientState& state, const ChatNetworkOptions& options) {
  const Address server("chat", kChatPort);
  while (state.done < options.requests_per_client) {
    co_await Sleep(std::chrono::milliseconds(state.rng.InRange(20, 200)));  // think time
    const int user = static_cast<int>(state.rng.Below(options.service.users));
    const int room = user % options.service.rooms;
    const bool post = state.rng.Chance(7, 10);
    const std::string method = post ? "post" : "history";
    const std::string body =
        post ? absl::StrCat(user, " ", room, " hello #", state.done) : absl::StrCat(room);
    while (true) {
      absl::StatusOr<std::string> reply =
          co_await rpc.Call(server, method, body, options.request_timeout);
      if (reply.ok()) {
        if (!WellFormed(*reply)) ++state.bad_replies;
        break;
      }
      if (absl::IsInvalidArgument(reply.status())) {  // our request was wrong: a bug
        ++state.bad_replies;
        break;
      }
      ++state.retries;  // lost, crashed, partitioned or shed: try again
      co_await Sleep(20ms);
    }
    ++state.done;
  }
}

}  // namespace

void ServeChat(Host& host, std::shared_ptr<CloudSimulatedScheduler> cloud,
               ChatServiceOptions options) {
  host.OnBoot([cloud = std::move(cloud), options](Host& h) {
    // Volatile: a crash loses the service's state and the node.
    ChatService& service = h.Emplace<ChatService>(options);
    RpcNode& rpc = h.Emplace<RpcNode>(h, kChatPort);
    CloudSimulatedScheduler* sessions = cloud.get();
    rpc.Handle("post", [&service, sessions](std::string request) {
      return HandlePost(service, *sessions, std::move(request));
    });
    rpc.Handle("history", [&service, sessions](std::string request) {
      return HandleHistory(service, *sessions, std::move(request));
    });
    (void)rpc.Start();
  });
}

std::string ChatNetworkResult::Problem() const {
  if (!status.ok()) return absl::StrCat("run failed: ", status.message());
  if (bad_replies > 0) return absl::StrCat(bad_replies, " malformed or refused requests");
  if (!unclean.empty()) return unclean.front();
  if (tasks_left > 0) {
    return absl::StrCat(tasks_left, " tasks still live after the world was torn down");
  }
  return "";
}

ChatNetworkResult RunChatOverNetwork(std::shared_ptr<TestScheduler> test,
                                     const ChatNetworkOptions& options) {
  ChatNetworkResult result;
  std::shared_ptr<CloudSimulatedScheduler> cloud = CloudSimulatedScheduler::Create(test);
  // Declared before the world, so they outlive its tasks.
  std::vector<std::unique_ptr<ClientState>> clients;
  {
    World world(*test, {.log = options.log});
    Host& server = *world.AddHost("chat").value();
    ServeChat(server, cloud, options.service);
    for (int i = 0; i < options.clients; ++i) {
      clients.push_back(std::make_unique<ClientState>(
          SplitMix64(test->seed() ^ (0xc1e47ULL + static_cast<uint64_t>(i)))));
      ClientState& state = *clients.back();
      Host& client = *world.AddHost(absl::StrCat("client", i)).value();
      client.OnBoot([&state, &options](Host& h) {
        RpcNode& rpc = h.Emplace<RpcNode>(h, 9000);
        (void)rpc.Start();
        (void)h.Spawn(ClientLoop(rpc, state, options));
      });
    }

    FaultPlan plan;
    plan.link.loss = options.loss;
    plan.link.duplicate = options.duplicate;
    plan.partition_probability = options.partition_probability;
    plan.crash_probability = options.crash_probability;
    plan.crash_hosts = {"chat"};
    plan.chaos_duration = options.chaos_duration;
    auto all_done = [&] {
      for (const auto& state : clients) {
        if (state->done < options.requests_per_client) return false;
      }
      return true;
    };
    result.status = world.RunFaultPlan(
        plan, {.what = "every client's requests answered",
               .condition = all_done,
               .budget = std::chrono::seconds(20),
               .pending = [&] {
                 std::vector<std::string> out;
                 for (size_t i = 0; i < clients.size(); ++i) {
                   out.push_back(absl::StrCat("client", i, ": ", clients[i]->done, "/",
                                              options.requests_per_client, " answered"));
                 }
                 return absl::StrJoin(out, ", ");
               }});
    if (result.status.ok()) {
      // Let the sessions' grace periods play out before validating them.
      result.status = test->BlockOn(Spawn(*test, [grace = cloud->grace_period()]() -> Co<void> {
        co_await Sleep(grace + 1s);
      }));
    }
    for (SessionId session : cloud->Sessions()) {
      ++result.sessions;
      if (!cloud->Context(session)->ended()) ++result.sessions_cut;
      if (absl::Status clean = cloud->ValidateSessionCleanup(session); !clean.ok()) {
        result.unclean.push_back(std::string(clean.message()));
      }
    }
    const auto counters = world.Counters();
    if (auto it = counters.find("host.crash"); it != counters.end()) {
      result.server_crashes = static_cast<int>(it->second);
    }
    result.event_hash = world.EventHash();
    result.report = world.Report();
  }  // the world goes: every host's tasks are cancelled
  for (const auto& state : clients) {
    result.requests += state->done;
    result.retries += state->retries;
    result.bad_replies += state->bad_replies;
  }
  result.tasks_left = test->LiveTaskCount();
  return result;
}

}  // namespace simsched::examples
