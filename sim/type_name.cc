#include "sim/type_name.h"

#include <cstdlib>
#include <memory>
#include <string>

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#define SIMSCHED_HAVE_CXXABI 1
#endif

namespace simsched::internal {

std::string DemangledTypeName(const std::type_info& type) {
  const char* raw = type.name();
#ifdef SIMSCHED_HAVE_CXXABI
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(raw, nullptr, nullptr, &status), std::free);
  if (status == 0 && demangled != nullptr) return std::string(demangled.get());
#endif
  return std::string(raw);
}

}  // namespace simsched::internal
