#include "scorediff/train/hooks/ema_hook.hpp"

namespace scorediff {

EmaHook::EmaHook(const Trainer& trainer, ScoreModel raw, ScoreModel ema_model, int64_t every, bool include_last,
                 bool lead, ModelView view)
    : trainer_(trainer), raw_(std::move(raw)), ema_(std::move(ema_model)), every_(every),
      include_last_(include_last), lead_(lead), view_(std::move(view)) {}

bool EmaHook::after_step(const StepEvent& e) {
  const bool due = view_ && every_ > 0 && (e.step % every_ == 0 || (include_last_ && e.last()));
  if (due && lead_) {
    trainer_.copy_ema_to(ema_);
    ema_->eval();
    raw_->eval();
    view_(e.step, raw_, ema_);
    raw_->train();
  }
  return due;
}

}  // namespace scorediff
