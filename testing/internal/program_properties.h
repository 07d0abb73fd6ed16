// File: testing/internal/program_properties.h
// -----------------------------------------------------------------------------
//
// Internal to the simulation harness: the SIMSCHED_SOMETIMES/REACHABLE
// properties of a whole test program. Each finished sweep is recorded here;
// after the program's last test, a GoogleTest environment prints the table
// of every declared sometimes/reachable property (sim/properties.h registers
// them before main()), writes it to the summary file for
// //testing:property_report, and fails the program naming each property no
// seed of any test reached (or warns: one shard of several, one replayed
// seed, a filter that left tests out, or `.sometimes_warn_only` on every
// sweep the property belongs to; see ProgramPropertyTally).
//
// Example (inside RunSimTest):
//
//   RecordSweep({.test_file = where.file_name(), .warn_only = false}, table,
//               [](const std::string& line) { AppendSummary(line); });

#ifndef SIMSCHED_TESTING_INTERNAL_PROGRAM_PROPERTIES_H_
#define SIMSCHED_TESTING_INTERNAL_PROGRAM_PROPERTIES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "testing/internal/property_tally.h"

namespace simsched::testing::properties_internal {

// Where a sweep ran and what it asked for.
struct SweepScope {
  std::string_view test_file;
  bool warn_only = false;
  uint64_t shard_index = 0;
  uint64_t total_shards = 1;
  bool replayed_one_seed = false;
};

// Appends one line to the shard's simsched_summary.jsonl.
using SummaryWriter = void (*)(const std::string& line);

// RecordSweep()
//
// Adds one finished sweep's table to the program's.
void RecordSweep(const SweepScope& scope, const PropertyTable& table,
                 SummaryWriter append_summary);

}  // namespace simsched::testing::properties_internal

#endif  // SIMSCHED_TESTING_INTERNAL_PROGRAM_PROPERTIES_H_
