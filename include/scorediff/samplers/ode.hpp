// Probability-flow ODE samplers dx/dt = f − ½ g² s (Song et al. 2021): Heun on the grid and adaptive
// Dormand–Prince 5(4). Deterministic: no generator. (The Euler step is in predictor_corrector.hpp.)
#pragma once
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

SampleResult sample_ode_heun(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                             const GridOptions& options, const StepCallback& callback = {});

// Only the grid's two ends are used: the solver picks its own steps within the tolerances.
struct Rk45SamplerOptions : GridOptions {
  double rtol = 1e-5, atol = 1e-5;
};
SampleResult sample_ode_rk45(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                             const Rk45SamplerOptions& options, const StepCallback& callback = {});

// The probability-flow ODE forwards, from data to noise: points x at the grid's last time (t_end, default the
// process' t_min) carried to its first (t_start, default t_max) by the same adaptive solver, so that
// sample_ode_rk45 without the final denoising step takes them back (to the solvers' tolerances). samples: the
// latents.
SampleResult encode_ode_rk45(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                             const Rk45SamplerOptions& options, const StepCallback& callback = {});

}  // namespace scorediff
