// property_report: the property table of a sweep run as several shards.
//
// Each shard of a sim_test writes its own tally of SIMSCHED_SOMETIMES /
// REACHABLE / ALWAYS / UNREACHABLE properties to simsched_summary.jsonl in
// its undeclared outputs; one shard alone cannot tell whether another
// satisfied a sometimes-property. This merges the tallies per test, prints
// one table per test, and exits 1 naming every sometimes- or reachable-
// property that no seed of any shard satisfied (0 otherwise). Each shard
// also writes one line for the whole program listing every declared
// sometimes/reachable property (sim/properties.h registers them before
// main()), so a property no seed of any test in any shard reached is named
// too; one reached in any shard counts as reached.
//
// Usage (arguments are summary files, directories searched for them, or
// Bazel's outputs.zip, read with `unzip -p`):
//
//   bazel test //my:sim_test
//   bazel run //testing:property_report -- $PWD/bazel-testlogs/my/sim_test

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "testing/internal/property_tally.h"

namespace {

using simsched::testing::properties_internal::PropertyTable;

std::vector<std::string> ReadLines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::string text;
  if (path.extension() == ".zip") {
    const std::string command =
        "unzip -p '" + path.string() + "' simsched_summary.jsonl 2>/dev/null";
    if (FILE* pipe = popen(command.c_str(), "r")) {
      char buffer[4096];
      size_t n;
      while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
      pclose(pipe);
    }
  } else {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: property_report <simsched_summary.jsonl | outputs.zip | directory>...\n";
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg)) {
        const std::string name = entry.path().filename().string();
        if (name == "simsched_summary.jsonl" || name == "outputs.zip") files.push_back(entry.path());
      }
    } else if (std::filesystem::exists(arg)) {
      files.push_back(arg);
    } else {
      std::cerr << "property_report: " << arg << " does not exist\n";
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  static const std::regex kTest("^\\{\"test\": \"((?:[^\"\\\\]|\\\\.)*)\"");
  static const std::regex kProgram("^\\{\"program\": \"((?:[^\"\\\\]|\\\\.)*)\"");
  std::map<std::string, PropertyTable> tables;
  std::map<std::string, PropertyTable> programs;
  size_t lines_read = 0;
  for (const auto& file : files) {
    for (const std::string& line : ReadLines(file)) {
      std::smatch m;
      PropertyTable* table = nullptr;
      if (std::regex_search(line, m, kTest)) {
        table = &tables[m[1].str()];
      } else if (std::regex_search(line, m, kProgram)) {
        table = &programs[m[1].str()];
      } else {
        continue;
      }
      ++lines_read;
      if (absl::Status s = table->MergeJsonLine(line); !s.ok()) {
        std::cerr << "property_report: " << file << ": " << s.message() << "\n";
        return 2;
      }
    }
  }
  std::printf("property_report: %zu summary lines from %zu files\n", lines_read, files.size());
  int unsatisfied = 0;
  for (const auto& [test, table] : tables) {
    if (table.empty()) continue;
    std::printf("%s:\n%s", test.c_str(), table.Format().c_str());
    for (const std::string& name : table.Unsatisfied()) {
      std::printf("UNSATISFIED: %s: no seed of any shard satisfied \"%s\"\n", test.c_str(),
                  name.c_str());
      ++unsatisfied;
    }
  }
  for (const auto& [program, table] : programs) {
    const std::vector<std::string> never = table.NeverReached();
    if (never.empty()) continue;
    std::printf("%s (the whole program; every declared property):\n%s", program.c_str(),
                table.Format().c_str());
    for (const std::string& name : never) {
      std::printf("NEVER REACHED: %s: no seed of any test in any shard reached \"%s\" (%s)\n",
                  program.c_str(), name.c_str(), table.rows().at(name).location.c_str());
      ++unsatisfied;
    }
  }
  return unsatisfied == 0 ? 0 : 1;
}
