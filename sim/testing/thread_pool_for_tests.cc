#include "sim/testing/thread_pool_for_tests.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace simsched::testing {

ThreadPoolForTests::ThreadPoolForTests(int threads) {
  const int count = std::max(threads, 1);
  workers_.reserve(count);
  for (int i = 0; i < count; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPoolForTests::~ThreadPoolForTests() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  // Only this thread is left. Cancelling runs frame destructors, which may
  // call back into the pool (OnTaskFinished, timers), so no lock is held
  // while they run; rounds catch what they spawn.
  for (;;) {
    std::deque<Runnable> queued;
    std::map<uint64_t, Timer> timers;
    std::vector<internal::TaskHeader*> live;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queued.swap(queue_);
      timers.swap(timers_);
      for (const auto& [id, task] : live_) {
        task->AddRef();
        live.push_back(task);
      }
    }
    if (queued.empty() && timers.empty() && live.empty()) break;
    queued.clear();
    timers.clear();
    for (internal::TaskHeader* task : live) {
      task->Cancel();
      task->Release();
    }
  }
}

void ThreadPoolForTests::Schedule(Runnable runnable) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(runnable));
  }
  work_cv_.notify_one();
}

void ThreadPoolForTests::ScheduleLabeled(Runnable runnable, TaskLabel) {
  Schedule(std::move(runnable));
}

void ThreadPoolForTests::ScheduleForeground(Runnable runnable) { Schedule(std::move(runnable)); }

bool ThreadPoolForTests::Park(std::optional<Duration>) { return false; }

TimerId ThreadPoolForTests::StartTimer(Instant deadline, Waker waker) {
  TimerId id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id.value = next_timer_id_++;
    timers_.emplace(id.value, Timer{deadline, std::move(waker)});
  }
  work_cv_.notify_all();  // a worker may need to wait less
  return id;
}

void ThreadPoolForTests::CancelTimer(TimerId timer) {
  Waker dropped;  // released outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = timers_.find(timer.value);
  if (it == timers_.end()) return;
  dropped = std::move(it->second.waker);
  timers_.erase(it);
}

bool ThreadPoolForTests::IsTaskRunning(TaskId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.contains(id.value);
}

absl::Status ThreadPoolForTests::BlockOnTask(internal::TaskHeader& task) {
  std::unique_lock<std::mutex> lock(mu_);
  // OnTaskFinished notifies under mu_ after the task's state says finished,
  // so this cannot miss it.
  if (!finished_cv_.wait_for(lock, std::chrono::minutes(1), [&] { return task.finished(); })) {
    return absl::DeadlineExceededError(absl::StrCat(
        "ThreadPoolForTests::BlockOn(", task.metadata.DebugString(),
        ") did not finish within a minute of real time"));
  }
  return absl::OkStatus();
}

void ThreadPoolForTests::OnTaskSpawned(internal::TaskHeader& task) {
  std::lock_guard<std::mutex> lock(mu_);
  task.metadata.id = TaskId{next_task_id_++};
  live_.emplace(task.metadata.id.value, &task);
}

void ThreadPoolForTests::OnTaskFinished(internal::TaskHeader& task) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(task.metadata.id.value);
  finished_cv_.notify_all();
}

void ThreadPoolForTests::OnUnhandledTaskException(const TaskMetadata& task,
                                                  const std::exception_ptr& exception) {
  LogUnhandledTaskException(task, exception);
}

void ThreadPoolForTests::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // Fire due timers (woken outside the lock).
    const Instant now = Clock::now();
    std::vector<Waker> due;
    Instant next_deadline = Instant::max();
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->second.deadline <= now) {
        due.push_back(std::move(it->second.waker));
        it = timers_.erase(it);
      } else {
        next_deadline = std::min(next_deadline, it->second.deadline);
        ++it;
      }
    }
    if (!due.empty()) {
      lock.unlock();
      for (const Waker& waker : due) waker.Wake();
      due.clear();
      lock.lock();
      continue;
    }
    if (!queue_.empty()) {
      Runnable next = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      std::move(next).Run();
      lock.lock();
      continue;
    }
    if (next_deadline == Instant::max()) {
      work_cv_.wait(lock);
    } else {
      work_cv_.wait_until(lock, next_deadline);
    }
  }
}

}  // namespace simsched::testing
