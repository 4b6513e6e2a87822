// What every sampler shares (DESIGN §2): the result, the progress callback and the time-grid options.
// Samplers are free functions over a ScoreFn and a NoiseProcess: no model types here. Each family has
// its own header (langevin, predictor_corrector, ode, edm, dpm_solver); registry.hpp finds them by name.
#pragma once
#include <torch/types.h>

#include <functional>
#include <vector>

#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"
#include "scorediff/process/time_grid.hpp"

namespace scorediff {

struct SampleResult {
  torch::Tensor samples;  // like x_init
  int64_t nfe = 0;        // score evaluations
  std::vector<torch::Tensor> trajectory;  // snapshots, when asked for
  std::vector<double> trajectory_sigma;   // the noise level of each snapshot
};

// Called after each step with (steps done, total steps); for progress bars.
using StepCallback = std::function<void(int64_t done, int64_t total)>;

// The time grid of a reverse-time sampler (seed 003; Song et al. 2021): `steps` intervals from t_max
// down to t_end, then (denoise, on by default) the Tweedie mean E[x₀ | x_t_end] = (x + s² ∇log p)/m,
// one more score evaluation. Every grid sampler's options derive from this.
struct GridOptions {
  int64_t steps = 1000;                // grid intervals
  GridKind grid = GridKind::Uniform;   // spacing of the grid
  double rho = 7.0;                    // karras grid: ρ
  double t_end = 0.0;                  // last grid time; 0 = the process' t_min
  double t_start = 0.0;                // first grid time; 0 = the process' t_max (later: SDEdit)
  bool denoise = true;                 // finish with the Tweedie denoised mean
  int64_t snapshots = 0;               // record this many evenly spaced states
};

// Geometric levels from σ_max down to σ_min (seed 001 §4.3).
std::vector<double> geometric_sigmas(double sigma_max, double sigma_min, int64_t count);

}  // namespace scorediff
