// Hooks that look at the model along the run (evaluation, sample grids): every `every` steps (and, when
// asked, after the last), rank 0 copies the EMA weights into a second model, puts both models in eval
// mode, calls the function with (step, raw, ema) and puts the raw model back in train mode.
#pragma once
#include <functional>

#include "scorediff/train/hook.hpp"

namespace scorediff {

using ModelView = std::function<void(int64_t step, ScoreModel& raw, ScoreModel& ema)>;

class EmaHook : public TrainingHook {
 public:
  // ema_model: built with the trainer's model options (receives the EMA weights). lead: rank 0 calls `view`.
  EmaHook(const Trainer& trainer, ScoreModel raw, ScoreModel ema_model, int64_t every, bool include_last, bool lead,
          ModelView view);
  bool after_step(const StepEvent& event) override;

 private:
  const Trainer& trainer_;
  ScoreModel raw_, ema_;
  int64_t every_;
  bool include_last_, lead_;
  ModelView view_;
};

}  // namespace scorediff
