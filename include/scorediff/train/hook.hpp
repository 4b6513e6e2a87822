// What the training loop (train/loop.hpp) tells its hooks after each optimisation step. A new training
// mode adds a hook (or a step type), not a branch in the loop.
#pragma once
#include <cstdint>

#include "scorediff/train/trainer.hpp"

namespace scorediff {

struct StepEvent {
  int64_t step = 0;         // steps done, this one included
  int64_t last_step = 0;    // the loop ends after this step
  const StepStats* stats = nullptr;  // null in finish() when the loop had no step left to take
  bool stopping = false;    // asked to stop after this step (Ctrl-C; in data parallel: on any rank)
  double train_seconds = 0;          // wall time inside trainer.step() so far (hooks and the loop's bookkeeping left out)
  double communication_seconds = 0;  // of which in the gradient all-reduce
  bool last() const { return step == last_step; }
  // Stopped early: the loop ends after this step although last_step was not reached.
  bool stopped_early() const { return stopping && !last(); }
};

class TrainingHook {
 public:
  virtual ~TrainingHook() = default;
  // After every step, in the order the hooks were added. Returns true when the step made rank 0 work
  // alone (a checkpoint, a grid): the other ranks of a data-parallel job then wait for it. Every rank
  // must return the same value for the same step.
  virtual bool after_step(const StepEvent& event) = 0;
  // After the loop reached last_step (not when it stopped early).
  virtual void finish(const StepEvent& last) {}
};

}  // namespace scorediff
