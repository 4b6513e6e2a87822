// Langevin samplers (seed 002 §3.2): plain Langevin at one noise level and annealed Langevin over a ladder.
#pragma once
#include <ATen/core/Generator.h>

#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

// Langevin dynamics at one noise level (seed 002 eq. 3.2.3): x ← x + η s(x) + √(2η) z.
struct LangevinOptions {
  double step_size = 0.01;  // η
  int64_t steps = 1000;
  double sigma = 0.0;       // noise level the score is evaluated at; 0 = the process' σ_min
  bool denoise = false;     // finish with the Tweedie step x + σ² s(x)
  int64_t snapshots = 0;    // record this many evenly spaced states
};
SampleResult sample_langevin(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                             const LangevinOptions& options, at::Generator& gen, const StepCallback& callback = {});

// Annealed Langevin dynamics (seed 002 Algorithm 1): T steps at each level σ_1 > … > σ_L with
// η_l = ε σ_l² / σ_L², then the Tweedie denoising step x + σ_L² s(x, σ_L) (on by default).
struct AnnealedLangevinOptions {
  double eps = 2e-5;              // ε: the step at the smallest level
  int64_t steps_per_level = 100;  // T
  std::vector<double> sigmas;     // levels, largest first; empty = the process' ladder
  bool denoise = true;
  bool snapshots = false;         // record the state at the end of each level
};
SampleResult sample_annealed_langevin(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                      const AnnealedLangevinOptions& options, at::Generator& gen,
                                      const StepCallback& callback = {});

}  // namespace scorediff
