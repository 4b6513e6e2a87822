#include "scorediff/train/hooks/interrupt_hook.hpp"

#include <fmt/core.h>

#include "scorediff/core/interrupt.hpp"

namespace scorediff {

InterruptHook::InterruptHook(int rank, int64_t total_steps, std::filesystem::path last_checkpoint)
    : rank_(rank), total_steps_(total_steps), last_checkpoint_(std::move(last_checkpoint)) {}

bool InterruptHook::after_step(const StepEvent& e) {
  if (!e.stopped_early()) return false;
  clear_interrupt();
  if (rank_ != 0)
    throw Interrupted(fmt::format("rank {} stopped at step {} of {}; rank 0 writes the checkpoint", rank_, e.step,
                                  total_steps_));
  throw Interrupted(fmt::format("training stopped at step {} of {}; checkpoint '{}' written, --resume continues",
                                e.step, total_steps_, last_checkpoint_.string()));
}

}  // namespace scorediff
