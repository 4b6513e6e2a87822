// Post-hoc EMA from a finished run (train/posthoc_ema.hpp): the run's snapshots in posthoc/step-N.safetensors
// combined into the EMA of any length σ_rel at one of its checkpointed steps, written as a checkpoint.
#pragma once
#include <filesystem>
#include <vector>

#include "scorediff/train/posthoc_ema.hpp"

namespace scorediff {

struct PosthocEma {
  int64_t step = 0;                          // t of the wanted profile
  double sigma_rel = 0, gamma = 0;
  std::vector<PowerEmaSnapshot> snapshots;   // every EMA of every snapshot file used, in file order
  std::vector<double> coefficients;          // one per entry of snapshots
  std::filesystem::path base;                // the checkpoint whose other tensors the output keeps
  double relative_error = 0;                 // ‖Σ x_i p_i − p‖₂ / ‖p‖₂ of the profiles
};

// Reconstructs the EMA of length sigma_rel at `step` (≤ 0: the step of the run's last.safetensors) from the run's
// snapshots up to that step, one of them at it, and writes `out` (atomically): the run's checkpoint of that
// step (last.safetensors or ckpt/step-N.safetensors) with its ema.* tensors replaced, so that sample, eval and
// the rest read it as any checkpoint. One line for a run without snapshots, a step with no snapshot or no
// checkpoint, a σ_rel out of range, or an output that would replace one of the run's own files.
PosthocEma write_posthoc_ema(const std::filesystem::path& run_dir, double sigma_rel, int64_t step,
                             const std::filesystem::path& out);

}  // namespace scorediff
