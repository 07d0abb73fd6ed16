#include "sim/type_name.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace simsched {
namespace {

struct Job {};

}  // namespace

namespace testing_names {
struct Named {};
}  // namespace testing_names

template <>
struct TypeNameTraits<testing_names::Named> {
  static std::string Name() { return "MyName"; }
};

namespace {

TEST(TypeNameTest, FundamentalTypesHaveFixedNames) {
  EXPECT_EQ(TypeName<int>(), "int");
  EXPECT_EQ(TypeName<bool>(), "bool");
  EXPECT_EQ(TypeName<unsigned long>(), "unsigned long");
  EXPECT_EQ(TypeName<double>(), "double");
  EXPECT_EQ(TypeName<void>(), "void");
  EXPECT_EQ(TypeName<int64_t>(), TypeName<long>()) << "a typedef is its underlying type";
}

TEST(TypeNameTest, StringsAreSpelledAsWritten) {
  EXPECT_EQ(TypeName<std::string>(), "std::string");
  EXPECT_EQ(TypeName<std::string_view>(), "std::string_view");
}

TEST(TypeNameTest, CommonTemplatesAreSpelledFromTheirArguments) {
  EXPECT_EQ(TypeName<std::vector<std::string>>(), "std::vector<std::string>");
  EXPECT_EQ(TypeName<std::optional<int>>(), "std::optional<int>");
  EXPECT_EQ(TypeName<std::unique_ptr<double>>(), "std::unique_ptr<double>");
  EXPECT_EQ((TypeName<std::pair<int, std::string>>()), "std::pair<int, std::string>");
  EXPECT_EQ((TypeName<std::tuple<int, bool, char>>()), "std::tuple<int, bool, char>");
  EXPECT_EQ(TypeName<std::tuple<>>(), "std::tuple<>");
}

TEST(TypeNameTest, QualifiersPointersAndReferencesWrapTheName) {
  EXPECT_EQ(TypeName<const int>(), "const int");
  EXPECT_EQ(TypeName<const std::string*>(), "const std::string*");
  EXPECT_EQ(TypeName<int&>(), "int&");
  EXPECT_EQ(TypeName<int&&>(), "int&&");
}

TEST(TypeNameTest, OtherTypesAreDemangled) {
  EXPECT_EQ(TypeName<Job>(), "simsched::(anonymous namespace)::Job");
  EXPECT_EQ(TypeName<std::vector<Job>>(), "std::vector<simsched::(anonymous namespace)::Job>");
}

TEST(TypeNameTest, SpecializingTheTraitsChoosesTheName) {
  EXPECT_EQ(TypeName<testing_names::Named>(), "MyName");
  EXPECT_EQ(TypeName<std::shared_ptr<testing_names::Named>>(), "std::shared_ptr<MyName>");
}

}  // namespace
}  // namespace simsched
