// Internal: the per-World state behind SIMSCHED_BUGGIFY (sim/buggify.h).

#ifndef SIMSCHED_SIM_INTERNAL_BUGGIFY_REGISTRY_H_
#define SIMSCHED_SIM_INTERNAL_BUGGIFY_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "scheduler/scheduler.h"
#include "scheduler/source_location.h"
#include "sim/random.h"

namespace simsched::internal {

class BuggifyRegistry {
 public:
  struct Point {
    bool enabled = false;
    uint64_t evaluations = 0;
    uint64_t fires = 0;
    Duration first_fire{-1};
  };

  // `on_fire(name)` is called at every firing (for the world's event log).
  BuggifyRegistry(uint64_t seed, std::function<Duration()> now,
                  std::function<void(std::string_view)> on_fire);

  void Configure(double enable_probability, double fire_probability) {
    enable_probability_ = enable_probability;
    fire_probability_ = fire_probability;
  }
  // Stops firing (the liveness phase); evaluations are still counted.
  void SetFiring(bool firing) { firing_ = firing; }

  // Also reports the evaluation to the harness's property sink, if any.
  bool Fires(std::string_view name, SourceLocation where = SourceLocation::current());

  // Points in name order (a std::map: the report's order is deterministic).
  const std::map<std::string, Point, std::less<>>& points() const { return points_; }

 private:
  bool Decide(std::string_view name);

  uint64_t seed_;
  std::function<Duration()> now_;
  std::function<void(std::string_view)> on_fire_;
  Rng rng_;
  double enable_probability_ = 0.25;
  double fire_probability_ = 0.25;
  bool firing_ = true;
  std::map<std::string, Point, std::less<>> points_;
};

// Installs a registry as this thread's current one for its lifetime,
// restoring the previous one after (worlds may nest).
class ScopedBuggify {
 public:
  explicit ScopedBuggify(BuggifyRegistry* registry);
  ~ScopedBuggify();
  ScopedBuggify(const ScopedBuggify&) = delete;
  ScopedBuggify& operator=(const ScopedBuggify&) = delete;

 private:
  BuggifyRegistry* previous_;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SIM_INTERNAL_BUGGIFY_REGISTRY_H_
