// InternTable and InternString (scheduler/internal/intern_table.h): one
// address per distinct key, in the static part until it is 3/4 full and on the
// heap beyond, stable under concurrent interning from many threads.

#include "scheduler/internal/intern_table.h"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/internal/packed_task_metadata.h"
#include "scheduler/internal/wait_site.h"
#include "sim/random.h"

namespace simsched::internal {
namespace {

struct Pair {
  uint64_t a = 0;
  uint64_t b = 0;
};
// A deliberately poor hash (every key starts probing at one slot), so that
// probing and the overflow are exercised by few keys.
struct ConstantHash {
  size_t operator()(const Pair&) const { return 0; }
};
struct PairHash {
  size_t operator()(const Pair& p) const { return (p.a * 0x9E3779B97F4A7C15ULL) ^ p.b; }
};
struct PairEq {
  bool operator()(const Pair& x, const Pair& y) const { return x.a == y.a && x.b == y.b; }
};

constinit InternTable<Pair, 16, ConstantHash, PairEq> colliding_table;
constinit InternTable<Pair, 64, PairHash, PairEq> threaded_table;

TEST(InternTableTest, EqualKeysShareOneRecordInTheStaticPartThenOnTheHeap) {
  // 16 slots kept 3/4 full: the first 12 keys are numbered, the rest are not.
  std::vector<const Pair*> first;
  for (uint64_t i = 0; i < 40; ++i) first.push_back(colliding_table.Intern(Pair{i, i + 1}));
  std::set<const Pair*> distinct(first.begin(), first.end());
  EXPECT_EQ(distinct.size(), 40u);
  for (uint64_t i = 0; i < 40; ++i) {
    const Pair* again = colliding_table.Intern(Pair{i, i + 1});
    EXPECT_EQ(again, first[i]) << i;
    EXPECT_EQ(again->a, i);
    EXPECT_EQ(again->b, i + 1);
    const ptrdiff_t index = colliding_table.IndexOf(again);
    if (i < 12) {
      ASSERT_GE(index, 0) << i;
      EXPECT_EQ(colliding_table.At(static_cast<size_t>(index)), again);
    } else {
      EXPECT_EQ(index, -1) << i << " should live on the heap";
    }
  }
}

TEST(InternTableTest, ThreadsInterningTheSameKeysGetTheSameRecords) {
  // Keys drawn from a seed, more than the static part holds, interned by four
  // threads in different orders.
  constexpr int kKeys = 200;
  std::vector<Pair> keys;
  Rng rng(7);
  for (int i = 0; i < kKeys; ++i) keys.push_back(Pair{rng.Next64(), static_cast<uint64_t>(i)});
  std::vector<std::vector<const Pair*>> seen(4, std::vector<const Pair*>(kKeys));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        const int i = (t % 2 == 0) ? k : kKeys - 1 - k;
        seen[t][i] = threaded_table.Intern(keys[i]);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kKeys; ++i) {
    for (int t = 1; t < 4; ++t) EXPECT_EQ(seen[t][i], seen[0][i]) << i;
    EXPECT_TRUE(PairEq{}(*seen[0][i], keys[i]));
  }
}

TEST(InternStringTest, OneCopyPerTextThatOutlivesTheArgument) {
  std::string text = "a label";
  const std::string* interned = InternString(text);
  text = "changed";
  EXPECT_EQ(*interned, "a label");
  EXPECT_EQ(InternString(std::string("a label")), interned);
  EXPECT_NE(InternString("another label"), interned);
}

TEST(InternTableTest, SpawnAndWaitSitesUseIt) {
  // The two call-site tables the task core keeps: equal sites, one record.
  const SourceLocation here = SourceLocation::current();
  const std::string* label = InternString("gc");
  const SpawnSite* site = InternSpawnSite(here, label, 3);
  EXPECT_EQ(InternSpawnSiteSlow(here, label, 3), site);
  EXPECT_GE(SpawnSiteIndex(site), 0);
  EXPECT_EQ(site->lane, 3u);
  EXPECT_EQ(site->label, label);
  EXPECT_NE(InternSpawnSiteSlow(here, label, 4), site);

  static constexpr char kWhat[] = "InternTableTest::wait";
  const PackedWaitSite* wait = InternWaitSiteSlow(kWhat, here, nullptr);
  EXPECT_EQ(InternWaitSiteSlow(kWhat, here, nullptr), wait);
  EXPECT_EQ(wait->what(), kWhat);
  // A description too long to keep inline is interned as a string.
  const std::string long_what(PackedWaitSite::kWhatOutOfLine + 5, 'x');
  const PackedWaitSite* long_wait = InternWaitSiteSlow(long_what, here, nullptr);
  EXPECT_EQ(long_wait->what(), long_what);
  EXPECT_EQ(InternWaitSiteSlow(std::string(long_what), here, nullptr), long_wait);
}

}  // namespace
}  // namespace simsched::internal
