// Log window hook: averages the steps since the last record (loss, per-level loss, gradient norm,
// skipped steps) and every log_every steps, at the last step and when the run stops early, writes one
// train.jsonl record (step, loss, loss_per_level, lr, grad_norm, skipped, steps_per_s; data parallel:
// world_size, allreduce_share) and updates the progress line.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "scorediff/core/progress.hpp"
#include "scorediff/io/jsonl.hpp"
#include "scorediff/train/hook.hpp"

namespace scorediff {

class LogWindow : public TrainingHook {
 public:
  // log: the train.jsonl writer, or null (ranks other than 0). world_size: 0 outside data parallel.
  // progress: redrawn at each record and finished at the end, or null.
  LogWindow(int64_t log_every, int64_t levels, JsonlWriter* log, Progress* progress, int world_size = 0);
  bool after_step(const StepEvent& event) override;
  // Every record written (and those of an earlier run, when given), in order.
  std::vector<nlohmann::json> records;

 private:
  void write(const StepEvent& event);
  int64_t log_every_, levels_;
  JsonlWriter* log_;
  Progress* progress_;
  int world_size_;
  double loss_ = 0, grad_ = 0;
  int64_t steps_ = 0, skipped_ = 0;
  std::vector<double> level_sum_;
  std::vector<int64_t> level_count_;
  double window_start_seconds_ = 0, window_start_communication_ = 0;
};

}  // namespace scorediff
