#include "testing/sweep_config.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "scheduler/strategy.h"

namespace simsched::testing {
namespace {

constexpr char kWholeNumber[] = "a whole number from 0 to 18446744073709551615";

absl::Status BadValue(const char* name, const char* value, const char* accepted) {
  return absl::InvalidArgumentError(absl::StrCat("environment variable ", name, "=\"", value,
                                                 "\" is not valid: expected ", accepted));
}

absl::Status ReadUint64(const EnvLookup& getenv, const char* name, const char* accepted,
                        std::optional<uint64_t>& out) {
  const char* value = EnvironmentValue(getenv, name);
  if (value == nullptr) return absl::OkStatus();
  std::optional<uint64_t> parsed = ParseUint64(value);
  if (!parsed.has_value()) return BadValue(name, value, accepted);
  out = parsed;
  return absl::OkStatus();
}

absl::Status ReadFlag(const EnvLookup& getenv, const char* name, bool& out) {
  const char* value = EnvironmentValue(getenv, name);
  if (value == nullptr) return absl::OkStatus();
  const std::string_view v(value);
  if (v == "1" || v == "true") {
    out = true;
  } else if (v == "0" || v == "false") {
    out = false;
  } else {
    return BadValue(name, value, "1 or 0 (or true/false)");
  }
  return absl::OkStatus();
}

}  // namespace

const char* EnvironmentValue(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

const char* EnvironmentValue(const EnvLookup& getenv, const char* name) {
  const char* value = getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

absl::StatusOr<uint64_t> EnvironmentUint64(const char* name, uint64_t default_value) {
  std::optional<uint64_t> value;
  if (absl::Status s =
          ReadUint64([](const char* n) { return std::getenv(n); }, name, kWholeNumber, value);
      !s.ok()) {
    return s;
  }
  return value.value_or(default_value);
}

absl::StatusOr<std::vector<uint64_t>> SeedsFromEnvironment(std::string_view prefix,
                                                           uint64_t default_count,
                                                           uint64_t default_start) {
  const std::string single_name = std::string(prefix) + "_SEED";
  const std::string count_name = std::string(prefix) + "_SEEDS";
  const std::string start_name = std::string(prefix) + "_START_SEED";
  const EnvLookup getenv = [](const char* n) { return std::getenv(n); };
  std::optional<uint64_t> single, count, start;
  for (auto [name, out] : {std::pair{&single_name, &single}, std::pair{&count_name, &count},
                           std::pair{&start_name, &start}}) {
    if (absl::Status s = ReadUint64(getenv, name->c_str(), kWholeNumber, *out); !s.ok()) return s;
  }
  if (single.has_value()) return std::vector<uint64_t>{*single};
  if (count.has_value() && *count == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(count_name, "=0 would run nothing; give a positive number of seeds"));
  }
  const uint64_t n = count.value_or(default_count);
  const uint64_t first = start.value_or(default_start);
  if (n - 1 > UINT64_MAX - first) {
    return absl::InvalidArgumentError(absl::StrCat(start_name, "=", first, " plus ", count_name,
                                                   "=", n, " runs past the last seed, 2^64-1"));
  }
  std::vector<uint64_t> seeds;
  seeds.reserve(n);
  for (uint64_t i = 0; i < n; ++i) seeds.push_back(first + i);
  return seeds;
}

std::optional<uint64_t> ParseUint64(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;  // overflow
    value = value * 10 + digit;
  }
  return value;
}

absl::StatusOr<SweepConfig> SweepConfigFromEnvironment(uint64_t default_iterations,
                                                       const EnvLookup& getenv) {
  SweepConfig config;
  config.iterations = default_iterations;

  std::optional<uint64_t> value;
  if (absl::Status s = ReadUint64(getenv, "SIMSCHED_ITERATIONS",
                                  "a positive whole number of seeds, e.g. 500", value);
      !s.ok()) {
    return s;
  }
  if (value.has_value()) {
    if (*value == 0) {
      return BadValue("SIMSCHED_ITERATIONS", "0",
                      "a positive whole number of seeds, e.g. 500 (zero would test nothing)");
    }
    config.iterations = *value;
  }
  value.reset();
  if (absl::Status s = ReadUint64(getenv, "SIMSCHED_SEED",
                                  "a seed: a whole number from 0 to 18446744073709551615", value);
      !s.ok()) {
    return s;
  }
  config.single_seed = value;
  value.reset();
  if (absl::Status s = ReadUint64(getenv, "SIMSCHED_START_SEED",
                                  "a seed: a whole number from 0 to 18446744073709551615", value);
      !s.ok()) {
    return s;
  }
  if (value.has_value()) {
    if (*value > UINT64_MAX - config.iterations) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SIMSCHED_START_SEED=", *value, " with SIMSCHED_ITERATIONS=", config.iterations,
          " runs past the largest seed; lower one of them"));
    }
    config.start_seed = *value;
  }

  if (const char* budget = EnvironmentValue(getenv, "SIMSCHED_TIME_BUDGET"); budget != nullptr) {
    absl::Duration duration;
    if (!absl::ParseDuration(budget, &duration) || duration <= absl::ZeroDuration() ||
        duration == absl::InfiniteDuration()) {
      return BadValue("SIMSCHED_TIME_BUDGET", budget,
                      "a positive duration with a unit, e.g. 30s, 2m, 1500ms, 1h");
    }
    config.time_budget = absl::ToChronoNanoseconds(duration);
  }

  if (absl::Status s = ReadFlag(getenv, "SIMSCHED_COLLECT_ALL", config.collect_all); !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadFlag(getenv, "SIMSCHED_CHECK_DETERMINISM", config.check_determinism);
      !s.ok()) {
    return s;
  }
  if (const char* log = EnvironmentValue(getenv, "SIMSCHED_LOG"); log != nullptr) {
    const std::string_view v(log);
    if (v == "full") {
      config.full_log = true;
    } else if (v != "short") {
      return BadValue("SIMSCHED_LOG", log, "short or full");
    }
  }

  if (const char* strategy = EnvironmentValue(getenv, "SIMSCHED_STRATEGY"); strategy != nullptr) {
    absl::StatusOr<StrategySpec> spec = ParseStrategy(strategy);
    if (!spec.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("environment variable SIMSCHED_STRATEGY=\"",
                                                     strategy, "\" is not valid: ",
                                                     spec.status().message()));
    }
    config.strategy = std::string(strategy);
  }

  if (const char* trace = EnvironmentValue(getenv, "SIMSCHED_TRACE_FILE"); trace != nullptr) {
    if (!config.single_seed.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SIMSCHED_TRACE_FILE=", trace,
          " records one run: set SIMSCHED_SEED too (a sweep's seeds are not traced)"));
    }
    config.trace_file = std::string(trace);
  }

  // Seed sharding. The sim test main moves gtest's shard variables to these
  // SIMSCHED_ names so gtest itself does not also shard the tests away.
  std::optional<uint64_t> total, index;
  for (const char* name : {"SIMSCHED_TOTAL_SHARDS", "GTEST_TOTAL_SHARDS"}) {
    if (absl::Status s = ReadUint64(getenv, name, "a positive whole number of shards", total);
        !s.ok()) {
      return s;
    }
    if (total.has_value()) break;
  }
  for (const char* name : {"SIMSCHED_SHARD_INDEX", "GTEST_SHARD_INDEX"}) {
    if (absl::Status s = ReadUint64(getenv, name, "a shard index from 0 to total shards - 1", index);
        !s.ok()) {
      return s;
    }
    if (index.has_value()) break;
  }
  // A Kubernetes Indexed Job gives each pod JOB_COMPLETION_INDEX; it counts
  // only when a total is set (a pod of an unsharded job is not a shard).
  if (total.has_value() && !index.has_value()) {
    if (absl::Status s = ReadUint64(getenv, "JOB_COMPLETION_INDEX",
                                    "a shard index from 0 to total shards - 1", index);
        !s.ok()) {
      return s;
    }
  }
  if (total.has_value() || index.has_value()) {
    if (!total.has_value() || !index.has_value() || *total == 0 || *index >= *total) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shard variables are inconsistent: total shards ",
          total.has_value() ? absl::StrCat(*total) : "(unset)", ", shard index ",
          index.has_value() ? absl::StrCat(*index) : "(unset)",
          "; set both, with 0 <= index < total: SIMSCHED_TOTAL_SHARDS and "
          "SIMSCHED_SHARD_INDEX (or JOB_COMPLETION_INDEX), or GTEST_TOTAL_SHARDS and "
          "GTEST_SHARD_INDEX (Bazel's shard_count sets these)"));
    }
    config.total_shards = *total;
    config.shard_index = *index;
  }
  return config;
}

std::vector<uint64_t> SweepSeeds(const SweepConfig& config) {
  std::vector<uint64_t> seeds;
  const uint64_t count = SweepSeedCount(config);
  for (uint64_t j = 0; j < count; ++j) seeds.push_back(SweepSeedAt(config, j));
  return seeds;
}

uint64_t SweepSeedCount(const SweepConfig& config) {
  if (config.single_seed.has_value()) return config.shard_index == 0 ? 1 : 0;
  const uint64_t shards = config.total_shards == 0 ? 1 : config.total_shards;
  if (config.iterations <= config.shard_index) return 0;
  // Indices shard_index, shard_index + shards, ... below iterations; written
  // so that nothing overflows at iterations = 2^64-1.
  return (config.iterations - config.shard_index - 1) / shards + 1;
}

uint64_t SweepSeedAt(const SweepConfig& config, uint64_t j) {
  if (config.single_seed.has_value()) return *config.single_seed;
  const uint64_t shards = config.total_shards == 0 ? 1 : config.total_shards;
  return config.start_seed + config.shard_index + j * shards;  // wraps mod 2^64
}

}  // namespace simsched::testing
