#include "testing/internal/progress_file.h"

#include <cstdlib>

#include "testing/internal/trace_writer.h"

namespace simsched::sim_test_internal {

ProgressFile::ProgressFile(const char* test_name, uint64_t total)
    : test_(JsonEscape(test_name)), total_(total) {
  if (const char* path = std::getenv("SIMSCHED_PROGRESS_FILE"); path != nullptr && *path) {
    file_ = std::fopen(path, "a");
  }
}

ProgressFile::~ProgressFile() {
  if (file_ != nullptr) std::fclose(file_);
}

void ProgressFile::Update(uint64_t done, uint64_t failed, bool last) {
  if (file_ == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  if (!last && done > 1 && now - written_ < std::chrono::milliseconds(200)) return;
  written_ = now;
  std::fprintf(file_, "{\"test\": \"%s\", \"done\": %llu, \"total\": %llu, \"failed\": %llu}\n",
               test_.c_str(), static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total_), static_cast<unsigned long long>(failed));
  std::fflush(file_);
}

}  // namespace simsched::sim_test_internal
