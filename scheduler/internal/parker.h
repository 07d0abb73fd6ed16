// Internal: a thread parker (mutex + condition variable + sticky flag), the
// real blocking behind `Scheduler::Park` and `Unparker`.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_PARKER_H_
#define SIMSCHED_SCHEDULER_INTERNAL_PARKER_H_

#include <condition_variable>
#include <mutex>
#include <optional>

#include "scheduler/scheduler.h"

namespace simsched::internal {

class Parker {
 public:
  // Blocks until unparked or until `timeout` (real time) passes. Returns true
  // if unparked. An unpark before the park makes this return at once.
  bool Park(std::optional<Duration> timeout);
  void Unpark();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_PARKER_H_
