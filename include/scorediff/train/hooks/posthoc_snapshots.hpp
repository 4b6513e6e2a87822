// Post-hoc EMA snapshots (train/posthoc_ema.hpp): every train.posthoc_every steps and at the end, rank 0 writes
// the trainer's power-function EMAs to posthoc/step-N.safetensors (atomically), with their σ_rel, γ and the
// step in the metadata. Nothing is written when the run keeps no such EMA.
#pragma once
#include <filesystem>
#include <string>

#include "scorediff/train/hook.hpp"

namespace scorediff {

inline constexpr const char* kPosthocFormat = "scorediff-posthoc/1";

class PosthocSnapshots : public TrainingHook {
 public:
  PosthocSnapshots(const Trainer& trainer, std::filesystem::path run_dir, std::vector<double> sigma_rels, int64_t every,
                   bool lead);
  bool after_step(const StepEvent& event) override;
  void finish(const StepEvent& last) override;

 private:
  void write(int64_t step) const;
  const Trainer& trainer_;
  std::filesystem::path run_dir_;
  std::vector<double> sigma_rels_;
  int64_t every_;
  bool lead_;
};

}  // namespace scorediff
