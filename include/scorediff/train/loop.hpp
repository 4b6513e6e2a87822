// The training loop: trainer.step() until the last step, then each hook in order. It keeps the clock of
// the optimisation steps (hook time left out) and, in data parallel, makes the other ranks wait while
// rank 0 works alone.
#pragma once
#include <functional>
#include <vector>

#include "scorediff/train/hook.hpp"

namespace scorediff {

class TrainingLoop {
 public:
  // group: the data-parallel group, or null.
  TrainingLoop(Trainer& trainer, int64_t last_step, ProcessGroup* group = nullptr);
  void add(TrainingHook& hook) { hooks_.push_back(&hook); }
  // Asked after every step (one process only), before the hooks: true stops the run after this step as Ctrl-C
  // does (the checkpoint is written, then the interrupt hook throws Interrupted). The library's progress
  // callback and cancellation.
  void set_stop_request(std::function<bool(const StepEvent&)> request) { stop_request_ = std::move(request); }
  // Runs the remaining steps. A hook may end it early by throwing (the interrupt hook throws Interrupted).
  void run();
  double train_seconds() const { return train_seconds_; }

 private:
  Trainer& trainer_;
  int64_t last_step_;
  ProcessGroup* group_;
  std::vector<TrainingHook*> hooks_;
  std::function<bool(const StepEvent&)> stop_request_;
  double train_seconds_ = 0;
};

}  // namespace scorediff
