#include "testing/regression_seeds.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace simsched::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RegressionSeedsTest, ParsesSeedsForTheNamedTestInFileOrder) {
  absl::StatusOr<std::vector<uint64_t>> seeds = ParseRegressionSeeds(
      "# header comment\n"
      "\n"
      "Bank.Transfers 137   # the overdraft race\n"
      "Other.Test 5\n"
      "  Bank.Transfers\t2024\r\n"
      "Bank.Transfers 1",
      "bank.seeds", "Bank.Transfers");
  ASSERT_TRUE(seeds.ok()) << seeds.status();
  EXPECT_THAT(*seeds, ElementsAre(137, 2024, 1));
}

TEST(RegressionSeedsTest, MalformedLinesNameTheFileAndLine) {
  struct Case {
    const char* contents;
    const char* line;
    const char* problem;
  };
  for (const Case& c : {Case{"A.b 1\nA.b\n", "bank.seeds:2:", "missing seed"},
                        Case{"A.b 1\n\nA.b twelve\n", "bank.seeds:3:", "not a whole number"},
                        Case{"Ab 1\n", "bank.seeds:1:", "without a dot"},
                        Case{"A.b 99999999999999999999\n", "bank.seeds:1:", "not a whole number"},
                        Case{"A.b -1\n", "bank.seeds:1:", "not a whole number"}}) {
    absl::StatusOr<std::vector<uint64_t>> seeds =
        ParseRegressionSeeds(c.contents, "bank.seeds", "A.b");
    ASSERT_FALSE(seeds.ok()) << c.contents;
    EXPECT_EQ(seeds.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(seeds.status().message()), HasSubstr(c.line));
    EXPECT_THAT(std::string(seeds.status().message()), HasSubstr(c.problem));
    EXPECT_THAT(std::string(seeds.status().message()), HasSubstr("<Suite.Name> <seed>"));
  }
}

TEST(RegressionSeedsTest, LoadsFromAPathAndReportsAMissingFile) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/x.seeds";
  std::ofstream(path) << "A.b 9\n";
  absl::StatusOr<std::vector<uint64_t>> seeds = LoadRegressionSeeds(path, "A.b");
  ASSERT_TRUE(seeds.ok()) << seeds.status();
  EXPECT_THAT(*seeds, ElementsAre(9));
  absl::StatusOr<std::vector<uint64_t>> missing = LoadRegressionSeeds("/no/such.seeds", "A.b");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/no/such.seeds"));
}

}  // namespace
}  // namespace simsched::testing
