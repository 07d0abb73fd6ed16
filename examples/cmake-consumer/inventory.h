// An inventory service: concurrent orders reserve stock, with a simulated
// network round trip to the warehouse between the check and the update. The
// Mutex makes check-and-reserve atomic across that await.

#ifndef INVENTORY_INVENTORY_H_
#define INVENTORY_INVENTORY_H_

#include "scheduler/scheduler.h"
#include "sim/mutex.h"

namespace inventory {

class Inventory {
 public:
  explicit Inventory(int stock) : stock_(stock) {}

  // Reserves `count` items if that many are left; returns whether it did.
  simsched::Co<bool> Reserve(int count);

  int stock() const { return stock_; }

 private:
  simsched::Mutex mu_{"inventory"};
  int stock_;
};

}  // namespace inventory

#endif  // INVENTORY_INVENTORY_H_
