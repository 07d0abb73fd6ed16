// ThreadPoolScheduler: the task registry: ids issued in blocks, live tasks,
// headers returned to their spawning thread, and the BlockOn waiters a
// finishing task notifies.

#include "scheduler/thread_pool_scheduler.h"

#include <bit>
#include <memory>
#include <mutex>

#include "scheduler/internal/pool_parts.h"

namespace simsched {

using internal::PoolBlockWaiter;
using internal::PoolIdBlock;
using internal::PoolWorker;
using internal::TaskHeader;

// -----------------------------------------------------------------------------
// Task tracking
// -----------------------------------------------------------------------------

void ThreadPoolScheduler::OnTaskSpawned(TaskHeader& task) {
  TaskHeader* release;
  PoolWorker* local = internal::tls_worker;
  if (local != nullptr && local->pool == this) {
    release = AssignId(local->ids, task);
  } else {
    internal::PoolExternalIds& slot = external_ids_[internal::ExternalSlot()];
    std::lock_guard<internal::SpinLock> lock(slot.lock);
    release = AssignId(slot.ids, task);
  }
  // Outside any lock: a release may destroy a task's result, running user
  // code.
  if (release != nullptr) release->Release();
}

TaskHeader* ThreadPoolScheduler::AssignId(internal::PoolIdAllocator& ids, TaskHeader& task) {
  if (ids.block == nullptr || ids.next == internal::kIdBlock) {
    // Once per block, take back the finished tasks this allocator spawned,
    // unless the previous ones are still being released.
    if (ids.backlog == nullptr) internal::TakeBacklog(ids);
    ids.block = NewIdBlock(ids);
    ids.next = 0;
  }
  PoolIdBlock* block = ids.block;
  const uint32_t index = ids.next++;
  const uint64_t id = block->first_id + index;
  block->tasks[index] = &task;
  task.metadata.id = TaskId{id};
  task.enqueue_seq = reinterpret_cast<uintptr_t>(block);
  task.AddRef();  // the registry's, handed back through `block->home`
  block->issued.store(index + 1, std::memory_order_release);
  return internal::PopBacklog(ids);
}

PoolIdBlock* ThreadPoolScheduler::NewIdBlock(internal::PoolIdAllocator& ids) {
  // Ids start at 1; block k holds ids [1 + 32k, 1 + 32(k + 1)).
  const uint64_t index = next_id_block_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t first_id = 1 + index * internal::kIdBlock;
  // Reuse a block whose tasks all finished (FreeIdBlock) if there is one.
  if (ids.spare_blocks == nullptr &&
      ids.returns.free_blocks.load(std::memory_order_relaxed) != nullptr) {
    ids.spare_blocks = ids.returns.free_blocks.exchange(nullptr, std::memory_order_acquire);
  }
  PoolIdBlock* block = ids.spare_blocks;
  if (block != nullptr) {
    ids.spare_blocks = block->next_free;
    block->Reset(first_id);
  } else {
    block = new PoolIdBlock(first_id, &ids.returns);
  }
  std::lock_guard<std::mutex> lock(registry_mu_);
  blocks_->blocks.emplace(index, block);
  return block;
}

void ThreadPoolScheduler::FreeIdBlock(PoolIdBlock* block) {
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    blocks_->blocks.erase((block->first_id - 1) / internal::kIdBlock);
  }
  // Out of the registry, nobody else refers to the block: hand it back to
  // its allocator for reuse.
  std::atomic<PoolIdBlock*>& free_blocks = block->home->free_blocks;
  PoolIdBlock* head = free_blocks.load(std::memory_order_relaxed);
  do {
    block->next_free = head;
  } while (!free_blocks.compare_exchange_weak(head, block, std::memory_order_release,
                                              std::memory_order_relaxed));
}

void ThreadPoolScheduler::OnTaskFinished(TaskHeader& task) {
  PoolIdBlock* block = internal::BlockOf(task);
  internal::PoolReturnList& home = *block->home;
  const uint64_t id = task.metadata.id.value;
  const uint64_t live_bit = uint64_t{1} << (id - block->first_id);
  const uint64_t waited_bit = live_bit << 32;
  const uint64_t old = block->word.fetch_and(~(live_bit | waited_bit), std::memory_order_acq_rel);
  // Nothing else is read from the block: another finishing thread may free
  // it as soon as the AND above is done, unless it is this one.
  if ((old & internal::kLiveMask & ~live_bit) == 0) FreeIdBlock(block);
  if ((old & waited_bit) != 0) NotifyBlockWaiter(id);
  // The registry's reference goes back to the spawning side (the task core
  // still holds the task's own reference until this call returns).
  PoolWorker* local = internal::tls_worker;
  if (local == nullptr || local->pool != this) {
    internal::PushReturns(home, &task, &task, 1);
  } else if (&local->ids.returns == &home) {
    task.Release();  // spawned on this worker: this is the spawning side
  } else {
    internal::PendingReturns& pending = local->pending_returns;
    if (pending.list != &home) internal::FlushReturns(pending);
    pending.list = &home;
    internal::SetNextReturn(task, pending.head);
    pending.head = &task;
    if (pending.tail == nullptr) pending.tail = &task;
    if (++pending.count == internal::kReturnBatch) internal::FlushReturns(pending);
  }
  // After a deferred free (see ReleaseOrDeferFree) the last task to finish
  // frees the scheduler; the task core makes no further call into it.
  if (free_when_idle_.load(std::memory_order_acquire) && LiveTaskCount() == 0 &&
      !free_claimed_.exchange(true)) {
    delete this;
  }
}

bool ThreadPoolScheduler::IsTaskRunning(TaskId id) const {
  if (id.value == 0) return false;
  const uint64_t index = (id.value - 1) / internal::kIdBlock;
  const uint32_t offset = static_cast<uint32_t>((id.value - 1) % internal::kIdBlock);
  std::lock_guard<std::mutex> lock(registry_mu_);
  auto it = blocks_->blocks.find(index);
  if (it == blocks_->blocks.end()) return false;
  const PoolIdBlock& block = *it->second;
  return offset < block.issued.load(std::memory_order_acquire) &&
         (block.word.load(std::memory_order_acquire) & (uint64_t{1} << offset)) != 0;
}

size_t ThreadPoolScheduler::LiveTaskCount() const {
  size_t count = 0;
  std::lock_guard<std::mutex> lock(registry_mu_);
  for (const auto& [index, block] : blocks_->blocks) {
    const uint32_t issued = block->issued.load(std::memory_order_acquire);
    const uint64_t issued_mask = issued == 32 ? internal::kLiveMask : (uint64_t{1} << issued) - 1;
    count += std::popcount(block->word.load(std::memory_order_acquire) & issued_mask);
  }
  return count;
}

void ThreadPoolScheduler::OnUnhandledTaskException(const TaskMetadata& task,
                                                   const std::exception_ptr& exception) {
  // The shared formatter: "exception escaped task 7 spawned at foo.cc:12 (Fn)
  // and was never observed: <what()>", through the "simsched" logger.
  LogUnhandledTaskException(task, exception);
}

std::shared_ptr<PoolBlockWaiter> ThreadPoolScheduler::RegisterBlockWaiter(TaskHeader& task,
                                                                          bool main_loop,
                                                                          absl::Status& error) {
  const uint64_t id = task.metadata.id.value;
  const uint64_t index = (id - 1) / internal::kIdBlock;
  const uint64_t live_bit = uint64_t{1} << ((id - 1) % internal::kIdBlock);
  const uint64_t waited_bit = live_bit << 32;
  // The registry lock keeps the block from being freed meanwhile.
  std::lock_guard<std::mutex> lock(registry_mu_);
  auto it = blocks_->blocks.find(index);
  if (it == blocks_->blocks.end()) return nullptr;  // finished and no longer tracked
  PoolIdBlock& block = *it->second;
  auto waiter = std::make_shared<PoolBlockWaiter>(main_loop);
  {
    std::lock_guard<std::mutex> waiters_lock(waiters_mu_);
    auto [slot, inserted] = waiters_->waiters.try_emplace(id, waiter);
    if (!inserted) {
      error = absl::FailedPreconditionError(absl::StrCat(
          "BlockOn(", task.metadata.DebugString(),
          "): another BlockOn already waits for this task; a task has one owner"));
      return nullptr;
    }
  }
  // Published after the waiter is in the map: the finishing thread clears
  // both bits at once and, if it saw the waited bit, looks the waiter up.
  const uint64_t old = block.word.fetch_or(waited_bit, std::memory_order_acq_rel);
  if ((old & live_bit) != 0) return waiter;
  // Finished before the bit was set.
  block.word.fetch_and(~waited_bit, std::memory_order_acq_rel);
  std::lock_guard<std::mutex> waiters_lock(waiters_mu_);
  waiters_->waiters.erase(id);
  return nullptr;
}

void ThreadPoolScheduler::UnregisterBlockWaiter(TaskHeader& task) {
  const uint64_t id = task.metadata.id.value;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    auto it = blocks_->blocks.find((id - 1) / internal::kIdBlock);
    if (it != blocks_->blocks.end()) {
      const uint64_t waited_bit = uint64_t{1} << ((id - 1) % internal::kIdBlock + 32);
      it->second->word.fetch_and(~waited_bit, std::memory_order_acq_rel);
    }
  }
  std::lock_guard<std::mutex> lock(waiters_mu_);
  waiters_->waiters.erase(id);
}

void ThreadPoolScheduler::NotifyBlockWaiter(uint64_t id) {
  std::shared_ptr<PoolBlockWaiter> waiter;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    auto it = waiters_->waiters.find(id);
    if (it == waiters_->waiters.end()) return;  // it gave up meanwhile
    waiter = std::move(it->second);
    waiters_->waiters.erase(it);
  }
  if (waiter->main_loop) {
    // Under main_mu_, so the loop cannot return (and its caller destroy the
    // scheduler) before this notification is done.
    std::lock_guard<std::mutex> lock(main_mu_);
    waiter->done.store(true, std::memory_order_release);
    main_poked_ = true;
    if (main_waiting_) main_cv_.notify_one();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(waiter->mu);
    waiter->done.store(true, std::memory_order_release);
  }
  waiter->cv.notify_one();
}

}  // namespace simsched
