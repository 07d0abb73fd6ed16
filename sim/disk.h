// File: sim/disk.h
// -----------------------------------------------------------------------------
//
// A simulated host's disk: named files you write, read, fsync and rename,
// with the one property that matters for testing storage code honestly:
// **a crash loses everything not yet synced.**
//
//   * `File::Write`/`Append` change the file's contents at once (reads see
//     them), but they reach the durable copy only at `File::Sync()`.
//   * Names (create, rename, delete) are durable only after `File::Sync()` of
//     that file (which makes its current name durable too) or
//     `Disk::SyncDirectory()` (all names). A rename is atomic.
//   * At a crash of the host, every file goes back to its durable contents
//     and the directory to its durable names. With `DiskFaults::torn_write`
//     a file may instead keep a prefix of its unsynced writes (the last one
//     cut at a random byte), as a real disk can.
//   * `DiskFaults::read_corruption` makes a read return one flipped byte.
//   * A `File` belongs to the host incarnation that opened it: after a
//     crash every use of it returns FailedPrecondition ("opened before the
//     crash; open it again"), and while the host is down the disk refuses
//     every call the same way.
//
// Disk calls take no virtual time and do not suspend.
//
// This header defines:
//   * `simsched::Disk`, `simsched::File`
//
// Example (a write-ahead log):
//
//   absl::StatusOr<simsched::File> wal = host.disk().Open("wal", {.create = true});
//   if (!wal.ok()) co_return wal.status();
//   if (auto s = wal->Append(EncodeRecord(put)); !s.ok()) co_return s;
//   if (auto s = wal->Sync(); !s.ok()) co_return s;   // now it survives a crash
//   co_return Ack(put);

#ifndef SIMSCHED_SIM_DISK_H_
#define SIMSCHED_SIM_DISK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/fault_plan.h"

namespace simsched {

namespace internal {
struct DiskState;
class WorldCore;
}  // namespace internal

// File
//
// An open file of a simulated disk. Cheap to copy (copies refer to the same
// file). Valid until its host crashes.
class File {
 public:
  File() = default;

  const std::string& path() const { return path_; }

  // Write()
  //
  // Writes `data` at `offset`, growing the file (with zero bytes) if needed.
  absl::Status Write(uint64_t offset, std::string_view data);
  // Append()
  //
  // Writes `data` at the end.
  absl::Status Append(std::string_view data);
  // Read()
  //
  // Up to `length` bytes from `offset` (fewer at the end of the file).
  absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const;
  absl::StatusOr<std::string> ReadAll() const;
  absl::StatusOr<uint64_t> Size() const;
  // Truncate()
  //
  // Cuts (or zero-extends) the file to `size` bytes.
  absl::Status Truncate(uint64_t size);
  // Sync()
  //
  // Makes the file's contents and current name durable (fsync).
  absl::Status Sync();

 private:
  friend class Disk;
  File(std::shared_ptr<internal::DiskState> disk, uint64_t id, uint64_t incarnation,
       std::string path)
      : disk_(std::move(disk)), id_(id), incarnation_(incarnation), path_(std::move(path)) {}
  absl::Status Check() const;

  std::shared_ptr<internal::DiskState> disk_;
  uint64_t id_ = 0;
  uint64_t incarnation_ = 0;
  std::string path_;
};

// FileOpenOptions
struct FileOpenOptions {
  // Create the file (empty) if it does not exist; otherwise NotFound.
  bool create = false;
};

// Disk
//
// One host's files. Owned by its `Host` (`host.disk()`).
class Disk {
 public:
  Disk(internal::WorldCore* core, std::string host_name);
  ~Disk();
  Disk(const Disk&) = delete;
  Disk& operator=(const Disk&) = delete;

  absl::StatusOr<File> Open(std::string_view path, FileOpenOptions options = {});
  // Rename()
  //
  // Atomically gives file `from` the name `to` (replacing any file there).
  absl::Status Rename(std::string_view from, std::string_view to);
  absl::Status Delete(std::string_view path);
  bool Exists(std::string_view path) const;
  // List()
  //
  // Current names, sorted.
  std::vector<std::string> List() const;
  // SyncDirectory()
  //
  // Makes every current name durable (creates, renames, deletes).
  absl::Status SyncDirectory();

  // SetFaults()
  //
  // InvalidArgument (and no change) if a rate is outside [0, 1].
  absl::Status SetFaults(DiskFaults faults);
  const DiskFaults& faults() const;

  // -- For Host --
  void OnCrash();
  void OnRestart();
  void Detach();  // the world is going away

 private:
  absl::Status CheckUp(std::string_view operation) const;

  std::shared_ptr<internal::DiskState> state_;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_DISK_H_
