// Tests of sim/disk.h: durability at fsync, crash losing unsynced writes and
// names, torn writes, read corruption, stale handles and bad input.

#include "sim/disk.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/test_scheduler.h"
#include "sim/host.h"
#include "sim/world.h"

namespace simsched {
namespace {

using ::testing::HasSubstr;

struct OneHost {
  explicit OneHost(uint64_t seed = 1) : scheduler({.seed = seed}), world(scheduler) {
    host = *world.AddHost("db");
  }
  Disk& disk() { return host->disk(); }
  void CrashAndRestart() {
    host->Crash();
    ASSERT_TRUE(host->Restart().ok());
  }
  TestScheduler scheduler;
  World world;
  Host* host;
};

TEST(DiskTest, ReadsSeeWritesAtOnce) {
  OneHost h;
  File f = *h.disk().Open("f", {.create = true});
  ASSERT_TRUE(f.Append("hello").ok());
  ASSERT_TRUE(f.Write(7, "!").ok());  // past the end: zero-filled gap
  EXPECT_EQ(*f.ReadAll(), std::string("hello\0\0!", 8));
  EXPECT_EQ(*f.Read(1, 3), "ell");
  EXPECT_EQ(*f.Size(), 8u);
  ASSERT_TRUE(f.Truncate(5).ok());
  EXPECT_EQ(*f.ReadAll(), "hello");
}

TEST(DiskTest, CrashDropsUnsyncedWritesAndKeepsSyncedOnes) {
  OneHost h;
  File f = *h.disk().Open("wal", {.create = true});
  ASSERT_TRUE(f.Append("synced;").ok());
  ASSERT_TRUE(f.Sync().ok());
  ASSERT_TRUE(f.Append("lost;").ok());
  h.CrashAndRestart();
  File again = *h.disk().Open("wal");
  EXPECT_EQ(*again.ReadAll(), "synced;");
  EXPECT_EQ(h.world.Counters()["disk.crash"], 1u);
}

TEST(DiskTest, NewFileWithoutSyncIsGoneAfterCrash) {
  OneHost h;
  File f = *h.disk().Open("tmp", {.create = true});
  ASSERT_TRUE(f.Append("data").ok());
  h.CrashAndRestart();
  EXPECT_FALSE(h.disk().Exists("tmp"));
  EXPECT_TRUE(absl::IsNotFound(h.disk().Open("tmp").status()));
}

TEST(DiskTest, RenameIsDurableOnlyAfterSync) {
  OneHost h;
  File f = *h.disk().Open("a", {.create = true});
  ASSERT_TRUE(f.Append("x").ok());
  ASSERT_TRUE(f.Sync().ok());
  ASSERT_TRUE(h.disk().Rename("a", "b").ok());
  EXPECT_THAT(h.disk().List(), ::testing::ElementsAre("b"));
  h.CrashAndRestart();
  EXPECT_THAT(h.disk().List(), ::testing::ElementsAre("a"));  // the rename was lost

  ASSERT_TRUE(h.disk().Rename("a", "b").ok());
  ASSERT_TRUE(h.disk().SyncDirectory().ok());
  h.CrashAndRestart();
  EXPECT_THAT(h.disk().List(), ::testing::ElementsAre("b"));
  EXPECT_EQ(*h.disk().Open("b")->ReadAll(), "x");
}

TEST(DiskTest, RenameReplacesAtomically) {
  OneHost h;
  File a = *h.disk().Open("new", {.create = true});
  ASSERT_TRUE(a.Append("v2").ok());
  File b = *h.disk().Open("current", {.create = true});
  ASSERT_TRUE(b.Append("v1").ok());
  ASSERT_TRUE(b.Sync().ok());
  ASSERT_TRUE(a.Sync().ok());
  ASSERT_TRUE(h.disk().Rename("new", "current").ok());
  ASSERT_TRUE(h.disk().SyncDirectory().ok());
  h.CrashAndRestart();
  EXPECT_EQ(*h.disk().Open("current")->ReadAll(), "v2");
  EXPECT_FALSE(h.disk().Exists("new"));
}

TEST(DiskTest, TornWriteKeepsAPrefixOfUnsyncedWrites) {
  int torn_seen = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    OneHost h(seed);
    ASSERT_TRUE(h.world.SetDiskFaults({.torn_write = 1.0}).ok());
    File f = *h.disk().Open("log", {.create = true});
    ASSERT_TRUE(f.Append("base|").ok());
    ASSERT_TRUE(f.Sync().ok());
    ASSERT_TRUE(f.Append("aaaa|").ok());
    ASSERT_TRUE(f.Append("bbbb|").ok());
    h.CrashAndRestart();
    const std::string after = *h.disk().Open("log")->ReadAll();
    // Always a prefix of what was written, never less than what was synced.
    EXPECT_TRUE(std::string("base|aaaa|bbbb|").starts_with(after)) << after;
    EXPECT_TRUE(after.starts_with("base|")) << after;
    torn_seen += after.size() > 5 ? 1 : 0;
    EXPECT_EQ(h.world.Counters()["disk.torn_write"], 1u);
  }
  EXPECT_GT(torn_seen, 0);
}

TEST(DiskTest, ReadCorruptionFlipsAByteButNotTheStoredData) {
  OneHost h;
  File f = *h.disk().Open("f", {.create = true});
  ASSERT_TRUE(f.Append("0123456789").ok());
  ASSERT_TRUE(h.disk().SetFaults({.read_corruption = 1.0}).ok());
  const std::string corrupted = *f.ReadAll();
  EXPECT_NE(corrupted, "0123456789");
  EXPECT_EQ(corrupted.size(), 10u);
  ASSERT_TRUE(h.disk().SetFaults({}).ok());
  EXPECT_EQ(*f.ReadAll(), "0123456789");
  EXPECT_EQ(h.world.Counters()["disk.read_corrupted"], 1u);
}

TEST(DiskTest, FileUsedAfterCrashIsAnError) {
  OneHost h;
  File f = *h.disk().Open("f", {.create = true});
  ASSERT_TRUE(f.Sync().ok());
  h.host->Crash();
  absl::Status down = f.Append("x");
  EXPECT_TRUE(absl::IsFailedPrecondition(down)) << down;
  EXPECT_THAT(down.message(), HasSubstr("down"));
  EXPECT_TRUE(absl::IsFailedPrecondition(h.disk().Open("f").status()));
  ASSERT_TRUE(h.host->Restart().ok());
  absl::Status stale = f.Append("x");
  EXPECT_TRUE(absl::IsFailedPrecondition(stale)) << stale;
  EXPECT_THAT(stale.message(), HasSubstr("opened before host 'db' crashed"));
  EXPECT_TRUE(h.disk().Open("f")->Append("x").ok());
}

TEST(DiskTest, BadInputIsAClearError) {
  OneHost h;
  EXPECT_TRUE(absl::IsNotFound(h.disk().Open("missing").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(h.disk().Open("", {.create = true}).status()));
  EXPECT_TRUE(absl::IsNotFound(h.disk().Rename("missing", "x")));
  EXPECT_TRUE(absl::IsNotFound(h.disk().Delete("missing")));
  absl::Status rate = h.disk().SetFaults({.torn_write = -0.1});
  EXPECT_TRUE(absl::IsInvalidArgument(rate));
  EXPECT_THAT(rate.message(), HasSubstr("torn_write"));
  EXPECT_TRUE(absl::IsFailedPrecondition(File().Append("x")));
}

TEST(DiskTest, FileOutlivingItsWorldIsAnError) {
  File f;
  {
    OneHost h;
    f = *h.disk().Open("f", {.create = true});
  }
  absl::Status gone = f.Append("x");
  EXPECT_TRUE(absl::IsFailedPrecondition(gone)) << gone;
}

}  // namespace
}  // namespace simsched
