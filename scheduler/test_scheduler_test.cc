#include "scheduler/test_scheduler.h"
#include "gtest/gtest.h"
namespace simsched { namespace { TEST(Placeholder, Compiles) { TestScheduler s; EXPECT_FALSE(s.Step()); } } }
