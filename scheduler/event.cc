#include "scheduler/event.h"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace simsched {

Event::Event(std::string_view name)
    : name_(name), description_(name.empty() ? "Event" : "Event '" + std::string(name) + "'") {}

Event::~Event() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Awaiter* a = head_; a != nullptr; a = a->next_) {
    a->event_ = nullptr;
    a->linked_.store(false, std::memory_order_release);
  }
  head_ = tail_ = nullptr;
}

void Event::Link(Awaiter* awaiter) {
  awaiter->prev_ = tail_;
  awaiter->next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = awaiter;
  } else {
    head_ = awaiter;
  }
  tail_ = awaiter;
  awaiter->linked_.store(true, std::memory_order_relaxed);
  ++waiters_;
}

void Event::Unlink(Awaiter* awaiter) {
  if (awaiter->prev_ != nullptr) {
    awaiter->prev_->next_ = awaiter->next_;
  } else {
    head_ = awaiter->next_;
  }
  if (awaiter->next_ != nullptr) {
    awaiter->next_->prev_ = awaiter->prev_;
  } else {
    tail_ = awaiter->prev_;
  }
  awaiter->prev_ = awaiter->next_ = nullptr;
  awaiter->linked_.store(false, std::memory_order_release);
  --waiters_;
}

void Event::Set() {
  std::vector<Waker> released;
  {
    std::lock_guard<std::mutex> lock(mu_);
    set_ = true;
    released.reserve(waiters_);
    while (head_ != nullptr) {
      Awaiter* a = head_;
      Unlink(a);
      released.push_back(std::move(a->waker_));
    }
  }
  // Woken outside the lock: a wake may run scheduler code.
  for (const Waker& waker : released) waker.Wake();
}

void Event::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  set_ = false;
}

bool Event::NotifyOne() {
  Waker waker;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (head_ == nullptr) return false;
    Awaiter* a = head_;
    Unlink(a);
    waker = std::move(a->waker_);
  }
  waker.Wake();
  return true;
}

bool Event::IsSet() const {
  std::lock_guard<std::mutex> lock(mu_);
  return set_;
}

size_t Event::WaiterCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiters_;
}

bool Event::Awaiter::await_suspend(std::coroutine_handle<>) {
  if (!InTask()) {
    throw std::logic_error(
        "simsched: Event::Wait() was awaited outside a simsched task; spawn the coroutine on "
        "a Scheduler (Spawn, or BlockOn from plain code)");
  }
  std::lock_guard<std::mutex> lock(event_->mu_);
  if (event_->set_) return false;  // set between await_ready and now
  waker_ = CurrentWaker();
  DescribeWait(event_->description_, location_);
  event_->Link(this);
  return true;
}

Event::Awaiter::~Awaiter() {
  // Still linked only if the waiting task was cancelled while waiting. Once
  // Set/NotifyOne released it, the event may already be destroyed: do not
  // touch it (a regression test covers this).
  if (!linked_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(event_->mu_);
  if (linked_.load(std::memory_order_relaxed)) event_->Unlink(this);
}

}  // namespace simsched
