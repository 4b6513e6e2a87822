// Stein's unbiased risk estimate for a denoiser of x̃ = x + σε (seed 002 eq. 3.3.7).
#pragma once
#include <torch/types.h>

namespace scorediff {

// SURE(D; x̃) = ‖D(x̃) − x̃‖² + 2σ² div D(x̃) − Dσ² per sample: denoised, x_noisy [B, D]; divergence,
// sigma [B]. Its expectation over the noise equals E‖D(x̃) − x‖².
torch::Tensor sure_value(const torch::Tensor& denoised, const torch::Tensor& x_noisy, const torch::Tensor& divergence,
                         const torch::Tensor& sigma);

}  // namespace scorediff
