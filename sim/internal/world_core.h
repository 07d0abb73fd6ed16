// Internal: the state a World's hosts, network and disks share: the
// scheduler, the seeded fault streams, and the event log with its digest.

#ifndef SIMSCHED_SIM_INTERNAL_WORLD_CORE_H_
#define SIMSCHED_SIM_INTERNAL_WORLD_CORE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "scheduler/test_scheduler.h"
#include "sim/random.h"

namespace simsched::internal {

class WorldCore {
 public:
  WorldCore(TestScheduler& scheduler, std::function<void(std::string_view)> log,
            bool record_events, size_t keep_events)
      : scheduler(scheduler),
        network_rng(SplitMix64(scheduler.seed() ^ 0x6e657477ULL)),
        disk_rng(SplitMix64(scheduler.seed() ^ 0x6469736bULL)),
        nemesis_rng(SplitMix64(scheduler.seed() ^ 0x6e656d65ULL)),
        cpu_rng(SplitMix64(scheduler.seed() ^ 0x637075ULL)),
        log_(std::move(log)),
        record_events_(record_events),
        keep_events_(keep_events) {}

  // Whether events are written out (formatting them costs; callers skip it
  // when nobody reads them).
  bool verbose() const {
    return record_events_ || log_ != nullptr || scheduler.options().record_trace;
  }

  // Mixes `code` into the event digest and counts `counter`; with `text`
  // (verbose only) records "t=+5ms <text>".
  void Event(std::string_view counter, uint64_t code) {
    Count(counter);
    Mix(code);
  }
  void Event(std::string_view counter, uint64_t code, std::string_view text) {
    Event(counter, code);
    if (!verbose()) return;
    // A traced run (SIMSCHED_TRACE_FILE) shows world events on its timeline.
    scheduler.AddTraceNote(counter, text);
    std::string line = absl::StrCat("t=", FormatDuration(scheduler.Elapsed()), " ", std::string(text));
    if (log_) log_(line);
    if (record_events_) {
      events_.push_back(std::move(line));
      if (events_.size() > keep_events_) events_.pop_front();
    }
  }
  // Counts without an event (hot path: a delivered message).
  void Count(std::string_view counter, uint64_t n = 1) {
    auto it = counters_.find(counter);
    if (it == counters_.end()) it = counters_.emplace(std::string(counter), 0).first;
    it->second += n;
  }

  uint64_t hash() const { return hash_; }
  const std::deque<std::string>& events() const { return events_; }
  const std::map<std::string, uint64_t, std::less<>>& counters() const { return counters_; }

  TestScheduler& scheduler;
  Rng network_rng;
  Rng disk_rng;
  Rng nemesis_rng;
  Rng cpu_rng;

 private:
  void Mix(uint64_t code) {
    hash_ = SplitMix64(hash_ ^ code ^ static_cast<uint64_t>(scheduler.Elapsed().count()));
  }

  std::function<void(std::string_view)> log_;
  bool record_events_;
  size_t keep_events_;
  uint64_t hash_ = 0;
  std::deque<std::string> events_;
  std::map<std::string, uint64_t, std::less<>> counters_;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SIM_INTERNAL_WORLD_CORE_H_
