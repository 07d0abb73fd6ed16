// The property macros themselves (sim/properties.h), outside any
// simulation: nothing is evaluated and nothing aborts, and every property is
// registered before main(). A plain test program, not a sweep: properties
// evaluated only here are, by design, never reached by a simulation (the
// harness's behaviour is tested in //testing:properties_test).

#include "sim/properties.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace simsched {
namespace {

using ::testing::HasSubstr;

TEST(PropertiesTest, OutsideASimulationNothingIsEvaluatedOrAborted) {
  int evaluated = 0;
  auto count = [&] { return ++evaluated > 0; };
  SIMSCHED_ALWAYS(count() && false, "never true");
  SIMSCHED_UNREACHABLE("reached outside a simulation");
  SIMSCHED_SOMETIMES(count(), "counted");
  SIMSCHED_REACHABLE("reachable outside");
  EXPECT_EQ(evaluated, 0);
}

TEST(PropertiesTest, EveryPropertyIsRegisteredBeforeMainInNameOrder) {
  bool found = false;
  std::string previous;
  for (const DeclaredProperty& p : DeclaredProperties()) {
    EXPECT_LE(previous, std::string(p.name)) << "sorted by name, not by address";
    previous = std::string(p.name);
    if (p.name == "reached outside a simulation") {
      found = true;
      EXPECT_EQ(p.kind, PropertyKind::kUnreachable);
      EXPECT_THAT(std::string(p.file), HasSubstr("sim/property_macros_test.cc"));
    }
  }
  EXPECT_TRUE(found);
  // Including a property in code no test here runs.
  if (found && previous.empty()) SIMSCHED_REACHABLE("in code that never runs");
  bool never_run_found = false;
  for (const DeclaredProperty& p : DeclaredProperties()) {
    never_run_found |= p.name == "in code that never runs" && p.kind == PropertyKind::kReachable;
  }
  EXPECT_TRUE(never_run_found);
}

}  // namespace
}  // namespace simsched
