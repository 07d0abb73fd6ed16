#include "sim/buggify.h"

#include <string>
#include <utility>

#include "sim/internal/buggify_registry.h"
#include "sim/properties.h"

namespace simsched::internal {

thread_local BuggifyRegistry* current_buggify = nullptr;

namespace {

// FNV-1a: a fixed, portable hash of the point's name (std::hash is not).
uint64_t HashName(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

double UnitFromBits(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace

BuggifyRegistry::BuggifyRegistry(uint64_t seed, std::function<Duration()> now,
                                 std::function<void(std::string_view)> on_fire)
    : seed_(seed),
      now_(std::move(now)),
      on_fire_(std::move(on_fire)),
      rng_(SplitMix64(seed ^ 0xb0991f7ULL)) {}

bool BuggifyRegistry::Fires(std::string_view name, SourceLocation where) {
  const bool fired = Decide(name);
  if (PropertySink* sink = property_sink; sink != nullptr) [[unlikely]] {
    sink->OnProperty(PropertyKind::kBuggify, fired, name, "SIMSCHED_BUGGIFY", where);
  }
  return fired;
}

bool BuggifyRegistry::Decide(std::string_view name) {
  auto it = points_.find(name);
  if (it == points_.end()) {
    Point point;
    // Enabled per (seed, name), independent of the order points are reached.
    point.enabled =
        UnitFromBits(SplitMix64(seed_ ^ SplitMix64(HashName(name)))) < enable_probability_;
    it = points_.emplace(std::string(name), point).first;
  }
  Point& point = it->second;
  ++point.evaluations;
  if (!point.enabled || !firing_) return false;
  if (!(rng_.NextDouble() < fire_probability_)) return false;
  ++point.fires;
  if (point.first_fire < Duration::zero()) point.first_fire = now_();
  if (on_fire_) on_fire_(it->first);
  return true;
}

bool BuggifyFires(BuggifyRegistry& registry, std::string_view name, SourceLocation where) {
  return registry.Fires(name, where);
}

ScopedBuggify::ScopedBuggify(BuggifyRegistry* registry) : previous_(current_buggify) {
  current_buggify = registry;
}

ScopedBuggify::~ScopedBuggify() { current_buggify = previous_; }

}  // namespace simsched::internal
