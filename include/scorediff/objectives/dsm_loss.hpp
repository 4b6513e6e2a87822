// The σ²-weighted DSM loss per sample as one autograd node.
#pragma once
#include <torch/types.h>

namespace scorediff {

// The DSM loss with σ² weighting per sample, ½‖std·predicted + eps‖² over each row (seed 001 §5.1): one
// autograd node on the CPU in float32 (gradient for predicted only; not differentiable twice), ATen's
// composition elsewhere.
// predicted, eps [B, ...]; std [B] or [B, 1, ...].
torch::Tensor dsm_sigma2_loss(const torch::Tensor& predicted, const torch::Tensor& std, const torch::Tensor& eps);

}  // namespace scorediff
