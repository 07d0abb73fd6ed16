// File: testing/internal/property_tally.h
// -----------------------------------------------------------------------------
//
// Internal to the simulation harness: records the properties of
// sim/properties.h while one seed runs (`SeedPropertyRecorder`), tallies
// them over a sweep or over the summary files of several shards
// (`PropertyTable`), over all sweeps of a test program, so that a declared
// property no seed reached is known (`ProgramPropertyTally`), prints the
// end-of-sweep table and writes/reads its JSON.
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

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view s);

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

  // Adds a row with no seeds for each declared sometimes/reachable property
  // the table has none for (sim/properties.h registers them before main()).
  void AddDeclared(const std::vector<DeclaredProperty>& declared);
  // Sometimes/reachable properties that no seed even evaluated, by name.
  std::vector<std::string> NeverReached() const;

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

// ProgramPropertyTally
//
// The sometimes/reachable properties of a whole test program, over all its
// sweeps: what tells a property no test reached from one another test
// reached. A never-reached property belongs to the sweeps of the source file
// that declares it (or, if none ran from there, to every sweep of the
// program); it is only a warning when all of those set
// `.sometimes_warn_only`.
class ProgramPropertyTally {
 public:
  // One finished sweep: the test's source file, its .sometimes_warn_only.
  void AddSweep(std::string_view file, bool warn_only, const PropertyTable& sweep);
  uint64_t sweeps() const { return sweeps_; }

  // Every declared sometimes/reachable property (and any other evaluated
  // one), counted over all sweeps; never-reached ones have no seeds.
  PropertyTable Table(const std::vector<DeclaredProperty>& declared) const;

  // Whether a never-reached property declared in `file` only warns.
  bool WarnOnly(std::string_view file) const;

 private:
  struct Sweeps {
    uint64_t all = 0;
    uint64_t warn_only = 0;
  };
  PropertyTable table_;  // sometimes/reachable rows only
  std::map<std::string, Sweeps, std::less<>> by_file_;
  uint64_t sweeps_ = 0;
  uint64_t warn_only_sweeps_ = 0;
};

}  // namespace simsched::testing::properties_internal

#endif  // SIMSCHED_TESTING_INTERNAL_PROPERTY_TALLY_H_
