// DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in x̂ = x/m and λ = −log σ, so VE, VP, sub-VP and EDM all
// use the same update x̂' = (σ'/σ) x̂ + (1 − σ'/σ) D̄; first order on the first (and, under 15 steps, the
// last) step. Deterministic.
#pragma once
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

SampleResult sample_dpm_solver(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                               const GridOptions& options, const StepCallback& callback = {});

}  // namespace scorediff
