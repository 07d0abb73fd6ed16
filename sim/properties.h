// File: sim/properties.h
// -----------------------------------------------------------------------------
//
// Properties: assertions about a simulated run that the test harness checks
// for you, per seed and across the whole sweep.
//
//   SIMSCHED_ALWAYS(cond, "name")     cond holds every time it is evaluated;
//                                     a false one fails the seed at once
//   SIMSCHED_UNREACHABLE("name")      this line never runs; reaching it fails
//                                     the seed at once
//   SIMSCHED_SOMETIMES(cond, "name")  cond holds in at least one seed of the
//                                     sweep (a path the sweep must explore)
//   SIMSCHED_REACHABLE("name")        this line runs in at least one seed
//
// Inside a SIM_TEST (testing/sim_test.h) the harness tallies sometimes- and
// reachable-properties over the sweep, prints a table at its end (property,
// seeds that evaluated it, seeds where it held, first seed that satisfied
// it), writes the tally to the shard's summary file, and fails the sweep,
// naming the property, if no seed satisfied one (`.sometimes_warn_only =
// true` makes that a warning). `//testing:property_report` merges the tables
// of all shards.
//
// Outside a simulation (production, or a plain test) the macros do nothing:
// one thread-local load and a branch; the condition is not evaluated, so it
// must not have side effects (as with assert). They never abort.
//
// Names are string literals: each property is also registered before main()
// (with its kind, file and line), so a property that no seed ever reached
// is reported too: after the program's last test the harness fails the
// program naming each sometimes/reachable property no seed of any test
// evaluated (docs/testing.md, "Properties no seed reached").
//
// This header defines:
//   * the four macros above
//   * `simsched::PropertyKind`, `simsched::DeclaredProperty`, `DeclaredProperties()`
//   * `simsched::internal::PropertySink` (for the harness)
//
// Example:
//
//   Co<void> Transfer(Account& from, Account& to, int amount) {
//     if (from.balance < amount) {
//       SIMSCHED_REACHABLE("transfer refused for lack of funds");
//       co_return;
//     }
//     co_await Yield();
//     from.balance -= amount;
//     SIMSCHED_ALWAYS(from.balance >= 0, "balances never go negative");
//     to.balance += amount;
//   }

#ifndef SIMSCHED_SIM_PROPERTIES_H_
#define SIMSCHED_SIM_PROPERTIES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "scheduler/source_location.h"

namespace simsched {

// PropertyKind
//
// `kBuggify` is not a property: it is a SIMSCHED_BUGGIFY fault point
// (sim/buggify.h), reported through the same sink so that the sweep's table
// shows, per point, the seeds that reached it and the seeds where it fired.
// A point that never fired is noted in the table, never a failure.
enum class PropertyKind : uint8_t { kAlways, kUnreachable, kSometimes, kReachable, kBuggify };

// "always", "unreachable", "sometimes", "reachable", "buggify".
std::string_view PropertyKindName(PropertyKind kind);

// True for the kinds a single seed can violate (always, unreachable).
inline bool IsSafetyProperty(PropertyKind kind) {
  return kind == PropertyKind::kAlways || kind == PropertyKind::kUnreachable;
}

// DeclaredProperty
//
// A property macro in the program, registered before main().
struct DeclaredProperty {
  PropertyKind kind;
  std::string_view name;
  std::string_view file;
  uint32_t line;
};

// DeclaredProperties()
//
// Every property linked into this program, sorted by (name, file, line).
std::vector<DeclaredProperty> DeclaredProperties();

namespace internal {

// PropertySink
//
// Receives every evaluation while installed (the harness installs one per
// seed, on the scheduler's thread). Not for application code.
class PropertySink {
 public:
  virtual ~PropertySink() = default;
  virtual void OnProperty(PropertyKind kind, bool held, std::string_view name,
                          const char* expression, SourceLocation where) = 0;
};

// Null outside a simulation.
inline thread_local PropertySink* property_sink = nullptr;

// ScopedPropertySink
//
// Installs `sink` on this thread for its lifetime.
class ScopedPropertySink {
 public:
  explicit ScopedPropertySink(PropertySink* sink) : previous_(property_sink) {
    property_sink = sink;
  }
  ~ScopedPropertySink() { property_sink = previous_; }
  ScopedPropertySink(const ScopedPropertySink&) = delete;
  ScopedPropertySink& operator=(const ScopedPropertySink&) = delete;

 private:
  PropertySink* previous_;
};

bool RegisterProperty(PropertyKind kind, std::string_view name, std::string_view file,
                      uint32_t line);

// A string literal as a template argument, so each macro use instantiates
// its own registrar.
template <size_t N>
struct PropertyLiteral {
  constexpr PropertyLiteral(const char (&text)[N]) { std::copy_n(text, N, chars); }
  constexpr std::string_view view() const { return std::string_view(chars, N - 1); }
  char chars[N];
};

// Registered during dynamic initialization, before main(), because the macro
// odr-uses `registered` in a function that is compiled into the program.
template <PropertyKind kKind, PropertyLiteral kName, PropertyLiteral kFile, uint32_t kLine>
struct PropertyRegistrar {
  static inline const bool registered =
      RegisterProperty(kKind, kName.view(), kFile.view(), kLine);
};

}  // namespace internal
}  // namespace simsched

#define SIMSCHED_PROPERTY_IMPL_(kind, cond, name, expression)                                \
  do {                                                                                       \
    (void)::simsched::internal::PropertyRegistrar<kind, name, __FILE__, __LINE__>::registered; \
    if (::simsched::internal::property_sink != nullptr) [[unlikely]] {                       \
      ::simsched::internal::property_sink->OnProperty(kind, static_cast<bool>(cond), name,  \
                                                      expression,                            \
                                                      ::simsched::SourceLocation::current()); \
    }                                                                                        \
  } while (false)

// SIMSCHED_ALWAYS(cond, "name"): cond holds whenever evaluated in a simulation.
#define SIMSCHED_ALWAYS(cond, name) \
  SIMSCHED_PROPERTY_IMPL_(::simsched::PropertyKind::kAlways, cond, name, #cond)
// SIMSCHED_UNREACHABLE("name"): a simulation never runs this line.
#define SIMSCHED_UNREACHABLE(name) \
  SIMSCHED_PROPERTY_IMPL_(::simsched::PropertyKind::kUnreachable, false, name, "unreachable")
// SIMSCHED_SOMETIMES(cond, "name"): cond holds in at least one seed of a sweep.
#define SIMSCHED_SOMETIMES(cond, name) \
  SIMSCHED_PROPERTY_IMPL_(::simsched::PropertyKind::kSometimes, cond, name, #cond)
// SIMSCHED_REACHABLE("name"): at least one seed of a sweep runs this line.
#define SIMSCHED_REACHABLE(name) \
  SIMSCHED_PROPERTY_IMPL_(::simsched::PropertyKind::kReachable, true, name, "reachable")

#endif  // SIMSCHED_SIM_PROPERTIES_H_
