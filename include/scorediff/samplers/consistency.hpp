// Multistep consistency sampling (Song et al. 2023, Algorithm 1), registered as sampler `consistency`.
#pragma once
#include <ATen/core/Generator.h>

#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

// For i = 0 … steps − 1 on the grid t_0 > … > t_steps: x₀ = f(x, t_i), the model's Tweedie mean (a consistency
// model's consistency function); then x = m(t_{i+1}) (x₀ + √(σ(t_{i+1})² − σ(t_steps)²) z) unless i is the last
// step. Returns the last x₀: NFE = steps, no final Tweedie step (options.denoise is ignored).
SampleResult sample_consistency(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                const GridOptions& options, at::Generator& gen, const StepCallback& callback = {});

}  // namespace scorediff
