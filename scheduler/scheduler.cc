#include "scheduler/scheduler.h"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/logging.h"
#include "scheduler/internal/parker.h"
#include "scheduler/internal/task_header.h"

namespace simsched {

std::string FormatDuration(Duration duration, DurationStyle style) {
  const char* sign = style == DurationStyle::kElapsed ? "+" : "";
  const int64_t ns = duration.count();
  if (ns % 1'000'000'000 == 0) return absl::StrCat(sign, ns / 1'000'000'000, "s");
  if (ns % 1'000'000 == 0) return absl::StrCat(sign, ns / 1'000'000, "ms");
  if (ns % 1'000 == 0) return absl::StrCat(sign, ns / 1'000, "us");
  return absl::StrCat(sign, ns, "ns");
}

void Unparker::Unpark() const {
  if (parker_ != nullptr) parker_->Unpark();
}

void Scheduler::StartSpawnedTask(internal::TaskHeader& task) {
  OnTaskSpawned(task);
  task.ScheduleSelf();
}

TimerId Scheduler::StartTaskTimer(Instant deadline, internal::TaskHeader& task) {
  return StartTimer(deadline, Waker::ForTask(&task));
}

bool Scheduler::Runs(const internal::TaskHeader& task) const {
  for (const Scheduler* s = task.scheduler(); s != nullptr; s = s->WrappedScheduler()) {
    if (s == this) return true;
  }
  return false;
}

void Scheduler::LogUnhandledTaskException(const TaskMetadata& task,
                                          const std::exception_ptr& exception) {
  internal::Logger().error("exception escaped {} and was never observed: {}",
                           task.DebugString(), DescribeException(exception));
}

std::string Scheduler::DescribeException(const std::exception_ptr& exception) {
  if (exception == nullptr) return "no exception";
  try {
    std::rethrow_exception(exception);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

Co<void> SimulateRandomDelay(uint32_t max_yields, SourceLocation location) {
  internal::TaskHeader& task = internal::RequireCurrentTask("SimulateRandomDelay()");
  const uint32_t yields = task.scheduler()->RandomDelayYields(max_yields);
  (void)location;  // the yields record no wait site: a yielded task is queued
  for (uint32_t i = 0; i < yields; ++i) co_await Yield();
}

namespace internal {

void ThrowNotInTask(const char* what, const char* alternative) {
  throw std::logic_error(absl::StrCat(
      "simsched: ", what,
      " was awaited outside a simsched task; spawn the coroutine on a Scheduler (Spawn, or "
      "BlockOn from plain code)",
      alternative != nullptr ? absl::StrCat(", or ", alternative) : std::string()));
}

bool Parker::Park(std::optional<Duration> timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!notified_) {
    if (timeout.has_value()) {
      cv_.wait_for(lock, *timeout, [this] { return notified_; });
    } else {
      cv_.wait(lock, [this] { return notified_; });
    }
  }
  return std::exchange(notified_, false);
}

void Parker::Unpark() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
  }
  cv_.notify_one();
}

}  // namespace internal
}  // namespace simsched
