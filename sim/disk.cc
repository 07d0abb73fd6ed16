#include "sim/disk.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/internal/world_core.h"

namespace simsched {
namespace internal {

struct DiskState {
  // An unsynced change, kept in order so a crash can tear them.
  struct PendingOp {
    bool truncate = false;
    uint64_t offset = 0;  // or the new size, for a truncate
    std::string data;
  };
  struct FileData {
    std::string synced;
    std::string current;
    std::vector<PendingOp> pending;
  };

  WorldCore* core = nullptr;  // null once the world is gone
  std::string host;
  bool up = true;
  uint64_t incarnation = 1;
  DiskFaults faults;
  uint64_t next_id = 1;
  // std::map everywhere: listing and crash handling run in a fixed order.
  std::map<std::string, uint64_t, std::less<>> names;
  std::map<std::string, uint64_t, std::less<>> synced_names;
  std::map<uint64_t, FileData> files;
};

}  // namespace internal

namespace {

void ApplyOp(std::string& contents, const internal::DiskState::PendingOp& op) {
  if (op.truncate) {
    contents.resize(op.offset, '\0');
    return;
  }
  if (contents.size() < op.offset + op.data.size()) contents.resize(op.offset + op.data.size(), '\0');
  contents.replace(op.offset, op.data.size(), op.data);
}

absl::Status Down(const internal::DiskState& disk, std::string_view operation) {
  if (disk.core == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(std::string(operation), " on the disk of host '", disk.host,
                     "': its World was destroyed; disks live only as long as their world"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(std::string(operation), " on the disk of host '", disk.host,
                   "', which is down (crashed); restart the host first"));
}

}  // namespace

// --- File ---

absl::Status File::Check() const {
  if (disk_ == nullptr) {
    return absl::FailedPreconditionError(
        "use of an empty File (default-constructed); get one from Disk::Open");
  }
  if (disk_->core == nullptr || !disk_->up) return Down(*disk_, absl::StrCat("File '", path_, "'"));
  if (incarnation_ != disk_->incarnation) {
    return absl::FailedPreconditionError(absl::StrCat(
        "File '", path_, "' was opened before host '", disk_->host, "' crashed (incarnation ",
        incarnation_, ", now ", disk_->incarnation, "); open it again after the restart"));
  }
  if (!disk_->files.contains(id_)) {
    return absl::NotFoundError(absl::StrCat("File '", path_, "' no longer exists"));
  }
  return absl::OkStatus();
}

absl::Status File::Write(uint64_t offset, std::string_view data) {
  if (absl::Status s = Check(); !s.ok()) return s;
  auto& file = disk_->files[id_];
  internal::DiskState::PendingOp op{false, offset, std::string(data)};
  ApplyOp(file.current, op);
  file.pending.push_back(std::move(op));
  return absl::OkStatus();
}

absl::Status File::Append(std::string_view data) {
  if (absl::Status s = Check(); !s.ok()) return s;
  return Write(disk_->files[id_].current.size(), data);
}

absl::StatusOr<std::string> File::Read(uint64_t offset, uint64_t length) const {
  if (absl::Status s = Check(); !s.ok()) return s;
  const std::string& contents = disk_->files[id_].current;
  if (offset >= contents.size()) return std::string();
  std::string out = contents.substr(offset, length);
  internal::WorldCore& core = *disk_->core;
  if (!out.empty() && disk_->faults.read_corruption > 0 &&
      core.disk_rng.NextDouble() < disk_->faults.read_corruption) {
    const uint64_t at = core.disk_rng.Below(out.size());
    out[at] = static_cast<char>(out[at] ^ (1 + core.disk_rng.Below(255)));
    core.Event("disk.read_corrupted", 0xd15c0001ULL ^ at,
               absl::StrCat("disk ", disk_->host, ": read of '", path_, "' corrupted byte ",
                            offset + at));
  }
  return out;
}

absl::StatusOr<std::string> File::ReadAll() const {
  absl::StatusOr<uint64_t> size = Size();
  if (!size.ok()) return size.status();
  return Read(0, *size);
}

absl::StatusOr<uint64_t> File::Size() const {
  if (absl::Status s = Check(); !s.ok()) return s;
  return disk_->files[id_].current.size();
}

absl::Status File::Truncate(uint64_t size) {
  if (absl::Status s = Check(); !s.ok()) return s;
  auto& file = disk_->files[id_];
  internal::DiskState::PendingOp op{true, size, {}};
  ApplyOp(file.current, op);
  file.pending.push_back(std::move(op));
  return absl::OkStatus();
}

absl::Status File::Sync() {
  if (absl::Status s = Check(); !s.ok()) return s;
  auto& file = disk_->files[id_];
  file.synced = file.current;
  file.pending.clear();
  // The file's current names become durable; durable names it no longer has
  // go.
  for (auto it = disk_->synced_names.begin(); it != disk_->synced_names.end();) {
    if (it->second == id_) {
      it = disk_->synced_names.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, id] : disk_->names) {
    if (id == id_) disk_->synced_names[name] = id;
  }
  return absl::OkStatus();
}

// --- Disk ---

Disk::Disk(internal::WorldCore* core, std::string host_name)
    : state_(std::make_shared<internal::DiskState>()) {
  state_->core = core;
  state_->host = std::move(host_name);
}

Disk::~Disk() { Detach(); }

void Disk::Detach() {
  state_->core = nullptr;
  state_->up = false;
}

absl::Status Disk::CheckUp(std::string_view operation) const {
  if (state_->core == nullptr || !state_->up) return Down(*state_, operation);
  return absl::OkStatus();
}

absl::StatusOr<File> Disk::Open(std::string_view path, FileOpenOptions options) {
  if (absl::Status s = CheckUp(absl::StrCat("Open('", std::string(path), "')")); !s.ok()) return s;
  if (path.empty()) return absl::InvalidArgumentError("Disk::Open: the path is empty");
  auto it = state_->names.find(path);
  uint64_t id;
  if (it != state_->names.end()) {
    id = it->second;
  } else {
    if (!options.create) {
      return absl::NotFoundError(absl::StrCat("no file '", std::string(path), "' on host '", state_->host,
                                              "'; pass {.create = true} to create it"));
    }
    id = state_->next_id++;
    state_->files[id];
    state_->names.emplace(std::string(path), id);
  }
  return File(state_, id, state_->incarnation, std::string(path));
}

absl::Status Disk::Rename(std::string_view from, std::string_view to) {
  if (absl::Status s = CheckUp("Rename"); !s.ok()) return s;
  auto it = state_->names.find(from);
  if (it == state_->names.end()) {
    return absl::NotFoundError(
        absl::StrCat("Rename: no file '", std::string(from), "' on host '", state_->host, "'"));
  }
  if (to.empty()) return absl::InvalidArgumentError("Rename: the new name is empty");
  const uint64_t id = it->second;
  state_->names.erase(it);
  state_->names[std::string(to)] = id;
  return absl::OkStatus();
}

absl::Status Disk::Delete(std::string_view path) {
  if (absl::Status s = CheckUp("Delete"); !s.ok()) return s;
  auto it = state_->names.find(path);
  if (it == state_->names.end()) {
    return absl::NotFoundError(
        absl::StrCat("Delete: no file '", std::string(path), "' on host '", state_->host, "'"));
  }
  state_->names.erase(it);
  return absl::OkStatus();
}

bool Disk::Exists(std::string_view path) const {
  return state_->core != nullptr && state_->up && state_->names.contains(path);
}

std::vector<std::string> Disk::List() const {
  std::vector<std::string> names;
  if (state_->core == nullptr || !state_->up) return names;
  for (const auto& [name, id] : state_->names) names.push_back(name);
  return names;
}

absl::Status Disk::SyncDirectory() {
  if (absl::Status s = CheckUp("SyncDirectory"); !s.ok()) return s;
  state_->synced_names = state_->names;
  return absl::OkStatus();
}

absl::Status Disk::SetFaults(DiskFaults faults) {
  if (absl::Status s = faults.Validate(); !s.ok()) return s;
  state_->faults = faults;
  return absl::OkStatus();
}

const DiskFaults& Disk::faults() const { return state_->faults; }

void Disk::OnCrash() {
  internal::DiskState& disk = *state_;
  disk.up = false;
  ++disk.incarnation;  // every File opened so far is now stale
  internal::WorldCore* core = disk.core;
  uint64_t lost_bytes = 0;
  for (auto& [id, file] : disk.files) {
    for (const auto& op : file.pending) lost_bytes += op.data.size();
    std::string durable = file.synced;
    if (core != nullptr && !file.pending.empty() && disk.faults.torn_write > 0 &&
        core->disk_rng.NextDouble() < disk.faults.torn_write) {
      // A prefix of the unsynced operations lands; the last one partly.
      const uint64_t whole = core->disk_rng.Below(file.pending.size());
      for (uint64_t i = 0; i < whole; ++i) ApplyOp(durable, file.pending[i]);
      internal::DiskState::PendingOp torn = file.pending[whole];
      if (!torn.truncate) torn.data.resize(core->disk_rng.Below(torn.data.size() + 1));
      ApplyOp(durable, torn);
      core->Event("disk.torn_write", 0x7042ULL ^ id,
                  absl::StrCat("disk ", disk.host, ": crash tore the unsynced writes of file #",
                               id, " (", whole, " of ", file.pending.size(),
                               " landed whole, the next one partly)"));
    }
    file.current = std::move(durable);
    file.synced = file.current;
    file.pending.clear();
  }
  disk.names = disk.synced_names;
  // Files no durable name reaches are gone.
  for (auto it = disk.files.begin(); it != disk.files.end();) {
    bool named = false;
    for (const auto& [name, id] : disk.names) named |= (id == it->first);
    it = named ? std::next(it) : disk.files.erase(it);
  }
  if (core != nullptr) {
    core->Event("disk.crash", 0xc4a5ULL ^ lost_bytes,
                absl::StrCat("disk ", disk.host, ": crash lost ", lost_bytes,
                             " unsynced bytes; ", disk.names.size(), " files remain"));
  }
}

void Disk::OnRestart() { state_->up = true; }

}  // namespace simsched
