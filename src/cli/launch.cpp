// train --nproc N: the local launcher of data-parallel workers (what torchrun does for PyTorch, for one
// machine): N copies of this command line, one per rank, joined through a loopback rendezvous.
#include <arpa/inet.h>
#include <fmt/core.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "cli/common.hpp"
#include "scorediff/core/error.hpp"
#include "scorediff/core/interrupt.hpp"

namespace scorediff::cli {
namespace {

std::vector<std::string> g_command_line;
volatile sig_atomic_t g_signal = 0;

void remember_signal(int sig) { g_signal = sig; }

bool port_is_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// A TCP port on 127.0.0.1 that nothing listens on now, below Linux's ephemeral range (32768 and up by
// default): the kernel's own choices (Gloo's connections, other tests' rendezvous) never take it
// between this check and rank 0's bind.
int free_loopback_port() {
  std::mt19937 pick(static_cast<uint32_t>(::getpid()) ^
                    static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> port(20000, 32000);
  for (int tries = 0; tries < 200; ++tries)
    if (const int p = port(pick); port_is_free(p)) return p;
  fail("train --nproc: no free port in 20000-32000 on 127.0.0.1; give one with --world-size/--rank/--master-port");
}

// The command line without --nproc N (or --nproc=N).
std::vector<std::string> without_nproc(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

std::string describe_status(int raw) {
  if (WIFSIGNALED(raw)) return fmt::format("was killed by signal {} ({})", WTERMSIG(raw), strsignal(WTERMSIG(raw)));
  return fmt::format("exited with status {}", WEXITSTATUS(raw));
}

}  // namespace

void remember_command_line(int argc, char** argv) { g_command_line.assign(argv, argv + argc); }
const std::vector<std::string>& command_line() { return g_command_line; }

void launch_local_workers(int nproc, std::chrono::milliseconds grace, bool quiet) {
  using Clock = std::chrono::steady_clock;
  const int port = free_loopback_port();
  const std::vector<std::string> base = without_nproc(g_command_line);
  const pid_t launcher = ::getpid();
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<pid_t> pids(static_cast<size_t>(nproc), -1);
  // Before the first fork, so that a Ctrl-C from now on is forwarded (exec resets the handler to the
  // default in the workers, which then install their own).
  struct sigaction forward {}, old_int {}, old_term {};
  forward.sa_handler = remember_signal;
  sigemptyset(&forward.sa_mask);
  g_signal = 0;
  ::sigaction(SIGINT, &forward, &old_int);
  ::sigaction(SIGTERM, &forward, &old_term);
  auto restore_signals = [&] {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  };
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> args = base;
    for (const std::string& a : {std::string("--rank"), std::to_string(rank), std::string("--world-size"),
                                 std::to_string(nproc), std::string("--master-addr"), std::string("127.0.0.1"),
                                 std::string("--master-port"), std::to_string(port)})
      args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int error = errno;
      for (pid_t started : pids)
        if (started > 0 && ::kill(started, SIGKILL) == 0) ::waitpid(started, nullptr, 0);
      restore_signals();
      fail("train --nproc: cannot start worker {}: {}", rank, std::strerror(error));
    }
    if (pid == 0) {
      // Own process group: Ctrl-C reaches the launcher only, which forwards it once to every worker.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the launcher killed outright: the workers stop too
      if (::getppid() != launcher) ::_exit(1);
      ::execv("/proc/self/exe", argv.data());
      static const char message[] = "scorediff: error: cannot execute /proc/self/exe for a worker\n";
      [[maybe_unused]] ssize_t written = ::write(2, message, sizeof(message) - 1);  // only async-signal-safe calls here
      ::_exit(127);
    }
    pids[static_cast<size_t>(rank)] = pid;
  }
  if (!quiet) {
    std::vector<std::string> who;
    for (int r = 0; r < nproc; ++r) who.push_back(fmt::format("rank {} pid {}", r, pids[static_cast<size_t>(r)]));
    fmt::print(stderr, "scorediff: {} workers on 127.0.0.1:{}: {}\n", nproc, port, fmt::join(who, ", "));
  }

  int live = nproc, first_failure = 0;
  Clock::time_point term_at = Clock::time_point::max(), kill_at = Clock::time_point::max();
  auto send_all = [&](int sig) {
    for (pid_t pid : pids)
      if (pid > 0) ::kill(pid, sig);
  };
  while (live > 0) {
    if (g_signal != 0) {
      // Forwarded as SIGTERM, which the workers handle like Ctrl-C: a SIGINT would be ignored by workers
      // started from a non-interactive shell's background job (they inherit SIGINT ignored).
      g_signal = 0;
      send_all(SIGTERM);
    }
    int raw = 0;
    const pid_t done = ::waitpid(-1, &raw, WNOHANG);
    if (done > 0) {
      for (int rank = 0; rank < nproc; ++rank) {
        if (pids[static_cast<size_t>(rank)] != done) continue;
        pids[static_cast<size_t>(rank)] = -1;
        --live;
        const int status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
        if (status != 0 && first_failure == 0) {
          first_failure = status;
          // Interrupted: every rank stops after the same step by itself, and rank 0 may still be writing
          // its checkpoint, so no timer.
          if (status != 130) {
            fmt::print(stderr, "scorediff: worker rank {} (pid {}) {}; stopping the other workers\n", rank, done,
                       describe_status(raw));
            term_at = Clock::now() + grace;
          }
        }
      }
      continue;
    }
    const auto now = Clock::now();
    if (now >= term_at) {
      fmt::print(stderr, "scorediff: {} worker(s) still running {:.0f} s after the failure; sending SIGTERM\n", live,
                 std::chrono::duration<double>(grace).count());
      send_all(SIGTERM);
      send_all(SIGCONT);  // a stopped worker handles it too
      term_at = Clock::time_point::max();
      kill_at = now + std::chrono::seconds(10);
    }
    if (now >= kill_at) {
      send_all(SIGKILL);
      kill_at = Clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  restore_signals();
  if (first_failure != 0) throw ExitStatus{first_failure};
}

}  // namespace scorediff::cli
