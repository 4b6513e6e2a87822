// Tweedie's formula (seed 002 Lemma 3, eq. 3.3.6): m·E[x₀ | x_t] = x_t + s² ∇ log p_t(x_t).
#pragma once
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// The posterior mean E[x₀ | x_t] (the optimal denoiser), x [B, ...], t [B]. One score evaluation.
torch::Tensor tweedie_denoise(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                              const torch::Tensor& t);

}  // namespace scorediff
