#include "testing/internal/property_tally.h"

#include <algorithm>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace simsched::testing::properties_internal {

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

namespace {

std::string JsonUnescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      if (s[i] == 'u' && i + 4 < s.size()) {
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 4)), nullptr, 16));
        i += 4;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::optional<PropertyKind> KindFromName(std::string_view name) {
  for (PropertyKind kind : {PropertyKind::kAlways, PropertyKind::kUnreachable,
                            PropertyKind::kSometimes, PropertyKind::kReachable,
                            PropertyKind::kBuggify}) {
    if (PropertyKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

}  // namespace

void SeedPropertyRecorder::OnProperty(PropertyKind kind, bool held, std::string_view name,
                                      const char* expression, SourceLocation where) {
  auto [it, inserted] = results_.try_emplace(std::string(name));
  SeedProperty& property = it->second;
  if (inserted) {
    property.kind = kind;
    property.location = absl::StrCat(where.file_name(), ":", where.line());
    property.held = IsSafetyProperty(kind);
  }
  if (IsSafetyProperty(kind)) {
    if (!held && property.held) {
      property.held = false;
      on_violation_(kind == PropertyKind::kUnreachable
                        ? absl::StrCat("SIMSCHED_UNREACHABLE(\"", std::string(name),
                                       "\") was reached")
                        : absl::StrCat("SIMSCHED_ALWAYS(\"", std::string(name),
                                       "\") failed: ", expression, " is false"),
                    where);
    }
  } else if (held) {
    property.held = true;
  }
}

void PropertyTable::AddSeed(uint64_t seed, const std::map<std::string, SeedProperty>& results) {
  for (const auto& [name, property] : results) {
    Row row;
    row.kind = property.kind;
    row.location = property.location;
    row.seeds_evaluated = 1;
    row.seeds_held = property.held ? 1 : 0;
    if (property.held) row.first_seed = seed;
    MergeRow(name, row);
  }
}

void PropertyTable::MergeRow(const std::string& name, const Row& row) {
  auto [it, inserted] = rows_.try_emplace(name, row);
  if (inserted) return;
  Row& mine = it->second;
  mine.seeds_evaluated += row.seeds_evaluated;
  mine.seeds_held += row.seeds_held;
  if (row.first_seed.has_value()) {
    mine.first_seed =
        mine.first_seed.has_value() ? std::min(*mine.first_seed, *row.first_seed) : *row.first_seed;
  }
}

std::vector<std::string> PropertyTable::Unsatisfied() const {
  std::vector<std::string> out;
  for (const auto& [name, row] : rows_) {
    // A buggify point that never fired is a note in the table, not a failure.
    if (row.kind == PropertyKind::kBuggify) continue;
    if (!IsSafetyProperty(row.kind) && row.seeds_held == 0) out.push_back(name);
  }
  return out;
}

void PropertyTable::AddDeclared(const std::vector<DeclaredProperty>& declared) {
  for (const DeclaredProperty& property : declared) {
    if (IsSafetyProperty(property.kind)) continue;
    Row row;
    row.kind = property.kind;
    row.location = absl::StrCat(std::string(property.file), ":", property.line);
    // The first declaration (they come sorted) names the row; a row that
    // exists keeps its counts and the location of its first evaluation.
    rows_.try_emplace(std::string(property.name), row);
  }
}

std::vector<std::string> PropertyTable::NeverReached() const {
  std::vector<std::string> out;
  for (const auto& [name, row] : rows_) {
    if (!IsSafetyProperty(row.kind) && row.seeds_evaluated == 0) out.push_back(name);
  }
  return out;
}

void ProgramPropertyTally::AddSweep(std::string_view file, bool warn_only,
                                    const PropertyTable& sweep) {
  ++sweeps_;
  warn_only_sweeps_ += warn_only ? 1 : 0;
  auto [it, inserted] = by_file_.try_emplace(std::string(file));
  ++it->second.all;
  it->second.warn_only += warn_only ? 1 : 0;
  for (const auto& [name, row] : sweep.rows()) {
    if (!IsSafetyProperty(row.kind)) table_.MergeRow(name, row);
  }
}

PropertyTable ProgramPropertyTally::Table(const std::vector<DeclaredProperty>& declared) const {
  PropertyTable table = table_;
  table.AddDeclared(declared);
  return table;
}

bool ProgramPropertyTally::WarnOnly(std::string_view file) const {
  auto it = by_file_.find(file);
  if (it != by_file_.end()) return it->second.warn_only == it->second.all;
  return sweeps_ > 0 && warn_only_sweeps_ == sweeps_;
}

std::string PropertyTable::Format() const {
  size_t width = 8;
  for (const auto& [name, row] : rows_) width = std::max(width, name.size() + 2);
  std::string out = absl::StrFormat("  %-*s %-11s %10s %10s  %-10s  %s\n", width, "property",
                                    "kind", "evaluated", "held", "first seed", "where");
  for (const auto& [name, row] : rows_) {
    const std::string first =
        row.first_seed.has_value() ? absl::StrCat(*row.first_seed) : std::string("-");
    std::string verdict;
    if (!IsSafetyProperty(row.kind) && row.seeds_held == 0) {
      verdict = row.seeds_evaluated == 0 ? "  NEVER REACHED" : "  NEVER SATISFIED";
    }
    if (IsSafetyProperty(row.kind) && row.seeds_held < row.seeds_evaluated) verdict = "  VIOLATED";
    if (row.kind == PropertyKind::kBuggify && row.seeds_held == 0) verdict = "  never fired";
    absl::StrAppend(&out, absl::StrFormat("  %-*s %-11s %10d %10d  %-10s  %s%s\n", width,
                                          absl::StrCat("\"", name, "\""),
                                          std::string(PropertyKindName(row.kind)),
                                          row.seeds_evaluated, row.seeds_held, first,
                                          row.location, verdict));
  }
  return out;
}

std::string PropertyTable::ToJson() const {
  std::string out = "[";
  bool first = true;
  for (const auto& [name, row] : rows_) {
    absl::StrAppend(&out, first ? "" : ", ", "{\"name\": ", JsonQuote(name), ", \"kind\": \"",
                    std::string(PropertyKindName(row.kind)), "\", \"location\": ",
                    JsonQuote(row.location), ", \"evaluated\": ", row.seeds_evaluated,
                    ", \"held\": ", row.seeds_held, ", \"first_seed\": ",
                    row.first_seed.has_value() ? absl::StrCat(*row.first_seed) : "null", "}");
    first = false;
  }
  return out + "]";
}

absl::Status PropertyTable::MergeJsonLine(std::string_view line) {
  static const std::regex kEntry(
      "\\{\"name\": \"((?:[^\"\\\\]|\\\\.)*)\", \"kind\": \"([a-z]+)\", \"location\": "
      "\"((?:[^\"\\\\]|\\\\.)*)\", \"evaluated\": ([0-9]+), \"held\": ([0-9]+), "
      "\"first_seed\": ([0-9]+|null)\\}");
  const size_t start = line.find("\"properties\": [");
  if (start == std::string_view::npos) return absl::OkStatus();  // a line without properties
  const std::string text(line.substr(start));
  for (std::sregex_iterator it(text.begin(), text.end(), kEntry), end; it != end; ++it) {
    const std::smatch& m = *it;
    std::optional<PropertyKind> kind = KindFromName(m[2].str());
    if (!kind.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown property kind \"", m[2].str(), "\" in a summary line"));
    }
    Row row;
    row.kind = *kind;
    row.location = JsonUnescape(m[3].str());
    row.seeds_evaluated = std::stoull(m[4].str());
    row.seeds_held = std::stoull(m[5].str());
    if (m[6].str() != "null") row.first_seed = std::stoull(m[6].str());
    MergeRow(JsonUnescape(m[1].str()), row);
  }
  return absl::OkStatus();
}

}  // namespace simsched::testing::properties_internal
