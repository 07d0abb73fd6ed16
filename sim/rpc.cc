#include "sim/rpc.h"

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "scheduler/time.h"
#include "scheduler/waker.h"
#include "sim/world.h"

namespace simsched {
namespace internal {

struct RpcState {
  struct Pending {
    Address to;  // a response counts only from here
    std::optional<absl::StatusOr<std::string>> result;
    Waker waker;
  };

  // Request ids: a world-wide block (World::NewIdBlock), taken at a node's
  // first id and when the count wraps, in the high 32 bits, a counter in the
  // low ones, so no two nodes on the same port ever share an id (a late
  // response from before a crash must not answer a call made after the
  // restart).
  uint64_t NextId() {
    if ((next_id & 0xffffffffULL) == 0) next_id = host->world().NewIdBlock() << 32 | 1;
    return next_id++;
  }

  Host* host = nullptr;
  uint32_t port = 0;
  Endpoint endpoint;
  bool started = false;
  uint64_t next_id = 0;  // 0: take a block at the first id
  std::map<std::string, RpcHandler, std::less<>> handlers;
  absl::flat_hash_map<uint64_t, Pending*> pending;  // lookups only
};

}  // namespace internal

namespace {

using internal::RpcState;

// Wire format: kind ('Q' request, 'N' one-way request, 'R' response), 8-byte little-endian id,
// then for a request a 1-byte method length, the method and the body; for a
// response a 1-byte status code and the body (the value, or the error).
void PutId(std::string& out, uint64_t id) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
}

uint64_t GetId(std::string_view in) {
  uint64_t id = 0;
  for (int i = 0; i < 8; ++i) id |= uint64_t{static_cast<unsigned char>(in[1 + i])} << (8 * i);
  return id;
}

std::string EncodeRequest(uint64_t id, std::string_view method, std::string_view body,
                          char kind = 'Q') {
  std::string out;
  out.reserve(10 + method.size() + body.size());
  out.push_back(kind);
  PutId(out, id);
  out.push_back(static_cast<char>(method.size()));
  out.append(method);
  out.append(body);
  return out;
}

std::string EncodeResponse(uint64_t id, const absl::StatusOr<std::string>& result) {
  std::string out;
  out.push_back('R');
  PutId(out, id);
  out.push_back(static_cast<char>(result.status().code()));
  out.append(result.ok() ? *result : std::string(result.status().message()));
  return out;
}

Co<void> Serve(std::shared_ptr<RpcState> state, Address from, uint64_t id, RpcHandler handler,
               std::string body, bool respond) {
  absl::StatusOr<std::string> result = co_await handler(std::move(body));
  // Fails only if this host crashed (and then this task is cancelled).
  if (respond) (void)state->endpoint.Send(from, EncodeResponse(id, result));
}

Co<void> Dispatch(std::shared_ptr<RpcState> state) {
  while (true) {
    absl::StatusOr<Message> message = co_await state->endpoint.Recv();
    if (!message.ok()) co_return;  // closed: the host crashed or the node went away
    const std::string& p = message->payload;
    if (p.size() < 10) continue;  // not ours
    const uint64_t id = GetId(p);
    if (p[0] == 'Q' || p[0] == 'N') {
      const bool respond = p[0] == 'Q';
      const size_t length = static_cast<unsigned char>(p[9]);
      if (p.size() < 10 + length) continue;
      const std::string_view method = std::string_view(p).substr(10, length);
      std::string body = p.substr(10 + length);
      auto it = state->handlers.find(method);
      if (it == state->handlers.end()) {
        if (!respond) continue;
        (void)state->endpoint.Send(
            message->from,
            EncodeResponse(id, absl::UnimplementedError(absl::StrCat(
                                   "no RPC method '", std::string(method), "' on ",
                                   state->endpoint.address().ToString()))));
        continue;
      }
      (void)state->host->Spawn(
          Serve(state, message->from, id, it->second, std::move(body), respond));
    } else if (p[0] == 'R') {
      auto it = state->pending.find(id);
      if (it == state->pending.end() || it->second->result.has_value() ||
          !(it->second->to == message->from)) {
        continue;  // late, a duplicate, or not from the called node
      }
      const auto code = static_cast<absl::StatusCode>(static_cast<unsigned char>(p[9]));
      if (code == absl::StatusCode::kOk) {
        it->second->result.emplace(p.substr(10));
      } else {
        it->second->result.emplace(absl::Status(code, p.substr(10)));
      }
      it->second->waker.Wake("an RPC reply");
    }
  }
}

// Waits for the response, or the deadline.
class ReplyAwaiter {
 public:
  ReplyAwaiter(RpcState::Pending& pending, Instant deadline)
      : pending_(pending), deadline_(deadline) {}
  ReplyAwaiter(const ReplyAwaiter&) = delete;
  ReplyAwaiter& operator=(const ReplyAwaiter&) = delete;
  ~ReplyAwaiter() {
    if (scheduler_ != nullptr) scheduler_->CancelTimer(timer_);
    pending_.waker = Waker();
  }
  bool await_ready() const { return pending_.result.has_value(); }
  void await_suspend(std::coroutine_handle<>) {
    DescribeWait("RpcNode::Call");
    pending_.waker = CurrentWaker();
    scheduler_ = CurrentScheduler();
    timer_ = scheduler_->StartTimer(deadline_, pending_.waker);
  }
  void await_resume() {}

 private:
  RpcState::Pending& pending_;
  Instant deadline_;
  Scheduler* scheduler_ = nullptr;
  TimerId timer_;
};

Co<absl::StatusOr<std::string>> CallImpl(std::shared_ptr<RpcState> state, Address to,
                                         std::string method, std::string request,
                                         Duration timeout);

}  // namespace

RpcNode::RpcNode(Host& host, uint32_t port) : state_(std::make_shared<RpcState>()) {
  state_->host = &host;
  state_->port = port;
}

RpcNode::~RpcNode() { state_->endpoint.Close(); }

void RpcNode::Handle(std::string method, RpcHandler handler) {
  state_->handlers[std::move(method)] = std::move(handler);
}

absl::Status RpcNode::Start() {
  if (state_->started) {
    return absl::FailedPreconditionError(
        absl::StrCat("RpcNode on port ", state_->port, " already started"));
  }
  absl::StatusOr<Endpoint> endpoint = state_->host->Bind(state_->port);
  if (!endpoint.ok()) return endpoint.status();
  state_->endpoint = std::move(*endpoint);
  if (absl::Status s = state_->host->Spawn(Dispatch(state_)); !s.ok()) return s;
  state_->started = true;
  return absl::OkStatus();
}

absl::Status RpcNode::Notify(const Address& to, std::string_view method,
                             std::string_view request) {
  if (!state_->started || !state_->endpoint.IsOpen()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "RpcNode::Notify('", std::string(method), "'): the node on port ", state_->port,
        " is not started, or its host crashed"));
  }
  if (method.size() > 255) {
    return absl::InvalidArgumentError("RpcNode::Notify: method names are at most 255 bytes");
  }
  return state_->endpoint.Send(to, EncodeRequest(state_->NextId(), method, request, 'N'));
}

Address RpcNode::address() const {
  return Address{state_->host->name(), state_->port};
}

Co<absl::StatusOr<std::string>> RpcNode::Call(Address to, std::string method,
                                              std::string request, Duration timeout) {
  // The node may go away while the call waits: the coroutine holds the
  // shared state, not `this`.
  return CallImpl(state_, std::move(to), std::move(method), std::move(request), timeout);
}

namespace {

Co<absl::StatusOr<std::string>> CallImpl(std::shared_ptr<RpcState> state, Address to,
                                         std::string method, std::string request,
                                         Duration timeout) {
  if (!state->started || !state->endpoint.IsOpen()) {
    co_return absl::FailedPreconditionError(absl::StrCat(
        "RpcNode::Call('", method, "'): the node on port ", state->port,
        " is not started, or its host crashed"));
  }
  if (method.size() > 255) {
    co_return absl::InvalidArgumentError("RpcNode::Call: method names are at most 255 bytes");
  }
  const uint64_t id = state->NextId();
  if (absl::Status sent = state->endpoint.Send(to, EncodeRequest(id, method, request));
      !sent.ok()) {
    co_return sent;
  }
  RpcState::Pending pending;
  pending.to = to;
  state->pending[id] = &pending;
  struct Unregister {
    RpcState& state;
    uint64_t id;
    ~Unregister() { state.pending.erase(id); }
  } unregister{*state, id};
  const Instant deadline = DeadlineAfter(CurrentScheduler()->Now(), timeout);
  co_await ReplyAwaiter(pending, deadline);
  if (pending.result.has_value()) co_return std::move(*pending.result);
  co_return absl::DeadlineExceededError(absl::StrCat("RPC '", method, "' to ", to.ToString(),
                                                     " (request ", id >> 32, ".", id & 0xffffffffULL, ") got no response within ",
                                                     FormatDuration(timeout)));
}

}  // namespace

}  // namespace simsched
