#include "sim/examples/kv_store.h"

#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scheduler/scheduler.h"
#include "sim/disk.h"
#include "sim/rpc.h"
#include "sim/world.h"

namespace simsched::examples {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kPort = 7000;

// The coordination service: who is primary. The test's own state; it does
// not fail.
struct Coordinator {
  std::string primary = "kv1";
  std::string backup = "kv2";
  bool failed_over = false;
};

std::pair<std::string, std::string> SplitPut(const std::string& request) {
  const size_t eq = request.find('=');
  if (eq == std::string::npos) return {request, ""};
  return {request.substr(0, eq), request.substr(eq + 1)};
}

// One storage server: volatile state of its host (rebuilt from the log at
// every boot).
class KvServer {
 public:
  KvServer(Host& host, Coordinator& coordinator, const KvOptions& options)
      : host_(host), coordinator_(coordinator), options_(options), rpc_(host, kPort) {}

  absl::Status Start() {
    absl::StatusOr<File> wal = host_.disk().Open("wal", {.create = true});
    if (!wal.ok()) return wal.status();
    wal_ = *wal;
    absl::StatusOr<std::string> log = wal_.ReadAll();
    if (!log.ok()) return log.status();
    // Recover: one "key=value\n" record per put; a partial last line (none
    // without torn writes) is ignored.
    size_t start = 0;
    for (size_t end; (end = log->find('\n', start)) != std::string::npos; start = end + 1) {
      auto [key, value] = SplitPut(log->substr(start, end - start));
      data_[key] = value;
    }
    rpc_.Handle("put", [this](std::string r) { return Put(std::move(r)); });
    rpc_.Handle("get", [this](std::string r) { return Get(std::move(r)); });
    rpc_.Handle("replicate", [this](std::string r) { return Replicate(std::move(r)); });
    return rpc_.Start();
  }

 private:
  // Appends the record and fsyncs it: durable before anyone hears of it.
  absl::Status Persist(const std::string& request) {
    if (absl::Status s = wal_.Append(request + "\n"); !s.ok()) return s;
    if (absl::Status s = wal_.Sync(); !s.ok()) return s;
    auto [key, value] = SplitPut(request);
    data_[key] = value;
    return absl::OkStatus();
  }

  Co<absl::StatusOr<std::string>> Put(std::string request) {
    if (coordinator_.primary != host_.name()) {
      co_return absl::FailedPreconditionError(absl::StrCat(host_.name(), " is not the primary"));
    }
    if (absl::Status s = Persist(request); !s.ok()) co_return s;
    if (!coordinator_.backup.empty()) {
      const Address backup(coordinator_.backup, kPort);
      if (options_.wait_for_backup) {
        absl::StatusOr<std::string> ack = co_await rpc_.Call(backup, "replicate", request, 50ms);
        if (!ack.ok()) {
          co_return absl::UnavailableError(
              absl::StrCat("the backup did not confirm: ", ack.status().message()));
        }
      } else {
        // THE BUG: acknowledged before the backup has the write. If this
        // one-way message is cut by a partition and the primary then
        // crashes, the promoted backup never had it.
        (void)rpc_.Notify(backup, "replicate", request);
      }
    }
    co_return std::string("ok");
  }

  Co<absl::StatusOr<std::string>> Get(std::string key) {
    if (coordinator_.primary != host_.name()) {
      co_return absl::FailedPreconditionError(absl::StrCat(host_.name(), " is not the primary"));
    }
    auto it = data_.find(key);
    if (it == data_.end()) co_return absl::NotFoundError(absl::StrCat("no key ", key));
    co_return it->second;
  }

  Co<absl::StatusOr<std::string>> Replicate(std::string request) {
    if (absl::Status s = Persist(request); !s.ok()) co_return s;
    co_return std::string("ok");
  }

  Host& host_;
  Coordinator& coordinator_;
  const KvOptions& options_;
  RpcNode rpc_;
  File wal_;
  std::map<std::string, std::string> data_;
};

struct ClientState {
  RpcNode* rpc = nullptr;
  int acknowledged = 0;
  std::vector<std::pair<std::string, std::string>> acked;
  bool done = false;
};

Co<void> ClientLoop(Coordinator& coordinator, ClientState& client, int puts) {
  for (int i = 0; i < puts; ++i) {
    const std::string key = absl::StrCat("k", i);
    const std::string value = absl::StrCat("v", i);
    while (true) {
      const Address primary(coordinator.primary, kPort);
      absl::StatusOr<std::string> r =
          co_await client.rpc->Call(primary, "put", absl::StrCat(key, "=", value), 100ms);
      if (r.ok()) {
        client.acked.emplace_back(key, value);
        ++client.acknowledged;
        break;
      }
      co_await Sleep(20ms);
    }
    co_await Sleep(50ms);
  }
  client.done = true;
}

// A perfect failure detector: promotes the backup once the primary is down.
Co<void> FailureDetector(World& world, Coordinator& coordinator) {
  while (!coordinator.failed_over) {
    co_await Sleep(10ms);
    if (!world.FindHost(coordinator.primary)->IsUp()) {
      coordinator.primary = coordinator.backup;
      coordinator.backup.clear();
      coordinator.failed_over = true;
      world.Note(absl::StrCat("failover: ", coordinator.primary, " is now the primary"));
    }
  }
}

// Reads every acknowledged key back from the current primary.
Co<std::vector<std::string>> Verify(Coordinator& coordinator, ClientState& client) {
  std::vector<std::string> lost;
  for (const auto& [key, value] : client.acked) {
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<std::string> r =
          co_await client.rpc->Call(Address(coordinator.primary, kPort), "get", key, 100ms);
      if (r.ok() && *r == value) break;
      if ((r.ok() && *r != value) || absl::IsNotFound(r.status()) || attempt == 20) {
        lost.push_back(key);
        break;
      }
      co_await Sleep(20ms);
    }
  }
  co_return lost;
}

}  // namespace

std::string KvResult::Problem() const {
  if (!status.ok()) return std::string(status.message());
  if (lost.empty()) return "";
  return absl::StrCat("acknowledged write lost: ", lost[0],
                      lost.size() > 1 ? absl::StrCat(" (and ", lost.size() - 1, " more)") : "",
                      failed_over ? " after failover to kv2" : "");
}

FaultPlan KvFaultPlan(const KvOptions& options) {
  FaultPlan plan;
  plan.link.min_latency = 1ms;
  plan.link.max_latency = 5ms;
  plan.link.duplicate = 0.02;
  plan.link.reorder = 0.05;
  plan.link.loss = 0;  // only partitions cut messages
  plan.partition_probability = options.partition_probability;
  plan.crash_probability = options.crash_probability;
  plan.crash_hosts = {"kv1"};
  plan.tick = 100ms;
  plan.chaos_duration = options.chaos_duration;
  plan.buggify = false;
  return plan;
}

KvResult RunKvScenario(TestScheduler& scheduler, const KvOptions& options) {
  KvResult result;
  World world(scheduler, {.log = options.log});
  Coordinator coordinator;
  ClientState client;
  Host& kv1 = **world.AddHost("kv1");
  Host& kv2 = **world.AddHost("kv2");
  Host& client_host = **world.AddHost("client");
  for (Host* host : {&kv1, &kv2}) {
    host->OnBoot([&coordinator, &options](Host& h) {
      absl::Status started = h.Emplace<KvServer>(h, coordinator, options).Start();
      if (!started.ok()) h.world().Note(absl::StrCat(h.name(), " failed to start: ", started.message()));
    });
  }
  client_host.OnBoot([&](Host& h) {
    client.rpc = &h.Emplace<RpcNode>(h, 9000);
    (void)client.rpc->Start();
    (void)h.Spawn(ClientLoop(coordinator, client, options.puts));
    (void)h.Spawn(FailureDetector(world, coordinator));
  });

  result.status = world.RunFaultPlan(
      KvFaultPlan(options),
      {.what = absl::StrCat("all ", options.puts, " puts acknowledged"),
       .condition = [&client] { return client.done; },
       .budget = 20s,
       .pending = [&] {
         return absl::StrCat(client.acknowledged, " of ", options.puts, " puts acknowledged");
       }});
  if (result.status.ok()) {
    absl::StatusOr<std::vector<std::string>> lost =
        scheduler.BlockOn(Spawn(scheduler, Verify(coordinator, client)));
    if (lost.ok()) {
      result.lost = std::move(*lost);
    } else {
      result.status = lost.status();
    }
  }
  result.acknowledged = client.acknowledged;
  result.failed_over = coordinator.failed_over;
  result.event_hash = world.EventHash();
  result.report = world.Report();
  return result;
}

}  // namespace simsched::examples
