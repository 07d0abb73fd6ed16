// The chat backend served over the simulated network: a sweep finds the
// planted leak through latency, loss, partitions and server crashes; the
// fixed handler passes; crashes cancel the sessions they cut short cleanly.

#include "session/examples/chat_server.h"

#include <cstdint>
#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/test_scheduler.h"
#include "session/session_test_helpers.h"
#include "sim/rpc.h"
#include "sim/world.h"

namespace simsched::examples {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr uint64_t kSeeds = 200;

ChatNetworkResult Simulate(uint64_t seed, bool fixed) {
  ChatNetworkOptions options;
  options.service.fixed = fixed;
  return RunChatOverNetwork(TestScheduler::Create({.seed = seed}), options);
}

TEST(ChatServerTest, FixedServerAnswersEveryRequestThroughChaos) {
  int crashes = 0;
  int cut = 0;
  int retries = 0;
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    ChatNetworkResult r = Simulate(seed, /*fixed=*/true);
    ASSERT_EQ(r.Problem(), "") << "seed " << seed << "\n" << r.report;
    EXPECT_EQ(r.requests, 3 * 10) << "seed " << seed;
    EXPECT_GE(r.sessions, r.requests) << "one session per request served (more with retries)";
    EXPECT_EQ(r.tasks_left, 0u) << "seed " << seed;
    crashes += r.server_crashes;
    cut += r.sessions_cut;
    retries += r.retries;
  }
  std::cout << kSeeds << " seeds: " << crashes << " server crashes, " << cut
            << " sessions cut short by a crash, " << retries << " retried calls\n";
  // The faults really happened, so the checks above mean something.
  EXPECT_GT(crashes, 0);
  EXPECT_GT(cut, 0) << "some crash must land mid-request";
  EXPECT_GT(retries, 0);
}

TEST(ChatServerTest, SweepFindsThePlantedLeakOverTheNetwork) {
  int leaky_seeds = 0;
  uint64_t first_seed = 0;
  std::string first_report;
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    ChatNetworkResult r = Simulate(seed, /*fixed=*/false);
    ASSERT_TRUE(r.status.ok()) << "seed " << seed << ": " << r.status;
    EXPECT_EQ(r.bad_replies, 0) << "seed " << seed;
    EXPECT_EQ(r.tasks_left, 0u) << "seed " << seed;
    if (r.unclean.empty()) continue;
    ++leaky_seeds;
    for (const std::string& report : r.unclean) {
      EXPECT_THAT(report, HasSubstr("\"presence-update\"")) << "seed " << seed;
    }
    if (first_report.empty()) {
      first_seed = seed;
      first_report = r.unclean.front();
    }
  }
  std::cout << "The planted leak shows on " << leaky_seeds << " of " << kSeeds
            << " seeds over the network; the first is seed " << first_seed << ":\n"
            << first_report << "\n";
  EXPECT_GT(leaky_seeds, 0) << "the sweep must find the leak";
  EXPECT_THAT(first_report,
              ContainsRegex("task [0-9]+ \"presence-update\" \\(session [0-9]+\\) spawned at "
                            "[^ ]*session/examples/chat_service.cc:[0-9]+ \\(PostMessage\\)"));
  EXPECT_THAT(first_report, HasSubstr("outlived the response without WaitUntil"));
}

TEST(ChatServerTest, ASeedReplaysExactly) {
  ChatNetworkResult a = Simulate(7, /*fixed=*/false);
  ChatNetworkResult b = Simulate(7, /*fixed=*/false);
  EXPECT_EQ(a.event_hash, b.event_hash);
  EXPECT_EQ(a.report, b.report);
  EXPECT_EQ(a.unclean, b.unclean);
  EXPECT_EQ(a.sessions, b.sessions);
}

// A server and one client host, for the targeted tests below.
struct Cluster {
  explicit Cluster(uint64_t seed, bool fixed)
      : test(TestScheduler::Create({.seed = seed})), cloud(CloudSimulatedScheduler::Create(test)) {
    world = std::make_unique<World>(*test, WorldOptions{.buggify = false});
    server = *world->AddHost("chat");
    client = *world->AddHost("client");
    ServeChat(*server, cloud, {.fixed = fixed});
    rpc = &client->Emplace<RpcNode>(*client, 9000);
    EXPECT_TRUE(rpc->Start().ok());
  }
  ~Cluster() { world.reset(); }  // before the cloud scheduler

  std::shared_ptr<TestScheduler> test;
  std::shared_ptr<CloudSimulatedScheduler> cloud;
  std::unique_ptr<World> world;
  Host* server = nullptr;
  Host* client = nullptr;
  RpcNode* rpc = nullptr;
};

TEST(ChatServerTest, BadRequestsGetInvalidArgument) {
  Cluster cluster(1, /*fixed=*/true);
  const Address server("chat", kChatPort);
  for (const char* body : {"", "1 2", "x 0 hi", "999 0 hi", "0 99 hi", "-1 0 hi"}) {
    auto reply = cluster.test->BlockOn(
        Spawn(*cluster.test, cluster.rpc->Call(server, "post", body, 100ms)));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE(absl::IsInvalidArgument(reply->status())) << "'" << body << "': " << reply->status();
  }
  auto history = cluster.test->BlockOn(
      Spawn(*cluster.test, cluster.rpc->Call(server, "history", "room", 100ms)));
  EXPECT_THAT(history->status().message(), HasSubstr("room 'room' is not in [0, 8)"));
  EXPECT_TRUE(cluster.cloud->Sessions().empty()) << "bad requests open no session";
}

TEST(ChatServerTest, ACrashMidRequestCancelsTheSessionCleanly) {
  Cluster cluster(2, /*fixed=*/false);
  const Address server("chat", kChatPort);
  Task<absl::StatusOr<std::string>> call =
      Spawn(*cluster.test, cluster.rpc->Call(server, "post", "3 3 hello", 100ms));
  // Into the request: delivered (at most 2 ms), the store write (2 ms) done,
  // the presence update (5 ms) still sleeping.
  ASSERT_TRUE(cluster.test->BlockOn(Spawn(*cluster.test, []() -> Co<void> {
    co_await Sleep(4500us);
  })).ok());
  ASSERT_EQ(cluster.cloud->Sessions().size(), 1u);
  const SessionId session = cluster.cloud->Sessions().front();
  ASSERT_FALSE(cluster.cloud->Context(session)->ended());
  const size_t before = cluster.test->LiveTaskCount();
  const size_t server_tasks = cluster.server->TaskCount();
  EXPECT_GE(server_tasks, 4u) << "dispatcher, handler, the session's root and its presence update";

  cluster.server->Crash();
  EXPECT_EQ(cluster.server->TaskCount(), 0u);
  EXPECT_EQ(cluster.test->LiveTaskCount(), before - server_tasks)
      << "every task of the session went with the host";
  auto reply = cluster.test->BlockOn(call);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(reply->status())) << reply->status();
  // The session never responded: cut short, not leaked.
  EXPECT_FALSE(cluster.cloud->Context(session)->ended());
  EXPECT_SESSION_CLEAN(cluster.cloud, session);

  // The restarted server serves again, in a new session.
  ASSERT_TRUE(cluster.server->Restart().ok());
  auto again = cluster.test->BlockOn(
      Spawn(*cluster.test, cluster.rpc->Call(server, "history", "3", 100ms)));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->ok()) << again->status();
  EXPECT_EQ(cluster.cloud->Sessions().size(), 2u);
}

}  // namespace
}  // namespace simsched::examples
