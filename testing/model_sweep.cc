#include "testing/model_sweep.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "testing/sweep_config.h"

namespace simsched::testing {

int SweepModelSeeds(std::string_view prefix, const ModelSweepOptions& options,
                    const std::function<std::string(uint64_t seed)>& run_seed) {
  const absl::StatusOr<std::vector<uint64_t>> seeds =
      SeedsFromEnvironment(prefix, options.default_count, options.default_start);
  if (!seeds.ok()) {
    ADD_FAILURE() << seeds.status();
    return 1;
  }
  int failures = 0;
  for (uint64_t seed : *seeds) {
    if (failures == options.max_failures) break;
    const std::string failure = run_seed(seed);
    if (failure.empty()) continue;
    ++failures;
    ADD_FAILURE() << "seed " << seed << " (replay: " << prefix << "_SEED=" << seed
                  << "): " << failure;
  }
  return failures;
}

}  // namespace simsched::testing
