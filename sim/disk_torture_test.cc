// The simulated disk under a seeded torture: thousands of generated runs of
// random file operations (open, create, write at offsets, append, truncate,
// read, sync, rename over other files, delete, sync the directory) on a few
// names, through handles old and new, with crashes and restarts in between,
// some with torn writes and corrupted reads. A model of the documented
// semantics (sim/disk.h) runs beside the disk and says what each call must
// return:
//
//   * contents and sizes as written, errors where the model has them
//     (NotFound for a missing name, FailedPrecondition for a handle from
//     before a crash and for any use while the host is down), a corrupted
//     read differing in exactly one byte;
//   * the names that exist (`Exists`, `List`) at every point;
//   * after a crash: every name back to its synced file, every file back to
//     its synced bytes, or with torn writes to those plus a prefix of its
//     unsynced writes (the last one cut anywhere), and a file no synced name
//     reaches gone.
//
// SIMSCHED_DISK_TORTURE_SEEDS (default 5,000) and
// SIMSCHED_DISK_TORTURE_START_SEED widen a run by hand; a failure prints its
// seed and SIMSCHED_DISK_TORTURE_SEED=N, which replays it.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "scheduler/test_scheduler.h"
#include "sim/random.h"
#include "sim/world.h"
#include "testing/model_sweep.h"

namespace simsched {
namespace {

// The model of one file's data.
struct ModelFile {
  struct Op {
    bool truncate = false;
    uint64_t offset = 0;  // or the new size
    std::string data;
  };
  std::string current;
  std::string synced;
  std::vector<Op> pending;  // since the last sync
};

// sim/disk.h's semantics of a write or truncate, written out independently.
void Apply(std::string& contents, const ModelFile::Op& op) {
  if (op.truncate) {
    contents.resize(op.offset, '\0');
    return;
  }
  if (contents.size() < op.offset + op.data.size()) {
    contents.resize(op.offset + op.data.size(), '\0');
  }
  std::copy(op.data.begin(), op.data.end(), contents.begin() + static_cast<ptrdiff_t>(op.offset));
}

// Whether `got` is what a crash may leave of `file`: its synced bytes, or
// with torn writes those plus its first k unsynced operations and a prefix
// of the next (a truncate applies whole).
bool IsCrashOutcome(const ModelFile& file, const std::string& got, bool torn) {
  if (got == file.synced) return true;
  if (!torn) return false;
  std::string base = file.synced;
  for (const ModelFile::Op& op : file.pending) {
    if (op.truncate) {
      std::string whole = base;
      Apply(whole, op);
      if (got == whole) return true;
    } else {
      for (size_t cut = 0; cut <= op.data.size(); ++cut) {
        std::string partial = base;
        Apply(partial, {false, op.offset, op.data.substr(0, cut)});
        if (got == partial) return true;
      }
    }
    Apply(base, op);
  }
  return false;
}

// What a run exercised, to check that the generator reaches every case.
struct Coverage {
  int crashes = 0;
  int torn = 0;       // a file came back with some unsynced bytes
  int lost = 0;       // a file came back without its unsynced bytes
  int gone = 0;       // a file no synced name reached was gone
  int stale = 0;      // a handle from before a crash was refused
  int down = 0;       // a call while the host was down was refused
  int nameless = 0;   // a handle to a deleted or renamed-over file worked
  int corrupted = 0;  // a read came back with one byte flipped
};

const char* const kNames[] = {"a", "b", "c", "dir/d"};

class SeededDisk {
 public:
  explicit SeededDisk(uint64_t seed)
      : scheduler_({.seed = seed}),
        world_(scheduler_, {.record_events = false, .buggify = false}),
        rng_(seed ^ 0x8cb92ba72f3d8dd7ULL) {}

  std::string Go() {
    absl::StatusOr<Host*> host = world_.AddHost("disk");
    if (!host.ok()) return host.status().ToString();
    host_ = *host;
    torn_ = rng_.Chance(1, 2);
    corrupt_ = rng_.Chance(1, 4);
    if (absl::Status s = world_.SetDiskFaults(
            {.torn_write = torn_ ? 0.7 : 0, .read_corruption = corrupt_ ? 0.2 : 0});
        !s.ok()) {
      return s.ToString();
    }
    const int steps = static_cast<int>(rng_.InRange(10, 120));
    for (int i = 0; i < steps && violations_.empty(); ++i) Step();
    if (!violations_.empty()) return violations_.front();
    return "";
  }

  const Coverage& coverage() const { return coverage_; }

 private:
  struct Handle {
    File file;
    uint64_t id;           // the model file it refers to
    uint64_t incarnation;  // the host incarnation that opened it
  };

  Disk& disk() { return host_->disk(); }
  void Violation(std::string what) {
    if (violations_.empty()) violations_.push_back(absl::StrCat("step ", step_, ": ", what));
  }

  // `got` against the model's status: OK, or the same code.
  void ExpectCode(const absl::Status& got, absl::StatusCode want, const std::string& what) {
    if (got.code() != want) {
      Violation(absl::StrCat(what, ": got ", got.ToString(), ", the model says ",
                             absl::StatusCodeToString(want)));
    }
  }

  std::string RandomName() { return kNames[rng_.Below(4)]; }

  // Data with a recognizable step number, 0-12 bytes.
  std::string RandomData() {
    std::string data = absl::StrCat("<", step_, ">");
    data.resize(rng_.Below(13), static_cast<char>('a' + step_ % 26));
    return data;
  }

  void CheckNames() {
    std::vector<std::string> want;
    for (const auto& [name, id] : names_) want.push_back(name);
    const std::vector<std::string> got = up_ ? disk().List() : std::vector<std::string>{};
    if (got != (up_ ? want : std::vector<std::string>{})) {
      Violation(absl::StrCat("List() is [", absl::StrJoin(got, ","), "], the model [",
                             absl::StrJoin(want, ","), "]"));
    }
    for (const char* name : kNames) {
      if (disk().Exists(name) != (up_ && names_.contains(name))) {
        Violation(absl::StrCat("Exists(", name, ") is ", disk().Exists(name)));
      }
    }
  }

  // Whether the model says a use of `h` fails, and with what.
  std::optional<absl::StatusCode> HandleError(const Handle& h) {
    coverage_.down += !up_;
    if (!up_ || h.incarnation != incarnation_) {
      coverage_.stale += up_;
      return absl::StatusCode::kFailedPrecondition;
    }
    bool named = false;
    for (const auto& [name, id] : names_) named |= id == h.id;
    coverage_.nameless += !named;
    if (!files_.contains(h.id)) return absl::StatusCode::kNotFound;
    return std::nullopt;
  }

  void Step() {
    ++step_;
    CheckNames();
    const uint64_t op = rng_.Below(100);
    if (op < 5 || (!up_ && op < 40)) {  // crash, or restart when down
      if (up_) {
        Crash();
      } else {
        Restart();
      }
      return;
    }
    if (op < 18 || handles_.empty()) {  // open
      const std::string name = RandomName();
      const bool create = rng_.Chance(2, 3);
      absl::StatusOr<File> file = disk().Open(name, {.create = create});
      if (!up_) return ExpectCode(file.status(), absl::StatusCode::kFailedPrecondition, "Open");
      auto it = names_.find(name);
      if (it == names_.end() && !create) {
        return ExpectCode(file.status(), absl::StatusCode::kNotFound, "Open");
      }
      if (!file.ok()) return Violation(absl::StrCat("Open: ", file.status().ToString()));
      uint64_t id;
      if (it != names_.end()) {
        id = it->second;
      } else {
        id = next_id_++;
        files_[id];
        names_[name] = id;
      }
      handles_.push_back({*file, id, incarnation_});
      if (handles_.size() > 6) handles_.erase(handles_.begin());
      return;
    }
    if (op < 28) {  // rename
      const std::string from = RandomName();
      const std::string to = RandomName();
      const absl::Status s = disk().Rename(from, to);
      if (!up_) return ExpectCode(s, absl::StatusCode::kFailedPrecondition, "Rename");
      auto it = names_.find(from);
      if (it == names_.end()) return ExpectCode(s, absl::StatusCode::kNotFound, "Rename");
      ExpectCode(s, absl::StatusCode::kOk, absl::StrCat("Rename ", from, " -> ", to));
      const uint64_t id = it->second;
      names_.erase(it);
      names_[to] = id;
      return;
    }
    if (op < 34) {  // delete
      const std::string name = RandomName();
      const absl::Status s = disk().Delete(name);
      if (!up_) return ExpectCode(s, absl::StatusCode::kFailedPrecondition, "Delete");
      if (!names_.contains(name)) return ExpectCode(s, absl::StatusCode::kNotFound, "Delete");
      ExpectCode(s, absl::StatusCode::kOk, absl::StrCat("Delete ", name));
      names_.erase(name);
      return;
    }
    if (op < 40) {  // sync the directory
      const absl::Status s = disk().SyncDirectory();
      if (!up_) return ExpectCode(s, absl::StatusCode::kFailedPrecondition, "SyncDirectory");
      ExpectCode(s, absl::StatusCode::kOk, "SyncDirectory");
      synced_names_ = names_;
      return;
    }
    // A file operation through a random handle, maybe a stale one.
    Handle& h = handles_[rng_.Below(handles_.size())];
    const std::optional<absl::StatusCode> error = HandleError(h);
    ModelFile* model = error.has_value() ? nullptr : &files_[h.id];
    const uint64_t kind = rng_.Below(6);
    if (kind == 0 || kind == 1) {  // write at an offset, or append
      const std::string data = RandomData();
      const uint64_t offset =
          kind == 0 ? rng_.Below(model == nullptr ? 20 : model->current.size() + 6) : 0;
      const absl::Status s = kind == 0 ? h.file.Write(offset, data) : h.file.Append(data);
      if (model == nullptr) return ExpectCode(s, *error, "Write");
      ExpectCode(s, absl::StatusCode::kOk, "Write");
      ModelFile::Op write{false, kind == 0 ? offset : model->current.size(), data};
      Apply(model->current, write);
      model->pending.push_back(std::move(write));
    } else if (kind == 2) {  // truncate
      const uint64_t size = rng_.Below(model == nullptr ? 20 : model->current.size() + 4);
      const absl::Status s = h.file.Truncate(size);
      if (model == nullptr) return ExpectCode(s, *error, "Truncate");
      ExpectCode(s, absl::StatusCode::kOk, "Truncate");
      ModelFile::Op truncate{true, size, ""};
      Apply(model->current, truncate);
      model->pending.push_back(std::move(truncate));
    } else if (kind == 3) {  // sync
      const absl::Status s = h.file.Sync();
      if (model == nullptr) return ExpectCode(s, *error, "Sync");
      ExpectCode(s, absl::StatusCode::kOk, "Sync");
      model->synced = model->current;
      model->pending.clear();
      // The file's names become durable; durable names it lost go.
      for (auto it = synced_names_.begin(); it != synced_names_.end();) {
        it = it->second == h.id ? synced_names_.erase(it) : std::next(it);
      }
      for (const auto& [name, id] : names_) {
        if (id == h.id) synced_names_[name] = id;
      }
    } else {  // read a range, or all
      const bool all = kind == 5;
      const uint64_t offset = all ? 0 : rng_.Below(20);
      const uint64_t length = all ? 0 : rng_.Below(20);
      absl::StatusOr<std::string> got = all ? h.file.ReadAll() : h.file.Read(offset, length);
      if (model == nullptr) return ExpectCode(got.status(), *error, "Read");
      if (!got.ok()) return Violation(absl::StrCat("Read: ", got.status().ToString()));
      const std::string want =
          all ? model->current
              : (offset >= model->current.size() ? "" : model->current.substr(offset, length));
      if (*got != want) {
        size_t differing = got->size() == want.size() ? 0 : 2;
        for (size_t i = 0; differing < 2 && i < want.size(); ++i) differing += (*got)[i] != want[i];
        if (!corrupt_ || differing != 1) {
          Violation(absl::StrCat("Read gave '", *got, "', the model '", want, "'"));
        }
        ++coverage_.corrupted;
      }
    }
  }

  void Crash() {
    host_->Crash();
    up_ = false;
    ++coverage_.crashes;
    names_ = synced_names_;
    // Files no durable name reaches are gone; the rest are checked at the
    // restart against what a crash may leave.
    std::map<uint64_t, ModelFile> kept;
    for (const auto& [name, id] : names_) kept.emplace(id, files_[id]);
    coverage_.gone += static_cast<int>(files_.size() - kept.size());
    files_ = std::move(kept);
    for (const auto& [id, file] : files_) unverified_.insert(id);
  }

  void Restart() {
    ExpectCode(host_->Restart(), absl::StatusCode::kOk, "Restart");
    up_ = true;
    ++incarnation_;
    for (const auto& [name, id] : names_) {
      if (!unverified_.erase(id)) continue;  // checked through another name
      ModelFile& file = files_[id];
      absl::StatusOr<File> opened = disk().Open(name);
      if (!opened.ok()) {
        return Violation(
            absl::StrCat("after the crash, Open(", name, "): ", opened.status().ToString()));
      }
      absl::StatusOr<std::string> got = opened->ReadAll();
      // A corrupted read is retried: the stored data is intact.
      for (int retry = 0; corrupt_ && got.ok() && retry < 20 && !IsCrashOutcome(file, *got, torn_);
           ++retry) {
        got = opened->ReadAll();
      }
      if (!got.ok() || !IsCrashOutcome(file, *got, torn_)) {
        return Violation(absl::StrCat("after the crash '", name, "' holds '",
                                      got.ok() ? *got : got.status().ToString(), "'; synced were '",
                                      file.synced, "', ", file.pending.size(),
                                      " unsynced operations", torn_ ? " (torn writes on)" : ""));
      }
      if (!file.pending.empty()) (*got == file.synced ? coverage_.lost : coverage_.torn) += 1;
      file.current = file.synced = *got;
      file.pending.clear();
    }
  }

  TestScheduler scheduler_;
  World world_;
  Rng rng_;
  Host* host_ = nullptr;
  bool torn_ = false;
  bool corrupt_ = false;
  bool up_ = true;
  uint64_t incarnation_ = 1;
  int step_ = 0;
  uint64_t next_id_ = 1;
  std::map<std::string, uint64_t> names_;
  std::map<std::string, uint64_t> synced_names_;
  std::map<uint64_t, ModelFile> files_;
  std::set<uint64_t> unverified_;  // files a crash may have torn
  std::vector<Handle> handles_;
  std::vector<std::string> violations_;
  Coverage coverage_;
};

TEST(DiskTortureTest, ModelHoldsOverManySeeds) {
  // SIMSCHED_DISK_TORTURE_SEED(S)/START_SEED; a failing seed prints its replay line
  // (testing/model_sweep.h).
  testing::SweepModelSeeds("SIMSCHED_DISK_TORTURE", {.default_count = 5000},
                           [](uint64_t seed) { return SeededDisk(seed).Go(); });
}

TEST(DiskTortureTest, TheGeneratorReachesEveryCase) {
  Coverage total;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SeededDisk run(seed);
    ASSERT_EQ(run.Go(), "") << "seed " << seed;
    const Coverage& c = run.coverage();
    total.crashes += c.crashes;
    total.torn += c.torn;
    total.lost += c.lost;
    total.gone += c.gone;
    total.stale += c.stale;
    total.down += c.down;
    total.nameless += c.nameless;
    total.corrupted += c.corrupted;
  }
  EXPECT_GT(total.crashes, 200);
  EXPECT_GT(total.torn, 15);
  EXPECT_GT(total.lost, 40);
  EXPECT_GT(total.gone, 100);
  EXPECT_GT(total.stale, 300);
  EXPECT_GT(total.down, 300);
  EXPECT_GT(total.nameless, 200);
  EXPECT_GT(total.corrupted, 15);
}

}  // namespace
}  // namespace simsched
