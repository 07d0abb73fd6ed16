// Internal to the SIM_TEST harness: appends {"test", "done", "total",
// "failed"} lines to SIMSCHED_PROGRESS_FILE for tools/simctl's live progress
// line: the first seed, then at most every 200 ms of wall time (which paces
// output only, never a decision), then the end of the test. Does nothing
// when the variable is unset.
//
//   ProgressFile progress(test_name, total_seeds);
//   progress.Update(done, failed, /*last=*/false);

#ifndef SIMSCHED_TESTING_INTERNAL_PROGRESS_FILE_H_
#define SIMSCHED_TESTING_INTERNAL_PROGRESS_FILE_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace simsched::sim_test_internal {

class ProgressFile {
 public:
  ProgressFile(const char* test_name, uint64_t total);
  ~ProgressFile();
  ProgressFile(const ProgressFile&) = delete;
  ProgressFile& operator=(const ProgressFile&) = delete;

  // Writes a line unless one was written less than 200 ms ago (`last` and
  // the first seed always write).
  void Update(uint64_t done, uint64_t failed, bool last);

 private:
  std::string test_;
  uint64_t total_;
  FILE* file_ = nullptr;
  std::chrono::steady_clock::time_point written_{};
};

}  // namespace simsched::sim_test_internal

#endif  // SIMSCHED_TESTING_INTERNAL_PROGRESS_FILE_H_
