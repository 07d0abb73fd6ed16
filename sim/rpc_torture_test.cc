// RpcNode under a seeded torture: thousands of generated worlds in which
// every host serves a method and calls it on random hosts from two client
// tasks, with random timeouts, over faulty links, while a chaos task crashes
// and restarts hosts and cuts and heals links. A model says what each call
// may return:
//
//   * an OK result is the response to that very request ("done:" + it),
//     from the host it was sent to, whose handler ran for it; an error is a
//     timeout, the handler's own error for that request (same code and
//     message), Unimplemented for a method nobody serves, or a refusal of a
//     full link, and nothing else;
//   * a call never returns later than its timeout;
//   * a handler runs at most once per request unless the link duplicates,
//     and no handler or client of a crashed incarnation runs again;
//   * once the faults stop, every call with a long timeout succeeds;
//   * nothing is left running at the end, and the same seed gives the same
//     run.
//
// SIMSCHED_RPC_TORTURE_SEEDS (default 5,000) and
// SIMSCHED_RPC_TORTURE_START_SEED widen a run by hand; a failure prints its
// seed and SIMSCHED_RPC_TORTURE_SEED=N, which replays it.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "sim/internal/testing/world_chaos.h"
#include "sim/random.h"
#include "sim/rpc.h"
#include "sim/world.h"
#include "testing/model_sweep.h"

namespace simsched {
namespace {

using std::chrono::milliseconds;

constexpr uint32_t kPort = 7000;

struct Scenario {
  int hosts;
  LinkOptions link;
  int chaos_steps;
  int calls_per_client;
};

Scenario MakeScenario(uint64_t seed) {
  Rng rng(seed ^ 0x94d049bb133111ebULL);
  Scenario s;
  s.hosts = static_cast<int>(rng.InRange(2, 4));
  s.link = testing::RandomLinkOptions(rng);
  s.chaos_steps = static_cast<int>(rng.InRange(0, 25));
  s.calls_per_client = static_cast<int>(rng.InRange(1, 15));
  return s;
}

// What a run exercised, to check that the generator reaches every case.
struct Coverage {
  int ok = 0;
  int handler_errors = 0;
  int timeouts = 0;
  int unimplemented = 0;
  int crashes = 0;
  int late_handlers = 0;  // a handler still running when its call gave up
};

std::string HostName(int h) { return absl::StrCat("h", h); }

// A request "h1/2/c0/5" (host, incarnation, client, call) succeeds unless
// its call number is a multiple of 5: then the handler fails, with a message
// naming the request.
bool HandlerFails(int call) { return call % 5 == 0; }

class SeededRpcWorld : public testing::WorldRunRecord {
 public:
  SeededRpcWorld(uint64_t seed, const Scenario& scenario)
      : scenario_(scenario),
        scheduler_({.seed = seed}),
        world_(scheduler_, {.record_events = false, .buggify = false}),
        rng_(seed ^ 0xbf58476d1ce4e5b9ULL),
        nodes_(scenario.hosts, nullptr) {}

  std::string Go() {
    if (absl::Status s = world_.network().SetDefaultLink(scenario_.link); !s.ok()) {
      return s.ToString();
    }
    for (int h = 0; h < scenario_.hosts; ++h) {
      absl::StatusOr<Host*> host = world_.AddHost(HostName(h));
      if (!host.ok()) return host.status().ToString();
      hosts_.push_back(*host);
    }
    for (int h = 0; h < scenario_.hosts; ++h) {
      hosts_[h]->OnBoot([this, h](Host& host) { Boot(h, host); });
    }
    if (absl::Status s = scheduler_.BlockOn(Spawn(scheduler_, Chaos())); !s.ok()) {
      Violation(absl::StrCat("chaos: ", s.ToString()));
    }
    if (absl::Status s = scheduler_.Run(); !s.ok()) Violation(absl::StrCat("run: ", s.ToString()));
    for (Host* host : hosts_) {
      if (host->TaskCount() != 0) {
        Violation(absl::StrCat(host->name(), " still has ", host->TaskCount(), " tasks"));
      }
    }
    if (finals_ok_ != finals_) {
      Violation(absl::StrCat(finals_ - finals_ok_, " of ", finals_,
                             " calls made after the faults stopped failed"));
    }
    if (!violations().empty()) return violations().front();
    absl::StrAppend(&transcript_, "steps ", scheduler_.step_count(), " events ",
                    world_.EventHash());
    return "";
  }

  const Coverage& coverage() const { return coverage_; }

 private:
  struct Request {
    int to;
    int handler_runs = 0;
    bool call_returned = false;
  };

  bool StillAlive(int h, uint64_t incarnation, const char* who) {
    return WorldRunRecord::StillAlive(*hosts_[h], incarnation, who);
  }

  void Boot(int h, Host& host) {
    const uint64_t incarnation = host.incarnation();
    RpcNode& node = host.Emplace<RpcNode>(host, kPort);
    node.Handle("work", [this, h, incarnation](std::string request) {
      return Handler(h, incarnation, std::move(request));
    });
    if (absl::Status s = node.Start(); !s.ok()) {
      Violation(absl::StrCat("start at boot: ", s.ToString()));
      return;
    }
    nodes_[h] = &node;
    for (int client = 0; client < 2; ++client) {
      if (absl::Status s = host.Spawn(Client(h, incarnation, client)); !s.ok()) {
        Violation(absl::StrCat("spawn at boot: ", s.ToString()));
      }
    }
  }

  Co<absl::StatusOr<std::string>> Handler(int h, uint64_t incarnation, std::string request) {
    Note(absl::StrCat("serve ", request, " at ", HostName(h)));
    auto it = requests_.find(request);
    if (it == requests_.end()) {
      Violation(absl::StrCat("a handler got '", request, "', which nobody sent"));
      co_return absl::InternalError("unknown");
    }
    if (it->second.to != h) {
      Violation(
          absl::StrCat("'", request, "' for ", HostName(it->second.to), " ran at ", HostName(h)));
    }
    ++it->second.handler_runs;
    if (it->second.handler_runs > 1 && scenario_.link.duplicate == 0) {
      Violation(absl::StrCat("'", request, "' ran ", it->second.handler_runs,
                             " times over a link that does not duplicate"));
    }
    co_await Sleep(milliseconds(rng_.InRange(0, 30)));
    if (!StillAlive(h, incarnation, "handler")) co_return absl::InternalError("dead");
    coverage_.late_handlers += requests_[request].call_returned;
    const int call = std::stoi(request.substr(request.rfind('/') + 1));
    if (HandlerFails(call)) co_return absl::NotFoundError(absl::StrCat("no:", request));
    co_return absl::StrCat("done:", request);
  }

  // Calls `to` and checks the result against the model. True if it succeeded.
  Co<bool> CallAndCheck(int from, int to, std::string method, std::string request,
                        milliseconds timeout, int call) {
    if (method == "work") requests_[request] = Request{to};
    const Instant start = scheduler_.Now();
    absl::StatusOr<std::string> result =
        co_await nodes_[from]->Call(Address(HostName(to), kPort), method, request, timeout);
    const Duration took = scheduler_.Now() - start;
    if (method == "work") requests_[request].call_returned = true;
    Note(absl::StrCat("call ", request, " -> ", HostName(to), ": ",
                      result.ok() ? *result : result.status().ToString()));
    if (took > timeout) {
      Violation(absl::StrCat("'", request, "' returned after ", FormatDuration(took),
                             ", past its timeout ", FormatDuration(timeout)));
    }
    if (method != "work") {
      if (absl::IsUnimplemented(result.status())) {
        ++coverage_.unimplemented;
      } else if (!absl::IsDeadlineExceeded(result.status()) &&
                 !absl::IsResourceExhausted(result.status())) {
        Violation(absl::StrCat("'", method, "' nobody serves gave ", result.status().ToString()));
      }
      co_return false;
    }
    const int runs = requests_[request].handler_runs;
    if (result.ok()) {
      ++coverage_.ok;
      if (*result != absl::StrCat("done:", request) || HandlerFails(call)) {
        Violation(absl::StrCat("'", request, "' got '", *result, "': a response to another call"));
      }
      if (runs == 0) Violation(absl::StrCat("'", request, "' succeeded without its handler"));
      co_return true;
    }
    const absl::Status& status = result.status();
    if (absl::IsNotFound(status)) {
      ++coverage_.handler_errors;
      if (!HandlerFails(call) || status.message() != absl::StrCat("no:", request) || runs == 0) {
        Violation(
            absl::StrCat("'", request, "' got ", status.ToString(), ": an error of another call"));
      }
    } else if (absl::IsDeadlineExceeded(status)) {
      ++coverage_.timeouts;
    } else if (!(absl::IsResourceExhausted(status) && testing::IsTight(scenario_.link) &&
                 !scenario_.link.drop_when_full)) {
      Violation(absl::StrCat("'", request, "' got ", status.ToString()));
    }
    co_return false;
  }

  Co<void> Client(int h, uint64_t incarnation, int client) {
    for (int call = 0; call < scenario_.calls_per_client; ++call) {
      co_await Sleep(milliseconds(rng_.InRange(0, 10)));
      if (!StillAlive(h, incarnation, "client")) co_return;
      const int to = static_cast<int>(rng_.Below(scenario_.hosts));
      const milliseconds timeout(rng_.InRange(1, 40));
      const std::string request =
          absl::StrCat(HostName(h), "/", incarnation, "/c", client, "/", call);
      const std::string method = rng_.Chance(1, 10) ? "nope" : "work";
      (void)co_await CallAndCheck(h, to, method, request, timeout, call);
      if (!StillAlive(h, incarnation, "client")) co_return;
    }
  }

  Co<void> Chaos() {
    for (int step = 0; step < scenario_.chaos_steps; ++step) {
      co_await Sleep(milliseconds(rng_.InRange(1, 40)));
      const testing::ChaosStep chaos = testing::RandomChaosStep(hosts_, world_.network(), rng_);
      if (chaos.kind == testing::ChaosStep::kNothing) continue;
      Note(chaos.description);
      if (!chaos.status.ok())
        Violation(absl::StrCat(chaos.description, ": ", chaos.status.ToString()));
      if (chaos.kind == testing::ChaosStep::kCrash) {
        ++coverage_.crashes;
        nodes_[chaos.host] = nullptr;
      }
    }
    world_.StopFaults();
    faults_stopped_ = true;
    co_await Sleep(std::chrono::seconds(1));  // the clients finish, the links drain
    // Every host calls every host once, one call at a time: all must succeed.
    for (int from = 0; from < scenario_.hosts; ++from) {
      for (int to = 0; to < scenario_.hosts; ++to) {
        ++finals_;
        const int call = 1;  // not a failing call number
        finals_ok_ += co_await CallAndCheck(from, to, "work",
                                            absl::StrCat("final/", from, "->", to, "/", call),
                                            milliseconds(500), call);
      }
    }
    for (Host* host : hosts_) host->Crash();
  }

  const Scenario scenario_;
  TestScheduler scheduler_;
  World world_;
  Rng rng_;
  std::vector<Host*> hosts_;
  std::vector<RpcNode*> nodes_;  // the current incarnation's (volatile)
  std::map<std::string, Request> requests_;
  bool faults_stopped_ = false;
  int finals_ = 0;
  int finals_ok_ = 0;
  Coverage coverage_;
};

TEST(RpcTortureTest, ModelHoldsOverManySeeds) {
  // SIMSCHED_RPC_TORTURE_SEED(S)/START_SEED; a failing seed prints its replay line
  // (testing/model_sweep.h).
  testing::SweepModelSeeds("SIMSCHED_RPC_TORTURE", {.default_count = 5000}, [](uint64_t seed) {
    return SeededRpcWorld(seed, MakeScenario(seed)).Go();
  });
}

TEST(RpcTortureTest, TheGeneratorReachesEveryCase) {
  Coverage total;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SeededRpcWorld run(seed, MakeScenario(seed));
    ASSERT_EQ(run.Go(), "") << "seed " << seed;
    const Coverage& c = run.coverage();
    total.ok += c.ok;
    total.handler_errors += c.handler_errors;
    total.timeouts += c.timeouts;
    total.unimplemented += c.unimplemented;
    total.crashes += c.crashes;
    total.late_handlers += c.late_handlers;
  }
  EXPECT_GT(total.ok, 1000);
  EXPECT_GT(total.handler_errors, 100);
  EXPECT_GT(total.timeouts, 100);
  EXPECT_GT(total.unimplemented, 50);
  EXPECT_GT(total.crashes, 200);
  EXPECT_GT(total.late_handlers, 50);
}

TEST(RpcTortureTest, ASeedRunsTheSameEveryTime) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SeededRpcWorld a(seed, MakeScenario(seed));
    SeededRpcWorld b(seed, MakeScenario(seed));
    ASSERT_EQ(a.Go(), "") << "seed " << seed;
    ASSERT_EQ(b.Go(), "") << "seed " << seed;
    EXPECT_EQ(a.transcript(), b.transcript()) << "seed " << seed;
  }
}

}  // namespace
}  // namespace simsched
