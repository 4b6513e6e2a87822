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

}  // namespace scorediff
