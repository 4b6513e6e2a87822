#include "scorediff/core/interrupt.hpp"

#include <atomic>
#include <csignal>

namespace scorediff {
namespace {

std::atomic<bool> requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_interrupt(int signal) {
  if (requested.exchange(true)) {  // the second signal: stop now, as if no handler were installed
    std::signal(signal, SIG_DFL);
    std::raise(signal);
  }
}

}  // namespace

void install_interrupt_handlers() {
  // A signal the parent chose to ignore (nohup, a background job of a script) stays ignored.
  for (int signal : {SIGINT, SIGTERM})
    if (std::signal(signal, on_interrupt) == SIG_IGN) std::signal(signal, SIG_IGN);
}

void uninstall_interrupt_handlers() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

bool interrupt_requested() { return requested.load(); }
void clear_interrupt() { requested.store(false); }

}  // namespace scorediff
