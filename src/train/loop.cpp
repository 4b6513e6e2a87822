#include "scorediff/train/loop.hpp"

#include <fmt/core.h>

#include <chrono>

#include "scorediff/core/interrupt.hpp"
#include "scorediff/train/data_parallel.hpp"

namespace scorediff {

TrainingLoop::TrainingLoop(Trainer& trainer, int64_t last_step, ProcessGroup* group)
    : trainer_(trainer), last_step_(last_step), group_(group) {}

void TrainingLoop::run() {
  using Clock = std::chrono::steady_clock;
  StepEvent event;
  StepStats stats;  // the last step's, alive for finish()
  event.step = trainer_.steps_done();
  event.last_step = last_step_;
  while (trainer_.steps_done() < last_step_) {
    const auto start = Clock::now();
    stats = trainer_.step();
    train_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
    event.step = trainer_.steps_done();
    event.last_step = last_step_;
    event.stats = &stats;
    event.train_seconds = train_seconds_;
    event.communication_seconds = group_ ? group_->communication_seconds() : 0.0;  // only steps all-reduce
    // Data parallel: every rank stops after the step in which any rank was asked to.
    event.stopping = group_ ? stats.stop : interrupt_requested();
    if (!group_ && stop_request_ && stop_request_(event)) event.stopping = true;
    bool rank0_works = false;
    for (TrainingHook* hook : hooks_) rank0_works = hook->after_step(event) || rank0_works;
    // The other ranks wait here (without the collective timeout) while rank 0 works alone; a run that
    // stops early has thrown before this.
    if (group_ && rank0_works && !event.stopped_early())
      group_->wait_for_rank0(fmt::format("waiting for rank 0's checkpoint or samples after step {}", event.step));
  }
  for (TrainingHook* hook : hooks_) hook->finish(event);
}

}  // namespace scorediff
