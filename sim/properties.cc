#include "sim/properties.h"

#include <mutex>
#include <tuple>

namespace simsched {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<DeclaredProperty> properties;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();  // never destroyed: used during static init
  return *registry;
}

}  // namespace

std::string_view PropertyKindName(PropertyKind kind) {
  switch (kind) {
    case PropertyKind::kAlways: return "always";
    case PropertyKind::kUnreachable: return "unreachable";
    case PropertyKind::kSometimes: return "sometimes";
    case PropertyKind::kReachable: return "reachable";
    case PropertyKind::kBuggify: return "buggify";
  }
  return "?";
}

std::vector<DeclaredProperty> DeclaredProperties() {
  Registry& registry = GetRegistry();
  std::vector<DeclaredProperty> out;
  {
    std::lock_guard<std::mutex> lock(registry.mu);
    out = registry.properties;
  }
  std::sort(out.begin(), out.end(), [](const DeclaredProperty& a, const DeclaredProperty& b) {
    return std::tie(a.name, a.file, a.line) < std::tie(b.name, b.file, b.line);
  });
  return out;
}

namespace internal {

bool RegisterProperty(PropertyKind kind, std::string_view name, std::string_view file,
                      uint32_t line) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mu);
  registry.properties.push_back({kind, name, file, line});
  return true;
}

}  // namespace internal
}  // namespace simsched
