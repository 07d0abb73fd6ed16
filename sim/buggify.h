// File: sim/buggify.h
// -----------------------------------------------------------------------------
//
// Named fault points in code under test, in the spirit of FoundationDB's
// BUGGIFY. `SIMSCHED_BUGGIFY("name")` is an expression of type bool:
//
//   * inside a simulation (while a `World` with buggify on exists on this
//     thread), each named point is *enabled* for the seed with the world's
//     enable probability (a pure function of the seed and the name, so it
//     does not depend on which point is reached first), and an enabled
//     point then *fires* (is true) with the fire probability at each
//     evaluation, drawn from the world's seeded fault stream;
//   * outside a simulation it is false, at the cost of one thread-local load;
//   * built with `-DSIMSCHED_DISABLE_BUGGIFY` (production) it is the literal
//     `false` and the code behind it compiles away.
//
// Every firing is a world event (in the world's log and its failure report),
// and `World::BuggifyReport()` lists each point's evaluations and fires. In
// a SIM_TEST sweep each point reached also appears in the end-of-sweep
// property table and simsched_summary.jsonl (kind "buggify": seeds that
// reached it, seeds where it fired, the first seed that fired it), so a
// point that never fires over a sweep is visible.
//
// Use it to make rare paths common: a cache miss, a short read, a retry, a
// deliberately slow path, an extra yield.
//
// This header defines:
//   * `SIMSCHED_BUGGIFY(name)`
//
// Example:
//
//   simsched::Co<void> Flush(Log& log) {
//     if (SIMSCHED_BUGGIFY("log.flush.delay")) {
//       co_await simsched::Sleep(std::chrono::milliseconds(50));
//     }
//     co_await log.Write();
//   }

#ifndef SIMSCHED_SIM_BUGGIFY_H_
#define SIMSCHED_SIM_BUGGIFY_H_

#include <string_view>

#include "scheduler/source_location.h"

namespace simsched::internal {

class BuggifyRegistry;

// The registry of the World on this thread, or null outside a simulation.
extern thread_local BuggifyRegistry* current_buggify;

// Whether point `name`, written at `where`, fires now (called only inside a
// simulation).
bool BuggifyFires(BuggifyRegistry& registry, std::string_view name,
                  SourceLocation where = SourceLocation::current());

}  // namespace simsched::internal

#ifdef SIMSCHED_DISABLE_BUGGIFY
#define SIMSCHED_BUGGIFY(name) false
#else
#define SIMSCHED_BUGGIFY(name)                                 \
  (::simsched::internal::current_buggify != nullptr &&         \
   ::simsched::internal::BuggifyFires(*::simsched::internal::current_buggify, (name), \
                                      ::simsched::SourceLocation::current()))
#endif

#endif  // SIMSCHED_SIM_BUGGIFY_H_
