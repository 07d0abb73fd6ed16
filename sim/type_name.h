// File: sim/type_name.h
// -----------------------------------------------------------------------------
//
// `TypeName<T>()` spells a C++ type the same way in every build, for the
// reports a person reads: a channel shows up in a deadlock report as
// "waiting on Channel<int>::Recv at foo.cc:12", whether the test was built with
// g++ or clang++.
//
// How a name is made:
//   * Fundamental types, `std::string` and `std::string_view` have fixed
//     names ("int", "unsigned long", "std::string").
//   * Common templates are spelled from their arguments' names:
//     `std::vector<T>`, `std::deque<T>`, `std::optional<T>`,
//     `std::unique_ptr<T>`, `std::shared_ptr<T>`, `std::pair<A, B>` and
//     `std::tuple<Ts...>`.
//   * `const`, `volatile`, pointers and references are spelled around the
//     name of the type they qualify ("const Job*").
//   * Any other type falls back to its demangled `typeid` name, which both
//     compilers produce identically on the same C++ ABI (Itanium, libstdc++).
//     Specialize `simsched::TypeNameTraits<T>` to choose a name yourself.
//
// This header defines:
//   * `simsched::TypeName<T>()`
//   * `simsched::TypeNameTraits<T>`   the customization point
//
// Example:
//
//   simsched::TypeName<int>();                        // "int"
//   simsched::TypeName<std::vector<std::string>>();   // "std::vector<std::string>"
//
//   // A shorter name for a type of yours:
//   template <>
//   struct simsched::TypeNameTraits<mylib::Request> {
//     static std::string Name() { return "Request"; }
//   };

#ifndef SIMSCHED_SIM_TYPE_NAME_H_
#define SIMSCHED_SIM_TYPE_NAME_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

namespace simsched {

namespace internal {

// Returns the demangled name of `type` ("mylib::Request"), or its raw name
// if it cannot be demangled.
std::string DemangledTypeName(const std::type_info& type);

}  // namespace internal

// TypeNameTraits
//
// `Name()` returns the name `TypeName<T>()` reports. The primary template
// demangles `typeid(T)`; the specializations below spell common types.
template <typename T>
struct TypeNameTraits {
  static std::string Name() { return internal::DemangledTypeName(typeid(T)); }
};

// TypeName()
//
// Returns the deterministic name of `T` (see the file comment). Computed on
// each call; callers that need it often keep a copy.
template <typename T>
std::string TypeName() {
  return TypeNameTraits<T>::Name();
}

#define SIMSCHED_INTERNAL_FIXED_TYPE_NAME(type, spelling) \
  template <>                                             \
  struct TypeNameTraits<type> {                           \
    static std::string Name() { return spelling; }        \
  }

SIMSCHED_INTERNAL_FIXED_TYPE_NAME(void, "void");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(bool, "bool");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(char, "char");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(signed char, "signed char");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(unsigned char, "unsigned char");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(char8_t, "char8_t");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(char16_t, "char16_t");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(char32_t, "char32_t");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(wchar_t, "wchar_t");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(short, "short");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(unsigned short, "unsigned short");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(int, "int");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(unsigned int, "unsigned int");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(long, "long");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(unsigned long, "unsigned long");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(long long, "long long");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(unsigned long long, "unsigned long long");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(float, "float");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(double, "double");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(long double, "long double");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(std::nullptr_t, "std::nullptr_t");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(std::string, "std::string");
SIMSCHED_INTERNAL_FIXED_TYPE_NAME(std::string_view, "std::string_view");

#undef SIMSCHED_INTERNAL_FIXED_TYPE_NAME

template <typename T>
struct TypeNameTraits<const T> {
  static std::string Name() { return "const " + TypeName<T>(); }
};
template <typename T>
struct TypeNameTraits<volatile T> {
  static std::string Name() { return "volatile " + TypeName<T>(); }
};
template <typename T>
struct TypeNameTraits<const volatile T> {
  static std::string Name() { return "const volatile " + TypeName<T>(); }
};
template <typename T>
struct TypeNameTraits<T*> {
  static std::string Name() { return TypeName<T>() + "*"; }
};
template <typename T>
struct TypeNameTraits<T&> {
  static std::string Name() { return TypeName<T>() + "&"; }
};
template <typename T>
struct TypeNameTraits<T&&> {
  static std::string Name() { return TypeName<T>() + "&&"; }
};

namespace internal {

// "a, b, c" for the names of `Ts...`.
template <typename... Ts>
std::string TypeNameList() {
  std::string out;
  ((out += (out.empty() ? "" : ", ") + TypeName<Ts>()), ...);
  return out;
}

}  // namespace internal

template <typename T>
struct TypeNameTraits<std::vector<T>> {
  static std::string Name() { return "std::vector<" + TypeName<T>() + ">"; }
};
template <typename T>
struct TypeNameTraits<std::deque<T>> {
  static std::string Name() { return "std::deque<" + TypeName<T>() + ">"; }
};
template <typename T>
struct TypeNameTraits<std::optional<T>> {
  static std::string Name() { return "std::optional<" + TypeName<T>() + ">"; }
};
template <typename T>
struct TypeNameTraits<std::unique_ptr<T>> {
  static std::string Name() { return "std::unique_ptr<" + TypeName<T>() + ">"; }
};
template <typename T>
struct TypeNameTraits<std::shared_ptr<T>> {
  static std::string Name() { return "std::shared_ptr<" + TypeName<T>() + ">"; }
};
template <typename A, typename B>
struct TypeNameTraits<std::pair<A, B>> {
  static std::string Name() { return "std::pair<" + internal::TypeNameList<A, B>() + ">"; }
};
template <typename... Ts>
struct TypeNameTraits<std::tuple<Ts...>> {
  static std::string Name() { return "std::tuple<" + internal::TypeNameList<Ts...>() + ">"; }
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_TYPE_NAME_H_
