#include "scorediff/train/hooks/log_window.hpp"

#include <fmt/core.h>

#include <cmath>

namespace scorediff {

LogWindow::LogWindow(int64_t log_every, int64_t levels, JsonlWriter* log, Progress* progress, int world_size)
    : log_every_(log_every), levels_(levels), log_(log), progress_(progress), world_size_(world_size),
      level_sum_(static_cast<size_t>(levels), 0.0), level_count_(static_cast<size_t>(levels), 0) {
  require(log_every >= 1, "log_every must be >= 1, got {}", log_every);
}

bool LogWindow::after_step(const StepEvent& e) {
  const StepStats& stats = *e.stats;
  if (stats.skipped) {
    ++skipped_;
  } else {
    loss_ += stats.loss;
    grad_ += stats.grad_norm;
    ++steps_;
    if (stats.level_loss_sum.defined()) {
      auto sums = stats.level_loss_sum.to(torch::kCPU).contiguous();
      auto counts = stats.level_count.to(torch::kCPU).contiguous();
      for (int64_t l = 0; l < levels_; ++l) {
        level_sum_[static_cast<size_t>(l)] += sums.data_ptr<double>()[l];
        level_count_[static_cast<size_t>(l)] += counts.data_ptr<int64_t>()[l];
      }
    }
  }
  if (e.step % log_every_ == 0 || e.last() || e.stopping) write(e);
  if (e.stopped_early() && progress_) progress_->finish(fmt::format("interrupted at step {}", e.step));
  return false;
}

void LogWindow::write(const StepEvent& e) {
  const double seconds = e.train_seconds - window_start_seconds_;
  const int64_t in_window = steps_ + skipped_;  // steps since the last record (also right after a resume)
  nlohmann::json per_level = nlohmann::json::array();
  for (size_t l = 0; l < level_sum_.size(); ++l)
    per_level.push_back(level_count_[l] > 0 ? nlohmann::json(level_sum_[l] / static_cast<double>(level_count_[l]))
                                            : nlohmann::json(nullptr));
  const double loss = steps_ > 0 ? loss_ / static_cast<double>(steps_) : NAN;
  nlohmann::json record = {{"step", e.step},
                           {"loss", loss},
                           {"loss_per_level", per_level},
                           {"lr", e.stats->lr},
                           {"grad_norm", steps_ > 0 ? grad_ / static_cast<double>(steps_) : NAN},
                           {"skipped", skipped_},
                           {"steps_per_s", seconds > 0 ? static_cast<double>(in_window) / seconds : 0.0}};
  if (world_size_ > 0) {
    record["world_size"] = world_size_;
    record["allreduce_share"] =
        seconds > 0 ? (e.communication_seconds - window_start_communication_) / seconds : 0.0;
  }
  if (log_) log_->write(record);
  records.push_back(record);
  if (progress_) progress_->update(e.step, fmt::format("loss {:.4g}", loss));
  loss_ = grad_ = 0;
  steps_ = skipped_ = 0;
  std::fill(level_sum_.begin(), level_sum_.end(), 0.0);
  std::fill(level_count_.begin(), level_count_.end(), 0);
  window_start_seconds_ = e.train_seconds;
  window_start_communication_ = e.communication_seconds;
}

}  // namespace scorediff
