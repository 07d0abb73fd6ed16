// The fixed chat server over the simulated network through the harness: a
// few hundred seeds of loss, partitions and server crashes, every session
// clean. The end-of-sweep table lists the server's SIMSCHED_BUGGIFY points.

#include "session/examples/chat_server.h"
#include "testing/sim_test.h"

namespace simsched::examples {
namespace {

SIM_TEST(ChatServerSimTest, FixedServerKeepsEverySessionClean, .iterations = 200) {
  ChatNetworkResult result = RunChatOverNetwork(
      sim.scheduler_ptr(),
      {.service = {.fixed = true}, .log = [&](std::string_view line) { sim.Log(line); }});
  EXPECT_EQ(result.Problem(), "") << result.report;
  EXPECT_EQ(result.requests, 30);
}

}  // namespace
}  // namespace simsched::examples
