// rnnx-rpc-server: the board side of TVM RPC, for boards without Python.
//
//   bin/rnnx-rpc-server [--host 127.0.0.1] [--port 9090] [--tracker HOST:PORT] [--key KEY]
//
// TVM's runtime library runs the RPC protocol on a connected socket (`rpc.ServerLoop`) and serves
// uploads, downloads and removals in the session's work directory; this program adds what TVM's Python
// server (tvm/rpc/server.py) adds around it, speaking the same protocol: the listening socket, the
// magic-and-key handshake, `tvm.rpc.server.workpath` and `load_module`, one work directory per
// session, and registration with a tracker (tvm/rpc/tracker.py), which hands each client a one-time
// match key that the handshake checks. It also registers `rnnx.board.memory`, the board's memory for
// the profile client. Sessions are served one at a time, each in a forked child, so that a session's
// modules and memory do not outlive it. --port 0 takes a free port; the first line on stdout says which.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include "common.h"

namespace ffi = tvm::ffi;

namespace {

// tvm/rpc/base.py
constexpr int32_t kRPCMagic = 0xFF271, kTrackerMagic = 0x2F271;
constexpr int32_t kCodeSuccess = kRPCMagic, kCodeMismatch = kRPCMagic + 2;
enum TrackerCode { kPut = 3, kUpdateInfo = 5, kGetPendingMatchkeys = 7 };
constexpr int kPingMs = 2000, kUnusedKeyMs = 6000;  // the Python server's ping period and key expiry

std::string work_dir;  // the current session's, in the child that serves it

struct Fail : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void SendAll(int fd, const void* data, size_t n) {
  for (const char* p = static_cast<const char*>(data); n > 0;) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) throw Fail("connection lost while sending");
    p += k, n -= k;
  }
}

void RecvAll(int fd, void* data, size_t n) {
  for (char* p = static_cast<char*>(data); n > 0;) {
    ssize_t k = recv(fd, p, n, 0);
    if (k <= 0) throw Fail("connection lost while receiving");
    p += k, n -= k;
  }
}

void SendInt(int fd, int32_t v) { SendAll(fd, &v, 4); }  // little-endian, as every target here

int32_t RecvInt(int fd) {
  int32_t v;
  RecvAll(fd, &v, 4);
  return v;
}

void SendString(int fd, const std::string& s) {
  SendInt(fd, static_cast<int32_t>(s.size()));
  SendAll(fd, s.data(), s.size());
}

std::string RecvString(int fd) {
  int32_t n = RecvInt(fd);
  if (n < 0 || n > (1 << 20)) throw Fail("bad message length");
  std::string s(n, '\0');
  RecvAll(fd, s.data(), n);
  return s;
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }  // keys and hosts need no escaping

// The tracker's protocol: [length][json] both ways.
std::string Ask(int tracker, const std::string& json) {
  SendString(tracker, json);
  return RecvString(tracker);
}

sockaddr_storage Resolve(const std::string& host, int port) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    throw Fail("cannot resolve " + host);
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  return address;
}

int Socket(const sockaddr_storage& address) {
  int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Fail(std::string("socket: ") + std::strerror(errno));
  return fd;
}

int Listen(const std::string& host, int* port) {
  sockaddr_storage address = Resolve(host, *port);
  int fd = Socket(address), on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(fd, 8) != 0)
    throw Fail("cannot listen on " + host + ":" + std::to_string(*port) + ": " + std::strerror(errno));
  socklen_t size = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  *port = ntohs(address.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  return fd;
}

// A connection to the tracker at HOST:PORT that has been told who we are.
int ConnectTracker(const std::string& tracker, const std::string& key, int port) {
  size_t colon = tracker.rfind(':');
  if (colon == std::string::npos) throw Fail("--tracker must be HOST:PORT, got " + tracker);
  sockaddr_storage address = Resolve(tracker.substr(0, colon), std::atoi(tracker.c_str() + colon + 1));
  int fd = Socket(address);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    throw Fail("cannot reach the RPC tracker at " + tracker + ": " + std::strerror(errno));
  }
  SendInt(fd, kTrackerMagic);
  if (RecvInt(fd) != kTrackerMagic) throw Fail(tracker + " is not an RPC tracker");
  std::string info = "{\"key\": " + Quote("server:" + key) + ", \"addr\": [null, " + std::to_string(port) + "]}";
  if (Ask(fd, "[" + std::to_string(kUpdateInfo) + ", " + info + "]") != "0") throw Fail("the tracker refused our info");
  return fd;
}

// Offer this server to the tracker's clients under a fresh one-time match key; returns the key.
std::string Offer(int tracker, const std::string& key, int port, std::mt19937_64& random) {
  std::string matchkey = key + ":" + std::to_string(random());
  std::string put = "[" + std::to_string(kPut) + ", " + Quote(key) + ", [" + std::to_string(port) + ", " +
                    Quote(matchkey) + "], null]";
  if (Ask(tracker, put) != "0") throw Fail("the tracker refused our offer");
  return matchkey;
}

void RegisterGlobals() {
  ffi::Function::SetGlobal("tvm.rpc.server.workpath", ffi::Function::FromTyped([](std::string name) {
    return work_dir + "/" + name;
  }), true);
  ffi::Function::SetGlobal("tvm.rpc.server.load_module", ffi::Function::FromTyped([](std::string name) {
    return ffi::Module::LoadFromFile(work_dir + "/" + name);
  }), true);
  // the session's resident memory now and at its peak, in kB
  ffi::Function::SetGlobal("rnnx.board.memory", ffi::Function::FromTyped([]() -> std::string {
    return "{\"VmRSS\": " + std::to_string(StatusKb("VmRSS")) + ", \"VmHWM\": " + std::to_string(StatusKb("VmHWM")) + "}";
  }), true);
  // the machine, as `uname -m` says it: the client checks it against the artifact's target first
  ffi::Function::SetGlobal("rnnx.board.arch", ffi::Function::FromTyped([]() -> std::string {
    struct utsname name;
    return uname(&name) == 0 ? std::string(name.machine) : std::string("unknown");
  }), true);
}

// Serve one client in a child with its own work directory, then wait for it (or for the session's
// `-timeout=` that the client asked for, as the Python server does).
void Serve(int conn, double timeout_s, int listen_fd, int tracker) {
  pid_t child = fork();
  if (child < 0) throw Fail(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    close(listen_fd);
    if (tracker >= 0) close(tracker);
    char dir[] = "/tmp/rnnx-rpc.XXXXXX";
    if (!mkdtemp(dir)) _exit(1);
    work_dir = dir;
    if (chdir(dir) != 0) _exit(1);
    ffi::Function::GetGlobalRequired("rpc.ServerLoop")(conn);
    nftw(dir, [](const char* path, const struct stat*, int, FTW*) { return remove(path); }, 8, FTW_DEPTH | FTW_PHYS);
    _exit(0);
  }
  close(conn);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (waitpid(child, nullptr, timeout_s > 0 ? WNOHANG : 0) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "rnnx-rpc-server: session over its %gs timeout, killed\n", timeout_s);
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      return;
    }
    usleep(50000);
  }
}

// Accept the next client whose handshake carries `matchkey`; answers a wrong key with a mismatch.
// Returns -1 when nobody came within `wait_ms` (-1: forever).
int Accept(int listen_fd, const std::string& matchkey, const std::string& key, int wait_ms, double* timeout_s) {
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, wait_ms) <= 0) return -1;
  int conn = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (conn < 0) return -1;
  try {
    if (RecvInt(conn) != kRPCMagic) throw Fail("not an RPC client");
    std::istringstream words(RecvString(conn));  // "client:KEY [-timeout=S]"
    std::string header, option;
    words >> header;
    if (header != "client:" + matchkey) {
      SendInt(conn, kCodeMismatch);
      throw Fail("mismatched key " + header);
    }
    *timeout_s = 0;
    while (words >> option)
      if (option.rfind("-timeout=", 0) == 0) *timeout_s = std::atof(option.c_str() + 9);
    SendInt(conn, kCodeSuccess);
    SendString(conn, "server:" + key);
    int on = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return conn;
  } catch (const Fail& e) {
    std::fprintf(stderr, "rnnx-rpc-server: refused a connection: %s\n", e.what());
    close(conn);
    return -1;
  }
}

int Run(int argc, char** argv) {
  std::string host = "127.0.0.1", tracker_addr, key;
  int port = 9090;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--host") host = argv[i + 1];
    else if (a == "--port") port = std::atoi(argv[i + 1]);
    else if (a == "--tracker") tracker_addr = argv[i + 1];
    else if (a == "--key") key = argv[i + 1];
    else throw Fail("unknown option " + a);
  }
  if (argc % 2 == 0) throw Fail("usage: rnnx-rpc-server [--host H] [--port P] [--tracker HOST:PORT] [--key KEY]");
  if (!tracker_addr.empty() && key.empty()) throw Fail("--tracker needs --key, the key clients request");
  RegisterGlobals();
  int listen_fd = Listen(host, &port);
  int tracker = tracker_addr.empty() ? -1 : ConnectTracker(tracker_addr, key, port);
  std::printf("rnnx-rpc-server listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  std::mt19937_64 random(std::random_device{}());
  while (true) {
    try {
      if (tracker_addr.empty()) {
        double timeout_s;
        int conn = Accept(listen_fd, key, key, -1, &timeout_s);
        if (conn >= 0) Serve(conn, timeout_s, listen_fd, tracker);
        continue;
      }
      if (tracker < 0) tracker = ConnectTracker(tracker_addr, key, port);
      // A client that took our key from the tracker but never came would hold it forever: renew it then.
      std::string matchkey = Offer(tracker, key, port, random);
      int conn = -1, unused_ms = 0;
      double timeout_s;
      while ((conn = Accept(listen_fd, matchkey, key, kPingMs, &timeout_s)) < 0) {
        bool pending = Ask(tracker, "[" + std::to_string(kGetPendingMatchkeys) + "]").find(Quote(matchkey)) != std::string::npos;
        unused_ms = pending ? 0 : unused_ms + kPingMs;
        if (unused_ms > kUnusedKeyMs) break;
      }
      if (conn >= 0) Serve(conn, timeout_s, listen_fd, tracker);
    } catch (const Fail& e) {  // the tracker went away: register again once it is back
      std::fprintf(stderr, "rnnx-rpc-server: %s; retrying\n", e.what());
      if (tracker >= 0) close(tracker);
      tracker = -1;
      sleep(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) { return MainOf("rnnx-rpc-server", Run, argc, argv); }
