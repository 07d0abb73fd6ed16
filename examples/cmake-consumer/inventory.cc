#include "inventory.h"

#include <chrono>

namespace inventory {

simsched::Co<bool> Inventory::Reserve(int count) {
  simsched::MutexGuard lock = co_await mu_.Lock();
  if (stock_ < count) co_return false;
  // The warehouse confirms; the lock is held so nobody else sells this stock.
  co_await simsched::Sleep(std::chrono::milliseconds(2));
  co_await simsched::SimulateRandomDelay(3);
  stock_ -= count;
  co_return true;
}

}  // namespace inventory
