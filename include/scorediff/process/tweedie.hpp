// Tweedie's formula (seed 002 Lemma 3, eq. 3.3.6): m·E[x₀ | x_t] = x_t + s² ∇ log p_t(x_t).
#pragma once
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// The posterior mean E[x₀ | x_t] (the optimal denoiser), x [B, ...], t [B]. One score evaluation.
torch::Tensor tweedie_denoise(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                              const torch::Tensor& t);

// The same for the whole batch at one time t, outside autograd: a sampler's final denoising step
// (t = the process' t_min), also applied by experiments to samples drawn without it.
torch::Tensor tweedie_at(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x, double t);

// Second-order Tweedie (seed 002): the posterior covariance Cov[x₀ | x_t] = (s² I + s⁴ ∇ₓ² log p_t)/m²,
// with the Hessian as the Jacobian of the score (D backward passes). x [B, D] -> [B, D, D]. The score
// must be differentiable in x.
torch::Tensor tweedie_covariance(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                                 const torch::Tensor& t);

}  // namespace scorediff
