// Activation kernels of the MLPs (CPU), each tested against its ATen composition.
//
// Written here because no library offers them: ATen's SiLU calls Sleef's 1-ulp expf and needs a
// separate pass for the bias, and was ~30% of a sampling step's time (perf, 10 000 points, 128-wide
// MLP). These add the bias and apply SiLU in one pass with a 2-ulp exp.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace scorediff {

// out = silu(in + bias) for in, out [N, C] contiguous float32 or bfloat16, each either (same dtype: may
// alias), bias [C] float32. The arithmetic is float32; a bfloat16 output is rounded to nearest even.
void bias_silu_out(torch::Tensor& out, const torch::Tensor& in, const torch::Tensor& bias);

// z ← z + bias per row, s = sigmoid(z), h = z·s: one pass over z, s, h [rows, cols] float32 (the MLP's
// hidden layer, keeping s for the backward pass). The exp is fast_exp's.
void bias_sigmoid_silu(float* z, float* s, float* h, const float* bias, int64_t rows, int64_t cols);
// g ← g · silu'(z) = g · s (1 + z (1 − s)) over n elements.
void silu_backward(float* g, const float* z, const float* s, int64_t n);
// out[j] = Σ_i g[i, j] over g [rows, cols] (plus out[j] when accumulating): a bias gradient.
void column_sums(float* out, const float* g, int64_t rows, int64_t cols, bool accumulate);

// exp for float32 with relative error below 3e-7 (about 2 ulp) on [-87, 88], vectorised where the CPU allows;
// exposed for its test.
void fast_exp(const float* in, float* out, int64_t n);

}  // namespace scorediff
