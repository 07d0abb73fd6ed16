#include "testing/internal/program_properties.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/properties.h"

namespace simsched::testing::properties_internal {
namespace {

// The properties of the whole program, over all its sweeps (the test
// environment below reports them once every test has run).
struct ProgramProperties {
  ProgramPropertyTally tally;
  SummaryWriter append_summary = nullptr;
  uint64_t shard_index = 0;
  uint64_t total_shards = 1;
  bool replayed_one_seed = false;
};

ProgramProperties& GetProgramProperties() {
  static ProgramProperties* program = new ProgramProperties();  // outlives every test
  return *program;
}

// A sometimes- or reachable-property that no seed of any sweep even
// evaluated: the code holding it never ran. Only the program as a whole can
// say so (another test may reach it), so this runs after the last test: it
// prints the program's table, writes it to the summary file (for
// //testing:property_report), and fails the program naming each such
// property, or warns when the verdict belongs elsewhere.
void ReportProgramProperties() {
  ProgramProperties& program = GetProgramProperties();
  if (program.tally.sweeps() == 0) return;
  const std::vector<DeclaredProperty> declared = DeclaredProperties();
  const PropertyTable table = program.tally.Table(declared);
  const char* target = std::getenv("TEST_TARGET");
  program.append_summary(
      absl::StrCat("{\"program\": ",
                   JsonQuote(target != nullptr ? target : program_invocation_short_name),
                   ", \"shard_index\": ", program.shard_index,
                   ", \"total_shards\": ", program.total_shards,
                   ", \"sweeps\": ", program.tally.sweeps(),
                   ", \"properties\": ", table.ToJson(), "}"));
  const std::vector<std::string> never = table.NeverReached();
  if (never.empty()) return;
  std::printf("simsched: properties declared in this program, over its %llu sweeps:\n%s",
              static_cast<unsigned long long>(program.tally.sweeps()), table.Format().c_str());
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  const char* why_not =
      program.total_shards > 1
          ? "this is one shard; run //testing:property_report over all shards' summary files "
            "for the verdict"
      : program.replayed_one_seed ? "one seed was replayed"
      : unit.test_to_run_count() < unit.total_test_count()
          ? "not every test of the program ran (a --gtest_filter, or disabled tests)"
      : unit.failed_test_count() > 0 ? "the program already failed"
                                     : nullptr;
  std::string failing, warning;
  std::string first_file;  // the failure points at the first failing declaration
  int first_line = 0;
  for (const std::string& name : never) {
    const std::string& where = table.rows().at(name).location;
    const std::string file = where.substr(0, where.rfind(':'));
    const bool fails = why_not == nullptr && !program.tally.WarnOnly(file);
    if (fails && first_file.empty()) {
      first_file = file;
      first_line = std::atoi(where.c_str() + where.rfind(':') + 1);
    }
    absl::StrAppend(fails ? &failing : &warning, "\n  \"", name, "\" (",
                    std::string(PropertyKindName(table.rows().at(name).kind)), ", ", where, ")");
  }
  if (!warning.empty()) {
    std::printf("simsched: warning: no seed of any test in this program reached%s\n(not a "
                "failure: %s)\n",
                warning.c_str(), why_not != nullptr ? why_not : ".sometimes_warn_only is set");
  }
  if (!failing.empty()) {
    ADD_FAILURE_AT(first_file.c_str(), first_line)
        << "simsched: no seed of any test in this program reached these properties "
           "(declared, but the code that holds them never ran: more seeds, another "
           "strategy, a test that exercises it, or dead code):"
        << failing;
  }
}

class ProgramPropertiesEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { ReportProgramProperties(); }
};

// Before main(), like the properties themselves.
[[maybe_unused]] const ::testing::Environment* const kProgramPropertiesEnvironment =
    ::testing::AddGlobalTestEnvironment(new ProgramPropertiesEnvironment());

}  // namespace

void RecordSweep(const SweepScope& scope, const PropertyTable& table,
                 SummaryWriter append_summary) {
  ProgramProperties& program = GetProgramProperties();
  program.tally.AddSweep(scope.test_file, scope.warn_only, table);
  program.append_summary = append_summary;
  program.shard_index = scope.shard_index;
  program.total_shards = scope.total_shards;
  program.replayed_one_seed |= scope.replayed_one_seed;
}

}  // namespace simsched::testing::properties_internal
