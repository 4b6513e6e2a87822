// train --nproc N: the local launcher of data-parallel workers (what torchrun does for PyTorch, for one
// machine): N copies of this command line, one per rank, joined through a loopback rendezvous. With
// --max-restarts R it starts them again from the last checkpoint after a failure, and a worker of a
// multi-machine job (--world-size, --rank) run with --max-restarts is supervised the same way on its machine.
#include <arpa/inet.h>
#include <fmt/core.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

#include "cli/common.hpp"
#include "scorediff/core/error.hpp"
#include "scorediff/core/interrupt.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/jsonl.hpp"
#include "scorediff/io/safetensors.hpp"

namespace scorediff::cli {
namespace {

std::vector<std::string> g_command_line;
volatile sig_atomic_t g_signal = 0;
volatile sig_atomic_t g_interrupted = 0;  // a signal was forwarded during this launch: no restart

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

// The command line without the launcher's own options (--nproc N, --max-restarts R, also as --opt=V).
std::vector<std::string> worker_arguments(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc" || args[i] == "--max-restarts") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0 || args[i].rfind("--max-restarts=", 0) == 0) continue;
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

namespace {

// Starts one process per argument list (each is this program: /proc/self/exe) and waits for all of them.
// When one fails it is named, and the others get `grace` to stop by themselves before SIGTERM, then SIGKILL.
// Returns the first failure's status (128 + signal for a killed worker; 0 when all succeeded) and what it was.
// `who(i)` names process i in messages.
struct GroupEnd {
  int status = 0;
  std::string what;  // "worker rank 1 (pid 123) was killed by signal 9 (Killed)"
};

GroupEnd run_group(const std::vector<std::vector<std::string>>& commands, const std::function<std::string(size_t)>& who,
                   std::chrono::milliseconds grace, bool quiet, const std::string& where) {
  using Clock = std::chrono::steady_clock;
  const pid_t launcher = ::getpid();
  std::fflush(stdout);
  std::fflush(stderr);
  const size_t n = commands.size();
  std::vector<pid_t> pids(n, -1);
  for (size_t w = 0; w < n; ++w) {
    std::vector<std::string> args = commands[w];
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int error = errno;
      for (pid_t started : pids)
        if (started > 0 && ::kill(started, SIGKILL) == 0) ::waitpid(started, nullptr, 0);
      fail("train: cannot start {}: {}", who(w), std::strerror(error));
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
    pids[w] = pid;
  }
  if (!quiet) {
    std::vector<std::string> list;
    for (size_t w = 0; w < n; ++w) list.push_back(fmt::format("{} pid {}", who(w), pids[w]));
    fmt::print(stderr, "scorediff: {}: {}\n", where, fmt::join(list, ", "));
  }

  size_t live = n;
  int first_failure = 0;
  std::string what;
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
      g_interrupted = 1;
      send_all(SIGTERM);
    }
    int raw = 0;
    const pid_t done = ::waitpid(-1, &raw, WNOHANG);
    if (done > 0) {
      for (size_t w = 0; w < n; ++w) {
        if (pids[w] != done) continue;
        pids[w] = -1;
        --live;
        const int status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
        if (status != 0 && first_failure == 0) {
          first_failure = status;
          // Interrupted: every rank stops after the same step by itself, and rank 0 may still be writing
          // its checkpoint, so no timer.
          what = fmt::format("{} (pid {}) {}", who(w), done, describe_status(raw));
          if (status != 130) {
            fmt::print(stderr, "scorediff: {}{}\n", what, n > 1 ? "; stopping the other workers" : "");
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
  return {first_failure, what};
}

// The restart as a line of <out>/train.jsonl, with the step the workers resume from (0: no checkpoint yet, a
// fresh start). Written by the supervisor before the workers start: every worker of the failed start has
// ended, and only rank 0 writes checkpoints, so last.safetensors is the one they will read.
void log_restart(const std::filesystem::path& out, int restart, const std::string& reason) {
  std::error_code ec;
  const std::filesystem::path last = out / "last.safetensors";
  const int64_t step = std::filesystem::exists(last, ec) ? std::stoll(read_safetensors(last).metadata.at("step")) : 0;
  ensure_output_dir(out);
  JsonlWriter(out / "train.jsonl", true, step)
      .write({{"event", "restart"}, {"restart", restart}, {"step", step}, {"reason", reason}});
}

// Runs make(restart) as a group, again after a failure (restart 1, 2, ...) up to max_restarts times. Not
// after bad input (status 2) or an interrupt (Ctrl-C, SIGTERM: 130). Throws ExitStatus on the last failure.
// Rank 0's supervisor logs each restart in <out>/train.jsonl (`log` true).
void supervise(const std::function<std::vector<std::vector<std::string>>(int restart)>& make,
               const std::function<std::string(size_t)>& who, const std::function<std::string()>& where,
               int max_restarts, const std::filesystem::path& out, bool log, std::chrono::milliseconds grace,
               bool quiet) {
  // Before the first fork, so that a Ctrl-C from now on is forwarded (exec resets the handler to the
  // default in the workers, which then install their own).
  struct sigaction forward {}, old_int {}, old_term {};
  forward.sa_handler = remember_signal;
  sigemptyset(&forward.sa_mask);
  g_signal = 0;
  g_interrupted = 0;
  ::sigaction(SIGINT, &forward, &old_int);
  ::sigaction(SIGTERM, &forward, &old_term);
  int status = 0;
  try {
    for (int restart = 0;; ++restart) {
      if (g_signal != 0) {  // Ctrl-C or SIGTERM while the failed start was being logged: no new start
        status = 130;
        break;
      }
      const auto commands = make(restart);  // before where(): it names this start's port
      const GroupEnd end = run_group(commands, who, grace, quiet, where());
      status = end.status;
      if (status == 0 || status == 2 || status == 130 || g_interrupted != 0 || g_signal != 0 || restart == max_restarts)
        break;
      fmt::print(stderr, "scorediff: restart {} of {}: {}; starting again from the last checkpoint\n", restart + 1,
                 max_restarts, end.what);
      if (log) log_restart(out, restart + 1, end.what);
    }
  } catch (...) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    throw;
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (status != 0) throw ExitStatus{status};
}

// --restart K: a restarted worker resumes from the last checkpoint if there is one.
void add_restart(std::vector<std::string>& args, int restart) {
  if (restart == 0) return;
  args.push_back("--restart");
  args.push_back(std::to_string(restart));
}

}  // namespace

void launch_local_workers(int nproc, int max_restarts, const std::filesystem::path& out,
                          std::chrono::milliseconds grace, bool quiet) {
  const std::vector<std::string> base = worker_arguments(g_command_line);
  int port = 0;
  auto make = [&](int restart) {
    port = free_loopback_port();  // a fresh rendezvous for every start
    std::vector<std::vector<std::string>> commands;
    for (int rank = 0; rank < nproc; ++rank) {
      std::vector<std::string> args = base;
      for (const std::string& a : {std::string("--rank"), std::to_string(rank), std::string("--world-size"),
                                   std::to_string(nproc), std::string("--master-addr"), std::string("127.0.0.1"),
                                   std::string("--master-port"), std::to_string(port), std::string("--local-rank"),
                                   std::to_string(rank), std::string("--local-world"), std::to_string(nproc)})
        args.push_back(a);
      add_restart(args, restart);
      commands.push_back(std::move(args));
    }
    return commands;
  };
  supervise(make, [](size_t rank) { return fmt::format("worker rank {}", rank); },
            [&] { return fmt::format("{} workers on 127.0.0.1:{}", nproc, port); }, max_restarts, out, true, grace,
            quiet);
}

void supervise_worker(int rank, int max_restarts, const std::filesystem::path& out, std::chrono::milliseconds grace,
                      bool quiet) {
  const std::vector<std::string> base = worker_arguments(g_command_line);
  auto make = [&](int restart) {
    std::vector<std::string> args = base;
    add_restart(args, restart);
    return std::vector<std::vector<std::string>>{args};
  };
  supervise(make, [rank](size_t) { return fmt::format("worker rank {}", rank); },
            [] { return std::string("this machine's worker"); }, max_restarts, out, rank == 0, grace, quiet);
}

}  // namespace scorediff::cli
