// libheddle: the C interface of include/heddle.h, implemented over the C++ FlatBuffers code
// that scripts/gen-bindings.ts generates from schemas/heddle.fbs (generated/heddle_generated.h).
//
// Transport: a stream socket to the engine. A started engine gets one end of a socketpair
// as its stdin and stdout (a socket, not pipes, so writes use MSG_NOSIGNAL and a dead
// engine is an EPIPE/EOF, never a SIGPIPE in the host); a served engine is reached through
// its unix socket. Frames are size-prefixed FlatBuffers (4-byte little-endian length).
// Our end is non-blocking; every wait is a poll() with the call's deadline, so an engine
// that exits is noticed at once and one that hangs is bounded by timeout_ms.

#include "heddle.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "heddle_generated.h"

extern char **environ;

namespace fb = flatbuffers;
namespace abi = heddle::abi;

#ifndef HEDDLE_DEFAULT_ENGINE_BUNDLE
#define HEDDLE_DEFAULT_ENGINE_BUNDLE ""
#endif

namespace {

thread_local std::string tl_error;
thread_local heddle_status tl_status = HEDDLE_OK;

const char *kResponseIdentifier = HEDDLE_RESPONSE_IDENTIFIER;

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string errno_text(int e) {
  char buf[256];
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return std::string(strerror_r(e, buf, sizeof buf));
#else
  if (strerror_r(e, buf, sizeof buf) != 0) snprintf(buf, sizeof buf, "errno %d", e);
  return std::string(buf);
#endif
}

void json_escape(std::string &out, const char *s) {
  out += '"';
  for (; s && *s; s++) {
    unsigned char c = static_cast<unsigned char>(*s);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// A connection to one engine, shared by the engine object and every network/optimizer
// made through it (so those stay safe to free after the engine is closed).
struct Core {
  std::mutex mu;
  int fd = -1;
  pid_t pid = -1;
  int32_t timeout_ms = 0;
  bool dead = false;
  heddle_status dead_status = HEDDLE_E_CLOSED;
  std::string dead_message;
  uint64_t next_id = 1;
  fb::FlatBufferBuilder fbb{1 << 16};
  // Receive buffer: bytes [rstart, rend) are pending.
  std::vector<uint8_t> rbuf = std::vector<uint8_t>(1 << 16);
  size_t rstart = 0, rend = 0;
  std::vector<uint8_t> scratch;
  // The last complete frame (prefix included), valid until the next receive.
  const uint8_t *frame = nullptr;
  size_t frame_len = 0;
  std::string last_error;
  std::string info_json;

  ~Core() { shutdown(false); }

  // Ends the connection: a started engine gets end-of-input, then SIGKILL after grace_ms.
  void shutdown(bool graceful, int grace_ms = 2000) {
    if (fd >= 0) {
      ::shutdown(fd, SHUT_WR);
      if (!graceful) ::close(fd), fd = -1;
    }
    if (pid > 0) {
      int64_t until = now_ms() + (graceful ? grace_ms : 0);
      int status;
      for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) break;
        if (now_ms() >= until) {
          kill(pid, SIGKILL);
          while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
          break;
        }
        usleep(2000);
      }
      pid = -1;
    }
    if (fd >= 0) ::close(fd), fd = -1;
  }
};

heddle_status set_error(Core *c, heddle_status s, const std::string &msg) {
  tl_status = s;
  tl_error = std::string(heddle_status_name(s)) + ": " + msg;
  if (c) c->last_error = tl_error;
  return s;
}

// Marks the connection unusable; later calls fail with `s` and `msg`.
heddle_status kill_connection(Core *c, heddle_status s, const std::string &msg) {
  if (!c->dead) {
    c->dead = true;
    c->dead_status = s;
    c->dead_message = msg;
    c->shutdown(false);
  }
  return set_error(c, s, msg);
}

// How the engine went away: its exit status when we started it.
std::string exit_story(Core *c) {
  if (c->pid <= 0) return "the engine closed the connection";
  int status = 0;
  int64_t until = now_ms() + 500;
  for (;;) {
    pid_t r = waitpid(c->pid, &status, WNOHANG);
    if (r == c->pid) {
      c->pid = -1;
      if (WIFEXITED(status)) return "the engine exited with status " + std::to_string(WEXITSTATUS(status));
      if (WIFSIGNALED(status)) return "the engine was killed by signal " + std::to_string(WTERMSIG(status));
      return "the engine exited";
    }
    if (r < 0 && errno != EINTR) return "the engine exited";
    if (now_ms() >= until) return "the engine closed the connection";
    usleep(1000);
  }
}

heddle_status engine_gone(Core *c) {
  std::string story = exit_story(c);
  return kill_connection(c, HEDDLE_E_ENGINE_EXITED, story + "; start a new engine");
}

// Waits for `events` on the socket until the deadline (-1: none).
heddle_status wait_fd(Core *c, short events, int64_t deadline) {
  for (;;) {
    int timeout = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return kill_connection(c, HEDDLE_E_TIMEOUT, "no answer from the engine within " + std::to_string(c->timeout_ms) + " ms; the engine was closed");
      timeout = static_cast<int>(left);
    }
    struct pollfd p = {c->fd, events, 0};
    int r = poll(&p, 1, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "poll failed: " + errno_text(errno));
    }
    if (r == 0) continue;  // deadline check at the top
    if (p.revents & (events | POLLHUP | POLLERR)) return HEDDLE_OK;
  }
}

int64_t deadline_of(Core *c) { return c->timeout_ms > 0 ? now_ms() + c->timeout_ms : -1; }

heddle_status send_all(Core *c, const uint8_t *data, size_t len, int64_t deadline) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::send(c->fd, data + off, len - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      heddle_status s = wait_fd(c, POLLOUT, deadline);
      if (s != HEDDLE_OK) return s;
      continue;
    }
    return engine_gone(c);  // EPIPE, ECONNRESET: the engine is gone
  }
  return HEDDLE_OK;
}

// Reads what is available (at least one byte, waiting until the deadline). Returns OK, or an error.
heddle_status fill(Core *c, int64_t deadline, bool wait) {
  if (c->rend == c->rbuf.size()) {
    if (c->rstart > 0) {
      memmove(c->rbuf.data(), c->rbuf.data() + c->rstart, c->rend - c->rstart);
      c->rend -= c->rstart;
      c->rstart = 0;
    } else {
      c->rbuf.resize(c->rbuf.size() * 2);
    }
  }
  for (;;) {
    ssize_t n = ::recv(c->fd, c->rbuf.data() + c->rend, c->rbuf.size() - c->rend, 0);
    if (n > 0) {
      c->rend += static_cast<size_t>(n);
      return HEDDLE_OK;
    }
    if (n == 0) return engine_gone(c);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait) return HEDDLE_OK;
      heddle_status s = wait_fd(c, POLLIN, deadline);
      if (s != HEDDLE_OK) return s;
      continue;
    }
    return engine_gone(c);
  }
}

// A complete frame in the buffer, verified: sets c->frame. `have` false when more bytes are needed.
heddle_status take_frame(Core *c, bool *have) {
  *have = false;
  size_t pending = c->rend - c->rstart;
  if (pending < 4) return HEDDLE_OK;
  const uint8_t *p = c->rbuf.data() + c->rstart;
  uint32_t len = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  size_t total = 4 + static_cast<size_t>(len);
  if (pending < total) {
    if (c->rbuf.size() - c->rstart < total) {
      // Make room for the whole frame.
      memmove(c->rbuf.data(), c->rbuf.data() + c->rstart, pending);
      c->rstart = 0;
      c->rend = pending;
      if (c->rbuf.size() < total) c->rbuf.resize(total);
    }
    return HEDDLE_OK;
  }
  c->rstart += total;
  if ((reinterpret_cast<uintptr_t>(p) & 15) != 0) {
    // FlatBuffers aligns a size-prefixed buffer from its prefix: read frames from a 16-aligned copy.
    c->scratch.resize(total);
    memcpy(c->scratch.data(), p, total);
    p = c->scratch.data();
  }
  fb::Verifier v(p, total);
  if (!v.VerifySizePrefixedBuffer<abi::Response>(kResponseIdentifier)) {
    return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "the engine sent a frame that is not a valid Heddle response");
  }
  c->frame = p;
  c->frame_len = total;
  *have = true;
  return HEDDLE_OK;
}

heddle_status recv_frame(Core *c, int64_t deadline) {
  for (;;) {
    bool have;
    heddle_status s = take_frame(c, &have);
    if (s != HEDDLE_OK || have) return s;
    s = fill(c, deadline, true);
    if (s != HEDDLE_OK) return s;
  }
}

const abi::Response *frame_response(Core *c) { return fb::GetSizePrefixedRoot<abi::Response>(c->frame); }

heddle_status engine_error(Core *c, const abi::Error *e) {
  std::string msg = e->message() ? e->message()->str() : "";
  std::string where = e->where() ? e->where()->str() : "";
  if (!where.empty() && msg.find(where) == std::string::npos) msg = where + ": " + msg;
  int code = static_cast<int>(e->code());
  return set_error(c, static_cast<heddle_status>(code), msg);
}

heddle_status check_usable(Core *c) {
  if (!c) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL engine");
  if (c->dead) return set_error(c, c->dead_status, c->dead_message);
  return HEDDLE_OK;
}

using ProgressFn = void (*)(const abi::TrainProgress *, void *);

// One call: builds the request with `build`, sends it, and waits for its final response
// (progress frames go to `progress`). On success *out is the response body (valid until the next receive).
template <class Build>
heddle_status call(Core *c, abi::RequestBody type, abi::ResponseBody want, Build build, const abi::Response **out, ProgressFn progress = nullptr, void *user = nullptr) {
  heddle_status s = check_usable(c);
  if (s != HEDDLE_OK) return s;
  uint64_t id = c->next_id++;
  fb::FlatBufferBuilder &b = c->fbb;
  b.Clear();
  fb::Offset<void> body = build(b);
  abi::FinishSizePrefixedRequestBuffer(b, abi::CreateRequest(b, id, type, body));
  int64_t deadline = deadline_of(c);
  s = send_all(c, b.GetBufferPointer(), b.GetSize(), deadline);
  if (s != HEDDLE_OK) return s;
  for (;;) {
    s = recv_frame(c, deadline);
    if (s != HEDDLE_OK) return s;
    const abi::Response *r = frame_response(c);
    if (r->call_id() != id && r->call_id() != 0) {
      return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "the engine answered call " + std::to_string(r->call_id()) + " while call " + std::to_string(id) + " was pending");
    }
    if (r->body_type() == abi::ResponseBody_Error) return engine_error(c, r->body_as_Error());
    if (r->body_type() == abi::ResponseBody_TrainProgress) {
      if (progress) progress(r->body_as_TrainProgress(), user);
      continue;
    }
    if (r->body_type() != want) {
      return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, std::string("the engine answered with ") + abi::EnumNameResponseBody(r->body_type()) + ", expected " + abi::EnumNameResponseBody(want));
    }
    *out = r;
    return HEDDLE_OK;
  }
}

// Copies an f32 response tensor of exactly `count` elements into out.
heddle_status copy_f32(Core *c, const abi::Tensor *t, size_t count, float *out, const char *what) {
  if (!t || t->dtype() != abi::DType_F32 || !t->data() || t->data()->size() != count * sizeof(float)) {
    return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, std::string("the engine's ") + what + " is not " + std::to_string(count) + " f32 values");
  }
  if (count) memcpy(out, t->data()->data(), count * sizeof(float));
  return HEDDLE_OK;
}

bool mul_ok(size_t a, size_t b, size_t *r) {
  if (a != 0 && b > SIZE_MAX / a) return false;
  *r = a * b;
  return true;
}

fb::Offset<abi::Tensor> add_tensor(fb::FlatBufferBuilder &b, const int64_t *shape, size_t rank, abi::DType dtype, const void *data, size_t nbytes) {
  b.ForceVectorAlignment(nbytes, 1, 16);
  auto d = b.CreateVector(static_cast<const uint8_t *>(data), nbytes);
  auto s = b.CreateVector(shape, rank);
  return abi::CreateTensor(b, s, dtype, d);
}

std::string default_client_name(const heddle_engine_options *o) {
  return (o && o->client_name) ? o->client_name : std::string("libheddle ") + HEDDLE_LIB_VERSION;
}

}  // namespace

struct heddle_engine {
  std::shared_ptr<Core> core;
};

struct heddle_network {
  std::shared_ptr<Core> core;
  abi::Handle handle;
  std::vector<int64_t> input_shape, output_shape;
  size_t input_size = 1, output_size = 1;
  size_t parameter_count = 0;
  std::vector<std::string> param_names;
  std::vector<std::vector<int64_t>> param_shapes;
  // Bytes fetched for a buffer that was too small: kind 0/1 = save JSON/SAFETENSORS, 2 = describe.
  int cache_kind = -1;
  std::vector<uint8_t> cache;
};

struct heddle_optimizer {
  std::shared_ptr<Core> core;
  abi::Handle handle;
  // The last fetched state (heddle_optimizer_state).
  std::vector<std::string> state_names;
  std::vector<std::vector<int64_t>> state_shapes;
  std::vector<std::vector<float>> state_data;
};

namespace {

heddle_status make_network(const std::shared_ptr<Core> &core, const abi::NetworkInfo *info, heddle_network **out) {
  Core *c = core.get();
  if (!info || !info->network()) return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "the engine sent no network info");
  std::unique_ptr<heddle_network> n(new heddle_network());
  n->core = core;
  n->handle = *info->network();
  auto dims = [](const fb::Vector<int64_t> *v, std::vector<int64_t> &shape, size_t &size) {
    size = 1;
    if (v)
      for (auto d : *v) shape.push_back(d), size *= static_cast<size_t>(d);
  };
  dims(info->input_shape(), n->input_shape, n->input_size);
  dims(info->output_shape(), n->output_shape, n->output_size);
  n->parameter_count = static_cast<size_t>(info->parameter_count());
  if (info->parameters()) {
    for (auto p : *info->parameters()) {
      n->param_names.push_back(p->name()->str());
      std::vector<int64_t> s;
      if (p->shape())
        for (auto d : *p->shape()) s.push_back(d);
      n->param_shapes.push_back(s);
    }
  }
  *out = n.release();
  return HEDDLE_OK;
}

heddle_status hello(Core *c, const std::string &client) {
  const abi::Response *r = nullptr;
  heddle_status s = call(
      c, abi::RequestBody_HelloRequest, abi::ResponseBody_HelloResponse,
      [&](fb::FlatBufferBuilder &b) {
        abi::AbiVersion v(HEDDLE_ABI_VERSION_MAJOR, HEDDLE_ABI_VERSION_MINOR, HEDDLE_ABI_VERSION_PATCH);
        return abi::CreateHelloRequestDirect(b, &v, client.c_str()).Union();
      },
      &r);
  if (s != HEDDLE_OK) return s;
  const abi::HelloResponse *h = r->body_as_HelloResponse();
  const abi::AbiVersion *v = h->abi_version();
  std::string j = "{\"abi_version\":\"" + std::to_string(v->major()) + "." + std::to_string(v->minor()) + "." + std::to_string(v->patch()) + "\"";
  j += ",\"engine_version\":";
  json_escape(j, h->engine_version() ? h->engine_version()->c_str() : "");
  j += ",\"runtime\":";
  json_escape(j, h->runtime() ? h->runtime()->c_str() : "");
  j += ",\"runtime_version\":";
  json_escape(j, h->runtime_version() ? h->runtime_version()->c_str() : "");
  j += ",\"backends\":[";
  if (h->backends()) {
    bool first = true;
    for (auto be : *h->backends()) {
      if (!first) j += ',';
      first = false;
      j += "{\"name\":";
      json_escape(j, be->name() ? be->name()->c_str() : "");
      j += std::string(",\"available\":") + (be->available() ? "true" : "false") + ",\"adapters\":[";
      if (be->adapters()) {
        bool f2 = true;
        for (auto a : *be->adapters()) {
          if (!f2) j += ',';
          f2 = false;
          json_escape(j, a->c_str());
        }
      }
      j += "],\"reason\":";
      json_escape(j, be->reason() ? be->reason()->c_str() : "");
      j += '}';
    }
  }
  j += "],\"max_frame_bytes\":" + std::to_string(h->max_frame_bytes()) + ",\"connection\":" + std::to_string(h->connection()) + "}";
  c->info_json = j;
  return HEDDLE_OK;
}

std::vector<std::string> split_command(const char *s) {
  std::vector<std::string> out;
  std::string cur;
  for (; *s; s++) {
    if (*s == ' ' || *s == '\t' || *s == '\n') {
      if (!cur.empty()) out.push_back(cur), cur.clear();
    } else {
      cur += *s;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

heddle_status copy_out(Core *c, const uint8_t *data, size_t n, void *buf, size_t cap, size_t *len, bool terminate) {
  if (len) *len = n;
  size_t need = n + (terminate ? 1 : 0);
  if (!buf || cap < need) {
    return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "the buffer holds " + std::to_string(cap) + " bytes, " + std::to_string(need) + " are needed");
  }
  if (n) memcpy(buf, data, n);
  if (terminate) static_cast<char *>(buf)[n] = 0;
  return HEDDLE_OK;
}

struct NetLock {
  std::lock_guard<std::mutex> lock;
  explicit NetLock(Core *c) : lock(c->mu) {}
};

}  // namespace

// ------------------------------------------------------------------ library

extern "C" {

const char *heddle_version(void) { return HEDDLE_LIB_VERSION; }

const char *heddle_status_name(heddle_status status) {
  switch (static_cast<int>(status)) {
#define HEDDLE_STATUS_ENTRY(value, name, doc) \
  case value:                                  \
    return name;
#include "heddle_status_names.inc"
#undef HEDDLE_STATUS_ENTRY
    default:
      return "UNKNOWN";
  }
}

const char *heddle_status_doc(heddle_status status) {
  switch (static_cast<int>(status)) {
#define HEDDLE_STATUS_ENTRY(value, name, doc) \
  case value:                                  \
    return doc;
#include "heddle_status_names.inc"
#undef HEDDLE_STATUS_ENTRY
    default:
      return "not a Heddle status code";
  }
}

const char *heddle_last_error(void) { return tl_error.c_str(); }
heddle_status heddle_last_status(void) { return tl_status; }

// ------------------------------------------------------------------ engines

void heddle_engine_options_init(heddle_engine_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
}

static heddle_status finish_open(std::shared_ptr<Core> core, const heddle_engine_options *o, heddle_engine **out, bool started) {
  Core *c = core.get();
  heddle_status s;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    s = hello(c, default_client_name(o));
  }
  if (s != HEDDLE_OK) {
    std::string msg = c->last_error;
    if (started && s == HEDDLE_E_ENGINE_EXITED) {
      return set_error(nullptr, HEDDLE_E_ENGINE_START_FAILED, "the engine did not answer the handshake (" + msg + "); check the command, HEDDLE_ENGINE or the bundle path");
    }
    tl_error = msg;
    tl_status = s;
    return s;
  }
  heddle_engine *e = new heddle_engine();
  e->core = core;
  *out = e;
  return HEDDLE_OK;
}

heddle_status heddle_engine_start(const char *const *argv, const heddle_engine_options *o, heddle_engine **out) {
  if (!out) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "out is NULL");
  *out = nullptr;
  if (o && o->struct_size < sizeof(size_t)) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "options.struct_size is not set (call heddle_engine_options_init)");
  std::vector<std::string> cmd;
  if (argv && argv[0]) {
    for (const char *const *a = argv; *a; a++) cmd.push_back(*a);
  } else if (const char *env = getenv("HEDDLE_ENGINE"); env && *env) {
    cmd = split_command(env);
  } else {
    std::string runtime = (o && o->runtime && *o->runtime) ? o->runtime : "node";
    std::string bundle = (o && o->engine_bundle && *o->engine_bundle) ? o->engine_bundle : "";
    if (bundle.empty()) {
      const char *b = getenv("HEDDLE_ENGINE_BUNDLE");
      bundle = (b && *b) ? b : HEDDLE_DEFAULT_ENGINE_BUNDLE;
    }
    if (bundle.empty()) return set_error(nullptr, HEDDLE_E_ENGINE_START_FAILED, "no engine: pass a command, set HEDDLE_ENGINE, or give the bundle (options.engine_bundle / HEDDLE_ENGINE_BUNDLE)");
    if (runtime != "node" && runtime != "bun" && runtime != "deno") return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "runtime must be node, bun or deno, got '" + runtime + "'");
    cmd.push_back(runtime);
    if (runtime == "deno") cmd.push_back("run"), cmd.push_back("-A");
    cmd.push_back(bundle);
  }
  if (cmd.empty()) return set_error(nullptr, HEDDLE_E_ENGINE_START_FAILED, "the engine command is empty");

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return set_error(nullptr, HEDDLE_E_ENGINE_START_FAILED, "socketpair failed: " + errno_text(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
  std::vector<char *> args;
  for (auto &s : cmd) args.push_back(const_cast<char *>(s.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    return set_error(nullptr, HEDDLE_E_ENGINE_START_FAILED, "could not run '" + cmd[0] + "': " + errno_text(rc));
  }
  auto core = std::make_shared<Core>();
  core->fd = sv[0];
  core->pid = pid;
  core->timeout_ms = o ? o->timeout_ms : 0;
  fcntl(core->fd, F_SETFL, fcntl(core->fd, F_GETFL) | O_NONBLOCK);
  return finish_open(core, o, out, true);
}

heddle_status heddle_engine_connect(const char *path, const heddle_engine_options *o, heddle_engine **out) {
  if (!out || !path) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "socket path or out is NULL");
  *out = nullptr;
  if (o && o->struct_size < sizeof(size_t)) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "options.struct_size is not set (call heddle_engine_options_init)");
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, std::string("socket path too long: ") + path);
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return set_error(nullptr, HEDDLE_E_CONNECT_FAILED, "socket failed: " + errno_text(errno));
  if (connect(fd, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    return set_error(nullptr, HEDDLE_E_CONNECT_FAILED, std::string("could not connect to ") + path + ": " + errno_text(e));
  }
  auto core = std::make_shared<Core>();
  core->fd = fd;
  core->timeout_ms = o ? o->timeout_ms : 0;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return finish_open(core, o, out, false);
}

void heddle_engine_close(heddle_engine *e) {
  if (!e) return;
  {
    std::lock_guard<std::mutex> lock(e->core->mu);
    Core *c = e->core.get();
    c->shutdown(true);
    if (!c->dead) {
      c->dead = true;
      c->dead_status = HEDDLE_E_CLOSED;
      c->dead_message = "the engine was closed by this client";
    }
  }
  delete e;
}

const char *heddle_engine_last_error(const heddle_engine *e) { return e ? e->core->last_error.c_str() : ""; }

int heddle_engine_alive(const heddle_engine *e) { return e && !e->core->dead; }

int64_t heddle_engine_pid(const heddle_engine *e) { return e ? static_cast<int64_t>(e->core->pid) : -1; }

heddle_status heddle_engine_info(heddle_engine *e, char *buf, size_t cap, size_t *len) {
  if (!e) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL engine");
  NetLock l(e->core.get());
  const std::string &j = e->core->info_json;
  return copy_out(e->core.get(), reinterpret_cast<const uint8_t *>(j.data()), j.size(), buf, cap, len, true);
}

heddle_status heddle_engine_set_backend(heddle_engine *e, const char *name) {
  if (!e || !name) return set_error(e ? e->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL engine or name");
  Core *c = e->core.get();
  NetLock l(c);
  const abi::Response *r = nullptr;
  return call(c, abi::RequestBody_SetBackendRequest, abi::ResponseBody_SetBackendResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateSetBackendRequestDirect(b, name).Union(); }, &r);
}

// ------------------------------------------------------------------ networks

heddle_status heddle_network_create(heddle_engine *e, const char *config_json, uint64_t seed, heddle_network **out) {
  if (!e || !config_json || !out) return set_error(e ? e->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL engine, config or out");
  *out = nullptr;
  Core *c = e->core.get();
  NetLock l(c);
  const abi::Response *r = nullptr;
  heddle_status s = call(c, abi::RequestBody_NetworkCreateRequest, abi::ResponseBody_NetworkCreateResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateNetworkCreateRequestDirect(b, config_json, seed).Union(); }, &r);
  if (s != HEDDLE_OK) return s;
  return make_network(e->core, r->body_as_NetworkCreateResponse()->network(), out);
}

heddle_status heddle_network_load(heddle_engine *e, heddle_format format, const void *data, size_t len, const char *config_json, heddle_network **out) {
  if (!e || (!data && len) || !out) return set_error(e ? e->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL engine, data or out");
  *out = nullptr;
  Core *c = e->core.get();
  NetLock l(c);
  const abi::Response *r = nullptr;
  heddle_status s = call(
      c, abi::RequestBody_NetworkLoadRequest, abi::ResponseBody_NetworkLoadResponse,
      [&](fb::FlatBufferBuilder &b) {
        b.ForceVectorAlignment(len, 1, 16);
        auto d = b.CreateVector(static_cast<const uint8_t *>(data), len);
        auto cfg = config_json ? b.CreateString(config_json) : 0;
        return abi::CreateNetworkLoadRequest(b, static_cast<abi::NetworkFormat>(format), d, cfg).Union();
      },
      &r);
  if (s != HEDDLE_OK) return s;
  return make_network(e->core, r->body_as_NetworkLoadResponse()->network(), out);
}

heddle_status heddle_network_save(heddle_network *n, heddle_format format, void *buf, size_t cap, size_t *len) {
  if (!n) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network");
  Core *c = n->core.get();
  NetLock l(c);
  int kind = format == HEDDLE_FORMAT_JSON ? 0 : 1;
  if (n->cache_kind == kind) {
    heddle_status s = copy_out(c, n->cache.data(), n->cache.size(), buf, cap, len, false);
    if (s == HEDDLE_OK) n->cache_kind = -1, n->cache.clear();
    return s;
  }
  n->cache_kind = -1;
  const abi::Response *r = nullptr;
  heddle_status s = call(c, abi::RequestBody_NetworkSaveRequest, abi::ResponseBody_NetworkSaveResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateNetworkSaveRequest(b, &n->handle, static_cast<abi::NetworkFormat>(format)).Union(); }, &r);
  if (s != HEDDLE_OK) return s;
  const fb::Vector<uint8_t> *d = r->body_as_NetworkSaveResponse()->data();
  s = copy_out(c, d->data(), d->size(), buf, cap, len, false);
  if (s == HEDDLE_E_BUFFER_TOO_SMALL) n->cache.assign(d->data(), d->data() + d->size()), n->cache_kind = kind;
  return s;
}

heddle_status heddle_network_describe(heddle_network *n, char *buf, size_t cap, size_t *len) {
  if (!n) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network");
  Core *c = n->core.get();
  NetLock l(c);
  if (n->cache_kind == 2) {
    heddle_status s = copy_out(c, n->cache.data(), n->cache.size(), buf, cap, len, true);
    if (s == HEDDLE_OK) n->cache_kind = -1, n->cache.clear();
    return s;
  }
  n->cache_kind = -1;
  const abi::Response *r = nullptr;
  heddle_status s = call(c, abi::RequestBody_NetworkDescribeRequest, abi::ResponseBody_NetworkDescribeResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateNetworkDescribeRequest(b, &n->handle).Union(); }, &r);
  if (s != HEDDLE_OK) return s;
  const fb::String *j = r->body_as_NetworkDescribeResponse()->json();
  const uint8_t *p = reinterpret_cast<const uint8_t *>(j->data());
  s = copy_out(c, p, j->size(), buf, cap, len, true);
  if (s == HEDDLE_E_BUFFER_TOO_SMALL) n->cache.assign(p, p + j->size()), n->cache_kind = 2;
  return s;
}

heddle_status heddle_network_free(heddle_network *n) {
  if (!n) return HEDDLE_OK;
  heddle_status s = HEDDLE_OK;
  {
    Core *c = n->core.get();
    NetLock l(c);
    if (!c->dead) {
      const abi::Response *r = nullptr;
      s = call(c, abi::RequestBody_NetworkFreeRequest, abi::ResponseBody_NetworkFreeResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateNetworkFreeRequest(b, &n->handle).Union(); }, &r);
    }
  }
  delete n;
  return s;
}

size_t heddle_network_input_rank(const heddle_network *n) { return n ? n->input_shape.size() : 0; }
const int64_t *heddle_network_input_shape(const heddle_network *n) { return n ? n->input_shape.data() : nullptr; }
size_t heddle_network_output_rank(const heddle_network *n) { return n ? n->output_shape.size() : 0; }
const int64_t *heddle_network_output_shape(const heddle_network *n) { return n ? n->output_shape.data() : nullptr; }
size_t heddle_network_input_size(const heddle_network *n) { return n ? n->input_size : 0; }
size_t heddle_network_output_size(const heddle_network *n) { return n ? n->output_size : 0; }
size_t heddle_network_parameter_count(const heddle_network *n) { return n ? n->parameter_count : 0; }
size_t heddle_network_parameter_tensors(const heddle_network *n) { return n ? n->param_names.size() : 0; }
const char *heddle_network_parameter_name(const heddle_network *n, size_t i) { return n && i < n->param_names.size() ? n->param_names[i].c_str() : nullptr; }
size_t heddle_network_parameter_rank(const heddle_network *n, size_t i) { return n && i < n->param_shapes.size() ? n->param_shapes[i].size() : 0; }
const int64_t *heddle_network_parameter_shape(const heddle_network *n, size_t i) { return n && i < n->param_shapes.size() ? n->param_shapes[i].data() : nullptr; }

static heddle_status batch_sizes(heddle_network *n, size_t batch, size_t *in, size_t *out) {
  if (!mul_ok(batch, n->input_size, in) || !mul_ok(batch, n->output_size, out) || *in > SIZE_MAX / 4) {
    return set_error(n->core.get(), HEDDLE_E_CLIENT_ARGUMENT_INVALID, "batch " + std::to_string(batch) + " is too large");
  }
  return HEDDLE_OK;
}

static std::vector<int64_t> batch_shape(const std::vector<int64_t> &per, size_t batch) {
  std::vector<int64_t> s;
  s.reserve(per.size() + 1);
  s.push_back(static_cast<int64_t>(batch));
  s.insert(s.end(), per.begin(), per.end());
  return s;
}

heddle_status heddle_network_forward(heddle_network *n, const float *input, size_t batch, float *output, size_t output_cap) {
  if (!n || (!input && batch) || (!output && batch)) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network, input or output");
  Core *c = n->core.get();
  size_t in, out;
  heddle_status s = batch_sizes(n, batch, &in, &out);
  if (s != HEDDLE_OK) return s;
  if (output_cap < out) return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "output holds " + std::to_string(output_cap) + " floats, the result has " + std::to_string(out));
  NetLock l(c);
  n->cache_kind = -1;
  std::vector<int64_t> shape = batch_shape(n->input_shape, batch);
  const abi::Response *r = nullptr;
  s = call(
      c, abi::RequestBody_ForwardRequest, abi::ResponseBody_ForwardResponse,
      [&](fb::FlatBufferBuilder &b) {
        auto t = add_tensor(b, shape.data(), shape.size(), abi::DType_F32, input, in * sizeof(float));
        return abi::CreateForwardRequest(b, &n->handle, t).Union();
      },
      &r);
  if (s != HEDDLE_OK) return s;
  return copy_f32(c, r->body_as_ForwardResponse()->output(), out, output, "forward output");
}

static heddle_status tensor_arg(Core *c, const heddle_tensor *t, const char *what) {
  if (!t || (!t->shape && t->rank) || (!t->data && t->nbytes)) return set_error(c, HEDDLE_E_CLIENT_ARGUMENT_INVALID, std::string(what) + " is NULL or has NULL shape/data");
  return HEDDLE_OK;
}

heddle_status heddle_network_forward_tensor(heddle_network *n, const heddle_tensor *input, float *output, size_t output_cap, size_t *count) {
  if (!n) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network");
  Core *c = n->core.get();
  heddle_status s = tensor_arg(c, input, "input");
  if (s != HEDDLE_OK) return s;
  NetLock l(c);
  n->cache_kind = -1;
  const abi::Response *r = nullptr;
  s = call(
      c, abi::RequestBody_ForwardRequest, abi::ResponseBody_ForwardResponse,
      [&](fb::FlatBufferBuilder &b) {
        auto t = add_tensor(b, input->shape, input->rank, static_cast<abi::DType>(input->dtype), input->data, input->nbytes);
        return abi::CreateForwardRequest(b, &n->handle, t).Union();
      },
      &r);
  if (s != HEDDLE_OK) return s;
  const abi::Tensor *t = r->body_as_ForwardResponse()->output();
  size_t elems = t->data() ? t->data()->size() / sizeof(float) : 0;
  if (count) *count = elems;
  if (!output || output_cap < elems) return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "output holds " + std::to_string(output_cap) + " floats, the result has " + std::to_string(elems));
  return copy_f32(c, t, elems, output, "forward output");
}

heddle_status heddle_network_forward_pipelined(heddle_network *n, const float *inputs, size_t batch, size_t count, float *outputs, size_t outputs_cap) {
  if (!n || ((!inputs || !outputs) && batch && count)) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network, inputs or outputs");
  Core *c = n->core.get();
  size_t in, out, total;
  heddle_status s = batch_sizes(n, batch, &in, &out);
  if (s != HEDDLE_OK) return s;
  if (!mul_ok(out, count, &total)) return set_error(c, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "count too large");
  if (outputs_cap < total) return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "outputs hold " + std::to_string(outputs_cap) + " floats, the results have " + std::to_string(total));
  NetLock l(c);
  s = check_usable(c);
  if (s != HEDDLE_OK) return s;
  n->cache_kind = -1;
  std::vector<int64_t> shape = batch_shape(n->input_shape, batch);
  const uint64_t first_id = c->next_id;
  c->next_id += count;
  size_t sent = 0, got = 0, off = 0;
  bool building = false;
  heddle_status first_error = HEDDLE_OK;
  std::string first_message;
  int64_t deadline = deadline_of(c);
  fb::FlatBufferBuilder &b = c->fbb;
  while (got < count) {
    if (sent < count && !building) {
      b.Clear();
      auto t = add_tensor(b, shape.data(), shape.size(), abi::DType_F32, inputs + sent * in, in * sizeof(float));
      auto body = abi::CreateForwardRequest(b, &n->handle, t).Union();
      abi::FinishSizePrefixedRequestBuffer(b, abi::CreateRequest(b, first_id + sent, abi::RequestBody_ForwardRequest, body));
      building = true;
      off = 0;
    }
    // Send what the socket takes without blocking.
    while (building) {
      ssize_t k = ::send(c->fd, b.GetBufferPointer() + off, b.GetSize() - off, MSG_NOSIGNAL);
      if (k > 0) {
        off += static_cast<size_t>(k);
        if (off == b.GetSize()) {
          building = false;
          sent++;
          if (sent < count) {
            b.Clear();
            auto t = add_tensor(b, shape.data(), shape.size(), abi::DType_F32, inputs + sent * in, in * sizeof(float));
            auto body = abi::CreateForwardRequest(b, &n->handle, t).Union();
            abi::FinishSizePrefixedRequestBuffer(b, abi::CreateRequest(b, first_id + sent, abi::RequestBody_ForwardRequest, body));
            building = true;
            off = 0;
          }
        }
        continue;
      }
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return engine_gone(c);
    }
    // Take every complete response.
    s = fill(c, deadline, false);
    if (s != HEDDLE_OK) return s;
    for (;;) {
      bool have;
      s = take_frame(c, &have);
      if (s != HEDDLE_OK) return s;
      if (!have) break;
      const abi::Response *r = frame_response(c);
      uint64_t want = first_id + got;
      if (r->call_id() != want && r->call_id() != 0) {
        return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "the engine answered call " + std::to_string(r->call_id()) + ", expected " + std::to_string(want));
      }
      if (r->body_type() == abi::ResponseBody_Error) {
        if (first_error == HEDDLE_OK) {
          first_error = engine_error(c, r->body_as_Error());
          first_message = c->last_error;
        }
      } else if (r->body_type() == abi::ResponseBody_ForwardResponse) {
        s = copy_f32(c, r->body_as_ForwardResponse()->output(), out, outputs + got * out, "forward output");
        if (s != HEDDLE_OK) return s;
      } else {
        return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "unexpected response type in a pipelined forward");
      }
      got++;
    }
    if (got < count) {
      s = wait_fd(c, static_cast<short>(POLLIN | (building ? POLLOUT : 0)), deadline);
      if (s != HEDDLE_OK) return s;
    }
  }
  if (first_error != HEDDLE_OK) {
    tl_status = first_error;
    tl_error = first_message;
    c->last_error = first_message;
  }
  return first_error;
}

static heddle_status grad_common(heddle_network *n, const float *input, size_t batch, const float *grad_output, const heddle_tensor *target, const char *loss,
                                 float *loss_value, float *input_grad, size_t input_grad_cap, float *weight_grads, size_t weight_grads_cap) {
  Core *c = n->core.get();
  size_t in, out;
  heddle_status s = batch_sizes(n, batch, &in, &out);
  if (s != HEDDLE_OK) return s;
  if (!input_grad || input_grad_cap < in) return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "input_grad holds " + std::to_string(input_grad_cap) + " floats, " + std::to_string(in) + " are needed");
  if (weight_grads && weight_grads_cap < n->parameter_count) {
    return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "weight_grads holds " + std::to_string(weight_grads_cap) + " floats, the network has " + std::to_string(n->parameter_count) + " parameters");
  }
  NetLock l(c);
  n->cache_kind = -1;
  std::vector<int64_t> xs = batch_shape(n->input_shape, batch);
  std::vector<int64_t> ys = batch_shape(n->output_shape, batch);
  const abi::Response *r = nullptr;
  s = call(
      c, abi::RequestBody_GradRequest, abi::ResponseBody_GradResponse,
      [&](fb::FlatBufferBuilder &b) {
        auto x = add_tensor(b, xs.data(), xs.size(), abi::DType_F32, input, in * sizeof(float));
        fb::Offset<abi::Tensor> gy = 0, tg = 0;
        if (grad_output) gy = add_tensor(b, ys.data(), ys.size(), abi::DType_F32, grad_output, out * sizeof(float));
        if (target) tg = add_tensor(b, target->shape, target->rank, static_cast<abi::DType>(target->dtype), target->data, target->nbytes);
        auto l2 = loss ? b.CreateString(loss) : 0;
        return abi::CreateGradRequest(b, &n->handle, x, gy, tg, l2, weight_grads != nullptr).Union();
      },
      &r);
  if (s != HEDDLE_OK) return s;
  const abi::GradResponse *g = r->body_as_GradResponse();
  s = copy_f32(c, g->input_grad(), in, input_grad, "input gradient");
  if (s != HEDDLE_OK) return s;
  if (loss_value) *loss_value = g->loss() ? *g->loss() : 0.0f;
  if (weight_grads) {
    size_t o = 0;
    const auto *ws = g->weight_grads();
    if (!ws || ws->size() != n->param_names.size()) return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "the engine sent the wrong number of weight gradients");
    for (size_t i = 0; i < ws->size(); i++) {
      const abi::Tensor *t = ws->Get(static_cast<fb::uoffset_t>(i))->tensor();
      size_t k = t->data() ? t->data()->size() / sizeof(float) : 0;
      if (o + k > n->parameter_count) return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "the engine sent more weight gradients than parameters");
      s = copy_f32(c, t, k, weight_grads + o, "weight gradient");
      if (s != HEDDLE_OK) return s;
      o += k;
    }
  }
  return HEDDLE_OK;
}

heddle_status heddle_network_grad(heddle_network *n, const float *input, size_t batch, const float *grad_output, float *input_grad, size_t input_grad_cap, float *weight_grads,
                                  size_t weight_grads_cap) {
  if (!n || (!input && batch) || (!grad_output && batch)) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network, input or grad_output");
  return grad_common(n, input, batch, grad_output, nullptr, nullptr, nullptr, input_grad, input_grad_cap, weight_grads, weight_grads_cap);
}

heddle_status heddle_network_grad_loss(heddle_network *n, const float *input, size_t batch, const heddle_tensor *target, const char *loss, float *loss_value, float *input_grad,
                                       size_t input_grad_cap, float *weight_grads, size_t weight_grads_cap) {
  if (!n || (!input && batch) || !loss) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network, input or loss");
  heddle_status s = tensor_arg(n->core.get(), target, "target");
  if (s != HEDDLE_OK) return s;
  return grad_common(n, input, batch, nullptr, target, loss, loss_value, input_grad, input_grad_cap, weight_grads, weight_grads_cap);
}

void heddle_train_options_init(heddle_train_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->epochs = 1;
  o->batch_size = 1;
  o->loss = "mse";
  o->progress_every = 1;
}

namespace {
struct ProgressCtx {
  heddle_progress_fn fn;
  void *user;
};
void on_progress(const abi::TrainProgress *p, void *u) {
  auto *ctx = static_cast<ProgressCtx *>(u);
  if (!ctx->fn) return;
  heddle_train_progress tp;
  tp.epoch = p->epoch();
  tp.step = p->step();
  tp.steps_per_epoch = p->steps_per_epoch();
  tp.total_steps = p->total_steps();
  tp.loss = p->loss();
  tp.lr = p->lr();
  ctx->fn(&tp, ctx->user);
}
}  // namespace

heddle_status heddle_network_train(heddle_network *n, const heddle_tensor *inputs, const heddle_tensor *targets, const heddle_train_options *o, heddle_progress_fn progress, void *user,
                                   heddle_train_result *result) {
  if (!n || !o) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network or options");
  Core *c = n->core.get();
  if (o->struct_size < sizeof(size_t)) return set_error(c, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "options.struct_size is not set (call heddle_train_options_init)");
  heddle_status s = tensor_arg(c, inputs, "inputs");
  if (s == HEDDLE_OK) s = tensor_arg(c, targets, "targets");
  if (s != HEDDLE_OK) return s;
  if (!o->loss) return set_error(c, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "options.loss is NULL");
  if (o->optimizer && o->optimizer->core != n->core) return set_error(c, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "the optimizer belongs to another engine");
  NetLock l(c);
  n->cache_kind = -1;
  ProgressCtx ctx{progress, user};
  const abi::Response *r = nullptr;
  s = call(
      c, abi::RequestBody_TrainRequest, abi::ResponseBody_TrainResponse,
      [&](fb::FlatBufferBuilder &b) {
        auto x = add_tensor(b, inputs->shape, inputs->rank, static_cast<abi::DType>(inputs->dtype), inputs->data, inputs->nbytes);
        auto y = add_tensor(b, targets->shape, targets->rank, static_cast<abi::DType>(targets->dtype), targets->data, targets->nbytes);
        auto loss = b.CreateString(o->loss);
        auto opt = o->optimizer_json ? b.CreateString(o->optimizer_json) : 0;
        auto sched = o->schedule_json ? b.CreateString(o->schedule_json) : 0;
        fb::Optional<double> clip = fb::nullopt;
        if (o->clip_norm > 0) clip = o->clip_norm;
        return abi::CreateTrainRequest(b, &n->handle, x, y, o->epochs, o->batch_size, loss, opt, o->optimizer ? &o->optimizer->handle : nullptr, sched, clip, o->shuffle != 0, o->seed,
                                       o->progress_every)
            .Union();
      },
      &r, on_progress, &ctx);
  if (s != HEDDLE_OK) return s;
  const abi::TrainResponse *t = r->body_as_TrainResponse();
  if (result) {
    result->final_loss = t->final_loss();
    result->steps = t->steps();
    result->epochs = t->epoch_losses() ? t->epoch_losses()->size() : 0;
  }
  if (o->epoch_losses && t->epoch_losses()) {
    size_t k = t->epoch_losses()->size();
    if (k > o->epoch_losses_cap) k = o->epoch_losses_cap;
    for (size_t i = 0; i < k; i++) o->epoch_losses[i] = t->epoch_losses()->Get(static_cast<fb::uoffset_t>(i));
  }
  return HEDDLE_OK;
}

heddle_status heddle_network_get_weights(heddle_network *n, float *weights, size_t cap) {
  if (!n || (!weights && cap)) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network or weights");
  Core *c = n->core.get();
  if (cap < n->parameter_count) return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "weights holds " + std::to_string(cap) + " floats, the network has " + std::to_string(n->parameter_count) + " parameters");
  NetLock l(c);
  const abi::Response *r = nullptr;
  heddle_status s = call(c, abi::RequestBody_NetworkGetWeightsRequest, abi::ResponseBody_NetworkGetWeightsResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateNetworkGetWeightsRequest(b, &n->handle).Union(); }, &r);
  if (s != HEDDLE_OK) return s;
  size_t o = 0;
  for (auto w : *r->body_as_NetworkGetWeightsResponse()->weights()) {
    size_t k = w->tensor()->data() ? w->tensor()->data()->size() / sizeof(float) : 0;
    if (o + k > n->parameter_count) return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "the engine sent more weights than parameters");
    s = copy_f32(c, w->tensor(), k, weights + o, "weight");
    if (s != HEDDLE_OK) return s;
    o += k;
  }
  return HEDDLE_OK;
}

heddle_status heddle_network_set_weights(heddle_network *n, const char *const *names, const heddle_tensor *tensors, size_t count, int complete) {
  if (!n || ((!names || !tensors) && count)) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network, names or tensors");
  Core *c = n->core.get();
  for (size_t i = 0; i < count; i++) {
    if (!names[i]) return set_error(c, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "names[" + std::to_string(i) + "] is NULL");
    heddle_status s = tensor_arg(c, &tensors[i], "tensors[i]");
    if (s != HEDDLE_OK) return s;
  }
  NetLock l(c);
  n->cache_kind = -1;
  const abi::Response *r = nullptr;
  return call(
      c, abi::RequestBody_NetworkSetWeightsRequest, abi::ResponseBody_NetworkSetWeightsResponse,
      [&](fb::FlatBufferBuilder &b) {
        std::vector<fb::Offset<abi::NamedTensor>> named;
        named.reserve(count);
        for (size_t i = 0; i < count; i++) {
          const heddle_tensor &t = tensors[i];
          auto data = add_tensor(b, t.shape, t.rank, static_cast<abi::DType>(t.dtype), t.data, t.nbytes);
          named.push_back(abi::CreateNamedTensor(b, b.CreateString(names[i]), data));
        }
        return abi::CreateNetworkSetWeightsRequest(b, &n->handle, b.CreateVector(named), complete != 0).Union();
      },
      &r);
}

heddle_status heddle_network_loss(heddle_network *n, const float *input, size_t batch, const heddle_tensor *target, const char *loss, float *loss_value, float *output_grad,
                                  size_t output_grad_cap) {
  if (!n || (!input && batch) || !loss) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network, input or loss");
  Core *c = n->core.get();
  heddle_status s = tensor_arg(c, target, "target");
  if (s != HEDDLE_OK) return s;
  size_t in, out;
  s = batch_sizes(n, batch, &in, &out);
  if (s != HEDDLE_OK) return s;
  if (output_grad && output_grad_cap < out) return set_error(c, HEDDLE_E_BUFFER_TOO_SMALL, "output_grad holds " + std::to_string(output_grad_cap) + " floats, " + std::to_string(out) + " are needed");
  NetLock l(c);
  std::vector<int64_t> xs = batch_shape(n->input_shape, batch);
  const abi::Response *r = nullptr;
  s = call(
      c, abi::RequestBody_LossRequest, abi::ResponseBody_LossResponse,
      [&](fb::FlatBufferBuilder &b) {
        auto x = add_tensor(b, xs.data(), xs.size(), abi::DType_F32, input, in * sizeof(float));
        auto t = add_tensor(b, target->shape, target->rank, static_cast<abi::DType>(target->dtype), target->data, target->nbytes);
        return abi::CreateLossRequest(b, &n->handle, x, t, b.CreateString(loss)).Union();
      },
      &r);
  if (s != HEDDLE_OK) return s;
  const abi::LossResponse *lr = r->body_as_LossResponse();
  if (loss_value) *loss_value = lr->loss();
  return output_grad ? copy_f32(c, lr->output_grad(), out, output_grad, "output gradient") : HEDDLE_OK;
}

heddle_status heddle_network_morph_dtype(heddle_network *n, heddle_dtype dtype) {
  if (!n) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network");
  Core *c = n->core.get();
  NetLock l(c);
  const abi::Response *r = nullptr;
  return call(c, abi::RequestBody_MorphDtypeRequest, abi::ResponseBody_MorphDtypeResponse, [&](fb::FlatBufferBuilder &b) {
    b.ForceDefaults(true);
    auto req = abi::CreateMorphDtypeRequest(b, &n->handle, static_cast<abi::DType>(dtype));
    b.ForceDefaults(false);
    return req.Union();
  }, &r);
}

// ------------------------------------------------------------------ optimizers

heddle_status heddle_optimizer_create(heddle_network *n, const char *spec_json, heddle_optimizer **out) {
  if (!n || !spec_json || !out) return set_error(n ? n->core.get() : nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL network, spec or out");
  *out = nullptr;
  Core *c = n->core.get();
  NetLock l(c);
  const abi::Response *r = nullptr;
  heddle_status s = call(c, abi::RequestBody_OptimizerCreateRequest, abi::ResponseBody_OptimizerCreateResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateOptimizerCreateRequestDirect(b, &n->handle, spec_json).Union(); }, &r);
  if (s != HEDDLE_OK) return s;
  heddle_optimizer *opt = new heddle_optimizer();
  opt->core = n->core;
  opt->handle = *r->body_as_OptimizerCreateResponse()->optimizer();
  *out = opt;
  return HEDDLE_OK;
}

heddle_status heddle_optimizer_step(heddle_optimizer *opt, double lr, uint64_t *steps) {
  if (!opt) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL optimizer");
  Core *c = opt->core.get();
  NetLock l(c);
  const abi::Response *r = nullptr;
  fb::Optional<double> l2 = fb::nullopt;
  if (!std::isnan(lr) && lr >= 0) l2 = lr;
  heddle_status s = call(c, abi::RequestBody_OptimizerStepRequest, abi::ResponseBody_OptimizerStepResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateOptimizerStepRequest(b, &opt->handle, l2).Union(); }, &r);
  if (s != HEDDLE_OK) return s;
  if (steps) *steps = r->body_as_OptimizerStepResponse()->steps();
  return HEDDLE_OK;
}

heddle_status heddle_optimizer_state(heddle_optimizer *opt, uint64_t *step, size_t *tensors) {
  if (!opt) return set_error(nullptr, HEDDLE_E_CLIENT_ARGUMENT_INVALID, "NULL optimizer");
  Core *c = opt->core.get();
  NetLock l(c);
  const abi::Response *r = nullptr;
  heddle_status s = call(c, abi::RequestBody_OptimizerStateRequest, abi::ResponseBody_OptimizerStateResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateOptimizerStateRequest(b, &opt->handle).Union(); }, &r);
  if (s != HEDDLE_OK) return s;
  const abi::OptimizerStateResponse *st = r->body_as_OptimizerStateResponse();
  opt->state_names.clear();
  opt->state_shapes.clear();
  opt->state_data.clear();
  for (auto t : *st->tensors()) {
    const abi::Tensor *x = t->tensor();
    if (x->dtype() != abi::DType_F32 || !x->data()) return kill_connection(c, HEDDLE_E_PROTOCOL_ERROR, "optimizer state tensor is not f32");
    std::vector<float> d(x->data()->size() / sizeof(float));
    if (!d.empty()) memcpy(d.data(), x->data()->data(), d.size() * sizeof(float));
    opt->state_names.push_back(t->name()->str());
    opt->state_shapes.emplace_back(x->shape() ? std::vector<int64_t>(x->shape()->begin(), x->shape()->end()) : std::vector<int64_t>());
    opt->state_data.push_back(std::move(d));
  }
  if (step) *step = st->step();
  if (tensors) *tensors = opt->state_names.size();
  return HEDDLE_OK;
}

const char *heddle_optimizer_state_name(const heddle_optimizer *opt, size_t i) { return opt && i < opt->state_names.size() ? opt->state_names[i].c_str() : nullptr; }

const int64_t *heddle_optimizer_state_shape(const heddle_optimizer *opt, size_t i, size_t *rank) {
  if (!opt || i >= opt->state_shapes.size()) {
    if (rank) *rank = 0;
    return nullptr;
  }
  if (rank) *rank = opt->state_shapes[i].size();
  return opt->state_shapes[i].data();
}

const float *heddle_optimizer_state_data(const heddle_optimizer *opt, size_t i, size_t *count) {
  if (!opt || i >= opt->state_data.size()) {
    if (count) *count = 0;
    return nullptr;
  }
  if (count) *count = opt->state_data[i].size();
  return opt->state_data[i].data();
}

heddle_status heddle_optimizer_free(heddle_optimizer *opt) {
  if (!opt) return HEDDLE_OK;
  heddle_status s = HEDDLE_OK;
  {
    Core *c = opt->core.get();
    NetLock l(c);
    if (!c->dead) {
      const abi::Response *r = nullptr;
      s = call(c, abi::RequestBody_OptimizerFreeRequest, abi::ResponseBody_OptimizerFreeResponse, [&](fb::FlatBufferBuilder &b) { return abi::CreateOptimizerFreeRequest(b, &opt->handle).Union(); }, &r);
      // Freed with its network already: the engine object is gone, which is what free wants.
      if (s == HEDDLE_E_HANDLE_DOUBLE_FREE || s == HEDDLE_E_HANDLE_STALE) s = HEDDLE_OK;
    }
  }
  delete opt;
  return s;
}

}  // extern "C"
