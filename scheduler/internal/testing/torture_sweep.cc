#include "scheduler/internal/testing/torture_sweep.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/sweep_config.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SIMSCHED_TORTURE_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SIMSCHED_TORTURE_SANITIZER 1
#endif
#ifdef SIMSCHED_TORTURE_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

namespace simsched::internal {
namespace {

std::string ReplayCommand(const char* target, uint64_t seed) {
  return absl::StrCat("bazel test ", target, " --test_env=SIMSCHED_TORTURE_SEED=", seed,
                      " --test_output=all");
}

// Written before each seed, read by a dying process: a fixed buffer, no
// allocation in the handler.
char crash_note[512];
size_t crash_note_length = 0;

void WriteCrashNote() {
  if (crash_note_length > 0) (void)!write(STDERR_FILENO, crash_note, crash_note_length);
}

void OnFatalSignal(int signal_number) {
  WriteCrashNote();
  // SA_RESETHAND restored the default action: die as the signal meant to.
  raise(signal_number);
}

void InstallCrashNoteHandlers() {
#ifdef SIMSCHED_TORTURE_SANITIZER
  __sanitizer_set_death_callback(&WriteCrashNote);
#endif
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = &OnFatalSignal;
  action.sa_flags = SA_RESETHAND;
  // SIGTERM: what Bazel sends a test that hangs past its timeout.
  for (int signal_number : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTERM}) {
    sigaction(signal_number, &action, nullptr);
  }
}

}  // namespace

absl::StatusOr<std::vector<uint64_t>> TortureSeedsFromEnvironment(uint64_t default_count) {
  return simsched::testing::SeedsFromEnvironment("SIMSCHED_TORTURE", default_count);
}

std::string TortureFailureReport(const char* target, const TorturePlan& plan,
                                 const std::vector<std::string>& violations) {
  std::string out = absl::StrCat("simsched torture: seed ", plan.seed, " failed (",
                                 violations.size(), " violation(s)):\n");
  for (const std::string& violation : violations) absl::StrAppend(&out, "  ", violation, "\n");
  absl::StrAppend(&out, DescribeTorturePlan(plan), "replay this seed:\n  ",
                  ReplayCommand(target, plan.seed), "\n");
  return out;
}

void SetTortureCrashNote(const char* target, uint64_t seed) {
  static const bool installed = (InstallCrashNoteHandlers(), true);
  (void)installed;
  const std::string note = absl::StrCat("\nsimsched torture: the process died while running seed ",
                                        seed, "; replay it with\n  ",
                                        ReplayCommand(target, seed), "\n");
  crash_note_length = std::min(note.size(), sizeof(crash_note));
  std::memcpy(crash_note, note.data(), crash_note_length);
}

void RunTortureSweep(const char* target, uint64_t default_count,
                     const TorturePlanOptions& options,
                     absl::FunctionRef<std::vector<std::string>(const TorturePlan&)> run) {
  absl::StatusOr<std::vector<uint64_t>> seeds = TortureSeedsFromEnvironment(default_count);
  ASSERT_TRUE(seeds.ok()) << seeds.status().message();
  int failures = 0;
  for (uint64_t seed : *seeds) {
    const TorturePlan plan = GenerateTorturePlan(seed, options);
    if (seeds->size() == 1) std::cout << DescribeTorturePlan(plan) << std::flush;
    SetTortureCrashNote(target, seed);
    const std::vector<std::string> violations = run(plan);
    if (violations.empty()) continue;
    ADD_FAILURE() << TortureFailureReport(target, plan, violations);
    if (++failures == 5) {
      ADD_FAILURE() << "stopping after 5 failing seeds";
      return;
    }
  }
}

}  // namespace simsched::internal
