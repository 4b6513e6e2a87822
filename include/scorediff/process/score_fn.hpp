// ScoreFn: the one thing every sampler, likelihood and metric consumes (DESIGN §2).
#pragma once
#include <torch/types.h>

#include <functional>

namespace scorediff {

// x [B, D] (or [B, C, H, W]), t [B] -> ∇ₓ log p_t(x), shaped like x.
using ScoreFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

}  // namespace scorediff
