// Interrupt hook, added last: when the run was asked to stop (Ctrl-C or SIGTERM; data parallel: on any
// rank) before its last step, it ends the loop by throwing Interrupted after the other hooks have logged
// and checkpointed the step. The CLI turns it into exit status 130; --resume continues bit for bit.
#pragma once
#include <filesystem>

#include "scorediff/train/hook.hpp"

namespace scorediff {

class InterruptHook : public TrainingHook {
 public:
  // rank: this process' rank (0 outside data parallel); last_checkpoint: where rank 0's checkpoint is.
  InterruptHook(int rank, int64_t total_steps, std::filesystem::path last_checkpoint);
  bool after_step(const StepEvent& event) override;

 private:
  int rank_;
  int64_t total_steps_;
  std::filesystem::path last_checkpoint_;
};

}  // namespace scorediff
