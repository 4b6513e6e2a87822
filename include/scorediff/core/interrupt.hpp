// Ctrl-C and SIGTERM during training: the first signal asks the run to stop after the current step,
// write its checkpoint and exit with status 130 (`--resume` continues bit for bit); a second one stops
// at once. Installed by the CLI for the whole process.
#pragma once
#include "scorediff/core/error.hpp"

namespace scorediff {

// Thrown by a run that stopped on request; the CLI prints its message and exits with status 130.
class Interrupted : public Error {
 public:
  using Error::Error;
};

void install_interrupt_handlers();
void uninstall_interrupt_handlers();  // the default dispositions back (tests)
bool interrupt_requested();
void clear_interrupt();

}  // namespace scorediff
