// Sample-quality metrics for point sets.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <vector>

namespace scorediff {

// Sliced 2-Wasserstein distance between point sets a [N, D] and b [M, D]:
//   SWD = √(D · mean_θ W₂²(θᵀa, θᵀb)),  θ uniform on the unit sphere, `projections` of them from gen.
// The √D factor makes a translation by c give ‖c‖ (E[(θᵀc)²] = ‖c‖²/D), so the number reads in data
// units. Unequal sizes compare the empirical quantile functions at max(N, M) levels.
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections, at::Generator& gen);

// Fraction of the finite points of x [N, D] nearest to each of means [K, D] (mode weights).
std::vector<double> mode_weights(const torch::Tensor& x, const torch::Tensor& means);

// Points with a NaN or Inf coordinate.
int64_t count_non_finite(const torch::Tensor& x);

}  // namespace scorediff
