// File: testing/internal/property_tally.h
// -----------------------------------------------------------------------------
//
// Internal to the simulation harness: records the properties of
// sim/properties.h while one seed runs (`SeedPropertyRecorder`), tallies
// them over a sweep or over the summary files of several shards
// (`PropertyTable`), prints the end-of-sweep table and writes/reads its JSON.
//
// Example:
//
//   SeedPropertyRecorder recorder([&](std::string message, SourceLocation where) {...});
//   { ScopedPropertySink sink(&recorder); body(sim); }
//   table.AddSeed(seed, recorder.results());
//   std::printf("%s", table.Format().c_str());

#ifndef SIMSCHED_TESTING_INTERNAL_PROPERTY_TALLY_H_
#define SIMSCHED_TESTING_INTERNAL_PROPERTY_TALLY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/source_location.h"
#include "sim/properties.h"

namespace simsched::testing::properties_internal {

// What one seed did with one property.
struct SeedProperty {
  PropertyKind kind = PropertyKind::kAlways;
  std::string location;  // "file:line" of the first evaluation
  // Safety kinds: never violated in this seed. Others: held at least once.
  bool held = false;
};

// SeedPropertyRecorder
//
// The sink installed while one seed runs. A violated always/unreachable
// property calls `on_violation` once per property and seed.
class SeedPropertyRecorder : public simsched::internal::PropertySink {
 public:
  using ViolationHandler = std::function<void(std::string message, SourceLocation where)>;
  explicit SeedPropertyRecorder(ViolationHandler on_violation)
      : on_violation_(std::move(on_violation)) {}

  void OnProperty(PropertyKind kind, bool held, std::string_view name, const char* expression,
                  SourceLocation where) override;

  // By name (sorted: deterministic).
  const std::map<std::string, SeedProperty>& results() const { return results_; }

 private:
  ViolationHandler on_violation_;
  std::map<std::string, SeedProperty> results_;
};

// PropertyTable
//
// Per property: seeds that evaluated it, seeds where it held, the first
// (smallest) seed that satisfied it. SIMSCHED_BUGGIFY points are rows too
// (kind "buggify": seeds that reached the point, seeds where it fired, the
// first seed that fired it); one that never fired is marked, not failed.
class PropertyTable {
 public:
  struct Row {
    PropertyKind kind = PropertyKind::kAlways;
    std::string location;
    uint64_t seeds_evaluated = 0;
    uint64_t seeds_held = 0;
    std::optional<uint64_t> first_seed;
  };

  void AddSeed(uint64_t seed, const std::map<std::string, SeedProperty>& results);
  // Adds another table's row (another shard's).
  void MergeRow(const std::string& name, const Row& row);
  bool empty() const { return rows_.empty(); }
  const std::map<std::string, Row>& rows() const { return rows_; }

  // Sometimes/reachable properties that no seed satisfied, by name.
  std::vector<std::string> Unsatisfied() const;

  // The table, one line per property, with a header; ends with a newline.
  std::string Format() const;

  // `[{"name": ..., "kind": ..., "location": ..., "evaluated": N, "held": N,
  // "first_seed": N|null}, ...]`
  std::string ToJson() const;
  // Merges the "properties" array of one summary line written by ToJson.
  absl::Status MergeJsonLine(std::string_view line);

 private:
  std::map<std::string, Row> rows_;
};

}  // namespace simsched::testing::properties_internal

#endif  // SIMSCHED_TESTING_INTERNAL_PROPERTY_TALLY_H_
