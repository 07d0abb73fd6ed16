#include "scheduler/strategy.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sim/random.h"

namespace simsched {
namespace {

constexpr char kAccepted[] =
    "random, fifo, pos, mix, pct, pct:D (D = 1..20), optionally with :k=N (N = 1..10^12, the "
    "expected steps of one run) after pct or mix; e.g. \"pct:3\" or \"pct:2:k=500\"";

// Keeps mix's choice independent of the scheduling stream (same seed).
constexpr uint64_t kMixSalt = 0x6d69785f73747261ULL;

absl::Status Bad(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad scheduling strategy \"", std::string(text),
                                                 "\": ", std::string(why), ". Accepted: ",
                                                 kAccepted));
}

// Strict decimal: digits only, no sign or spaces, no overflow.
bool ParseWhole(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

std::vector<std::string_view> SplitColons(std::string_view text) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t colon = text.find(':');
    parts.push_back(text.substr(0, colon));
    if (colon == std::string_view::npos) return parts;
    text.remove_prefix(colon + 1);
  }
}

}  // namespace

std::string StrategySpec::ToString() const {
  std::string out;
  switch (kind) {
    case StrategyKind::kRandom: return "random";
    case StrategyKind::kFifo: return "fifo";
    case StrategyKind::kPos: return "pos";
    case StrategyKind::kPct: out = absl::StrCat("pct:", depth); break;
    case StrategyKind::kMix: out = "mix"; break;
  }
  if (run_length != 0) absl::StrAppend(&out, ":k=", run_length);
  return out;
}

absl::StatusOr<StrategySpec> ParseStrategy(std::string_view text) {
  const std::vector<std::string_view> parts = SplitColons(text);
  StrategySpec spec;
  const std::string_view name = parts[0];
  size_t next = 1;
  if (name == "random" || name == "fifo" || name == "pos") {
    if (parts.size() > 1) return Bad(text, absl::StrCat(std::string(name), " takes no parameters"));
    spec.kind = name == "random" ? StrategyKind::kRandom
                : name == "fifo" ? StrategyKind::kFifo
                                 : StrategyKind::kPos;
    return spec;
  }
  if (name == "mix") {
    spec.kind = StrategyKind::kMix;
  } else if (name == "pct") {
    spec.kind = StrategyKind::kPct;
    if (parts.size() > 1 && parts[1].substr(0, 2) != "k=") {
      uint64_t depth = 0;
      if (!ParseWhole(parts[1], depth) || depth < 1 || depth > StrategySpec::kMaxDepth) {
        return Bad(text, absl::StrCat("the PCT depth \"", std::string(parts[1]),
                                      "\" is not a whole number from 1 to ",
                                      StrategySpec::kMaxDepth));
      }
      spec.depth = static_cast<uint32_t>(depth);
      next = 2;
    }
  } else {
    return Bad(text, name.empty() ? "it is empty" : absl::StrCat("unknown strategy \"", std::string(name), "\""));
  }
  if (next < parts.size()) {
    const std::string_view k = parts[next];
    uint64_t run_length = 0;
    if (k.substr(0, 2) != "k=" || !ParseWhole(k.substr(2), run_length) || run_length == 0) {
      return Bad(text, absl::StrCat("\"", std::string(k), "\" is not k=N with N a positive whole number"));
    }
    if (run_length > StrategySpec::kMaxRunLength) {
      return Bad(text, absl::StrCat("k=", run_length, " is more than ", StrategySpec::kMaxRunLength,
                                    " steps; give the expected steps of one run"));
    }
    spec.run_length = run_length;
    ++next;
  }
  if (next < parts.size()) return Bad(text, absl::StrCat("unexpected \"", std::string(parts[next]), "\""));
  return spec;
}

StrategySpec ResolveStrategy(const StrategySpec& spec, uint64_t seed) {
  if (spec.kind != StrategyKind::kMix) return spec;
  StrategySpec out;
  out.run_length = spec.run_length;
  // Weights out of 16: random 4, pct:2 3, pct:3 3, pct:4 1, pos 5.
  const uint64_t slot = SplitMix64(seed ^ kMixSalt) % 16;
  if (slot < 4) {
    out.kind = StrategyKind::kRandom;
    out.run_length = 0;
  } else if (slot < 11) {
    out.kind = StrategyKind::kPct;
    out.depth = slot < 7 ? 2 : slot < 10 ? 3 : 4;
  } else {
    out.kind = StrategyKind::kPos;
    out.run_length = 0;
  }
  return out;
}

void RunLengthEstimator::Observe(uint64_t steps) {
  if (observed_.size() >= kCalibrationRuns) return;
  observed_.push_back(std::max<uint64_t>(steps, 1));
  std::vector<uint64_t> sorted = observed_;
  std::sort(sorted.begin(), sorted.end());
  estimate_ = sorted[sorted.size() / 2];
}

}  // namespace simsched
