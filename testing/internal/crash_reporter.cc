#include "testing/internal/crash_reporter.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <exception>

#include "scheduler/test_scheduler.h"

#if defined(SIMSCHED_ASAN) || defined(SIMSCHED_TSAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace simsched::sim_test_internal {
namespace {

// Fixed buffers: the handler must not allocate. Names longer than these are
// cut (the replay line then says so by being visibly truncated).
constexpr size_t kTextSize = 1024;

struct CrashState {
  char test[kTextSize] = {};
  char bazel_target[kTextSize] = {};
  char binary[kTextSize] = {};
  const char* strategy = "random";
  uint64_t seed = 0;
  const TestScheduler* scheduler = nullptr;
  std::atomic<bool> in_seed{false};
  std::atomic<bool> reported{false};
};
CrashState state;

constexpr int kSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
struct sigaction previous_actions[sizeof(kSignals) / sizeof(kSignals[0])];
std::terminate_handler previous_terminate = nullptr;
std::atomic<bool> installed{false};

void Copy(char (&to)[kTextSize], std::string_view from) {
  const size_t n = from.size() < kTextSize - 1 ? from.size() : kTextSize - 1;
  std::memcpy(to, from.data(), n);
  to[n] = '\0';
}

// An async-signal-safe line builder over a stack buffer.
class Writer {
 public:
  void Text(const char* s) {
    while (*s != '\0' && size_ < sizeof(buffer_)) buffer_[size_++] = *s++;
  }
  void Number(uint64_t value) {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (n > 0 && size_ < sizeof(buffer_)) buffer_[size_++] = digits[--n];
  }
  void Flush() {
    size_t written = 0;
    while (written < size_) {
      const ssize_t n = write(STDERR_FILENO, buffer_ + written, size_ - written);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    size_ = 0;
  }

 private:
  char buffer_[4 * kTextSize + 512];
  size_t size_ = 0;
};

const char* SignalName(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (segmentation fault)";
    case SIGABRT: return "SIGABRT (abort)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGFPE: return "SIGFPE (arithmetic error)";
    case SIGILL: return "SIGILL (illegal instruction)";
  }
  return "a fatal signal";
}

void OnFatalSignal(int sig) {
  CrashReporter::Report(SignalName(sig));
  // Die as before: hand the signal to the previous handler (the default
  // action, or a sanitizer's report). A fault re-executes and hits it; a
  // raised signal is re-raised.
  for (size_t i = 0; i < sizeof(kSignals) / sizeof(kSignals[0]); ++i) {
    if (kSignals[i] == sig) sigaction(sig, &previous_actions[i], nullptr);
  }
  raise(sig);
}

void OnTerminate() {
  CrashReporter::Report("std::terminate");
  if (previous_terminate != nullptr) previous_terminate();
  abort();
}

}  // namespace

void InstallCrashHandlers() {
  if (installed.exchange(true)) return;
  // An alternate stack, so a stack overflow is reported too.
  static char alternate_stack[64 * 1024];
  stack_t stack = {};
  stack.ss_sp = alternate_stack;
  stack.ss_size = sizeof(alternate_stack);
  sigaltstack(&stack, nullptr);
  struct sigaction action = {};
  action.sa_handler = OnFatalSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_ONSTACK;
  for (size_t i = 0; i < sizeof(kSignals) / sizeof(kSignals[0]); ++i) {
    sigaction(kSignals[i], &action, &previous_actions[i]);
  }
  previous_terminate = std::set_terminate(OnTerminate);
#if defined(SIMSCHED_ASAN) || defined(SIMSCHED_TSAN)
  // A sanitizer that finds an error exits without a signal: report then.
  __sanitizer_set_death_callback([] { CrashReporter::Report("a sanitizer error (report above)"); });
#endif
}

void CrashReporter::BeginTest(std::string_view test_name, std::string_view bazel_target,
                              std::string_view binary_path) {
  Copy(state.test, test_name);
  Copy(state.bazel_target, bazel_target);
  Copy(state.binary, binary_path);
}

void CrashReporter::BeginSeed(uint64_t seed, const char* strategy,
                              const TestScheduler* scheduler) {
  state.seed = seed;
  state.strategy = strategy;
  state.scheduler = scheduler;
  state.in_seed.store(true, std::memory_order_release);
}

void CrashReporter::EndSeed() {
  state.in_seed.store(false, std::memory_order_release);
  state.scheduler = nullptr;
}

bool CrashReporter::Report(const char* what) {
  if (!state.in_seed.load(std::memory_order_acquire)) return false;
  if (state.reported.exchange(true)) return false;  // terminate -> abort -> SIGABRT: once
  Writer w;
  w.Text("\nsimsched: CRASH: ");
  w.Text(what);
  w.Text(" in ");
  w.Text(state.test);
  w.Text(" on seed ");
  w.Number(state.seed);
  w.Text(" (strategy ");
  w.Text(state.strategy);
  w.Text(")");
  if (const TestScheduler* scheduler = state.scheduler) {
    w.Text(" at step ");
    w.Number(scheduler->step_count());
    w.Text(", virtual time +");
    w.Number(static_cast<uint64_t>(scheduler->Elapsed().count()));
    w.Text("ns");
  }
  w.Text("\nreplay this seed:\n");
  if (state.bazel_target[0] != '\0') {
    w.Text("  bazel test ");
    w.Text(state.bazel_target);
    w.Text(" --test_filter=");
    w.Text(state.test);
    w.Text(" --test_env=SIMSCHED_SEED=");
    w.Number(state.seed);
    w.Text(" --test_env=SIMSCHED_STRATEGY=");
    w.Text(state.strategy);
    w.Text(" --test_output=all\n");
  }
  w.Text("  SIMSCHED_SEED=");
  w.Number(state.seed);
  w.Text(" SIMSCHED_STRATEGY=");
  w.Text(state.strategy);
  w.Text(" ");
  w.Text(state.binary);
  w.Text(" --gtest_filter=");
  w.Text(state.test);
  w.Text("\n");
  w.Flush();
  return true;
}

}  // namespace simsched::sim_test_internal
