#include "session/examples/chat_service.h"

#include <cstdint>
#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "session/session_test_helpers.h"

namespace simsched::examples {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

constexpr uint64_t kSeeds = 200;

// 100 concurrent requests under `seed`, served by the planted or fixed handler.
ChatTraffic Simulate(uint64_t seed, bool fixed) {
  ChatTrafficOptions options;
  options.seed = seed;
  options.service.fixed = fixed;
  return SimulateChatTraffic(options);
}

// The first unclean session of a run, if any.
struct Leak {
  SessionId session;
  std::string report;
};
std::optional<Leak> FirstLeak(const ChatTraffic& traffic) {
  for (SessionId session : traffic.sessions) {
    absl::Status status = traffic.cloud->ValidateSessionCleanup(session);
    if (!status.ok()) return Leak{session, std::string(status.message())};
  }
  return std::nullopt;
}

TEST(ChatServiceTest, TrafficRunsAHundredConcurrentSessionsThatDoTheirWork) {
  ChatTraffic traffic = Simulate(/*seed=*/1, /*fixed=*/true);
  ASSERT_TRUE(traffic.run.ok()) << traffic.run;
  EXPECT_EQ(traffic.sessions.size(), 100u);
  EXPECT_EQ(traffic.posts + traffic.fetches, 100);
  int stored = 0;
  for (int room = 0; room < traffic.service->options().rooms; ++room) {
    stored += static_cast<int>(traffic.service->History(room).size()) - ChatService::kReplyLines;
  }
  EXPECT_EQ(stored, traffic.posts);
  EXPECT_EQ(traffic.service->PresenceUpdates(), traffic.posts)
      << "the fixed handler lets every presence update finish";
  EXPECT_GE(traffic.service->SummaryRefreshes(), traffic.posts)
      << "WaitUntil work ran to the end after the responses";
}

TEST(ChatServiceTest, SeedSweepFindsThePlantedPresenceLeakAndNamesItsSpawnSite) {
  int leaky_seeds = 0;
  std::optional<Leak> first;
  uint64_t first_seed = 0;
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    ChatTraffic traffic = Simulate(seed, /*fixed=*/false);
    ASSERT_TRUE(traffic.run.ok()) << "seed " << seed << ": " << traffic.run;
    std::optional<Leak> leak = FirstLeak(traffic);
    if (!leak.has_value()) continue;
    ++leaky_seeds;
    // Every offender is the presence update: the only leak in the service.
    for (SessionId session : traffic.sessions) {
      absl::Status status = traffic.cloud->ValidateSessionCleanup(session);
      if (status.ok()) continue;
      EXPECT_THAT(std::string(status.message()),
                  ContainsRegex(absl::StrCat("1 task not handed to WaitUntil ran past it[^\n]*\n  task [0-9]+ "
                                             "\"presence-update\" \\(session ",
                                             session.value, "\\)")))
          << "seed " << seed;
    }
    if (!first.has_value()) {
      first = leak;
      first_seed = seed;
    }
  }
  std::cout << "The planted leak shows on " << leaky_seeds << " of " << kSeeds
            << " seeds; the first is seed " << first_seed << ":\n"
            << (first.has_value() ? first->report : "(none)") << "\n";
  EXPECT_GT(leaky_seeds, 0) << "the sweep must find the leak";
  EXPECT_LT(leaky_seeds, static_cast<int>(kSeeds)) << "only some interleavings expose it";
  ASSERT_TRUE(first.has_value());
  EXPECT_THAT(first->report,
              ContainsRegex("task [0-9]+ \"presence-update\" \\(session [0-9]+\\) spawned at "
                            "[^ ]*session/examples/chat_service.cc:[0-9]+ \\(PostMessage\\)"));
  EXPECT_THAT(first->report, HasSubstr("outlived the response without WaitUntil"));
  EXPECT_THAT(first->report, HasSubstr(absl::StrCat("seed ", first_seed, ",")));
}

TEST(ChatServiceTest, FixedHandlerPassesTheSameSweep) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    ChatTraffic traffic = Simulate(seed, /*fixed=*/true);
    ASSERT_TRUE(traffic.run.ok()) << "seed " << seed << ": " << traffic.run;
    for (SessionId session : traffic.sessions) {
      ASSERT_SESSION_CLEAN(traffic.cloud, session) << "seed " << seed;
    }
  }
}

TEST(ChatServiceTest, ALeakySeedReplaysWithTheSameReport) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    std::optional<Leak> leak = FirstLeak(Simulate(seed, /*fixed=*/false));
    if (!leak.has_value()) continue;
    std::optional<Leak> replay = FirstLeak(Simulate(seed, /*fixed=*/false));
    ASSERT_TRUE(replay.has_value()) << "seed " << seed << " did not replay";
    EXPECT_EQ(replay->session, leak->session);
    EXPECT_EQ(replay->report, leak->report);
    return;
  }
  FAIL() << "no seed leaked";
}

}  // namespace
}  // namespace simsched::examples
