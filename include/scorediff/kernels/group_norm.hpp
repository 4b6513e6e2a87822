// GroupNorm fused with the SiLU that follows it (CPU, NCHW float32 input), forward and backward.
//
// Written here because LibTorch runs GroupNorm, SiLU and the cast to the convolution's bfloat16 as three
// passes with three allocations, forward and backward: in the U-Net's training step they took about as long
// as the convolutions (docs/performance.md, "GroupNorm and SiLU in one pass"). Tested against ATen's
// composition and autograd in tests/test_group_norm.cpp.
#pragma once
#include <c10/util/BFloat16.h>

#include <cstdint>

namespace scorediff {

// x is [n, channels, hw] contiguous; the groups split the channels into groups of channels / groups.
struct GroupNormShape {
  int64_t n = 0, channels = 0, hw = 0, groups = 1;
};

// y = act(γ_c (x − μ) r + β_c), with μ and r = 1/√(σ² + eps) the mean and biased variance's inverse root over
// each (image, group), act = SiLU or the identity. Writes mean and rstd [n, groups] for the backward pass.
// Out is float or c10::BFloat16 (rounded to nearest even). simd = false runs the portable loops (tests).
template <class Out>
void group_norm_act_forward(const float* x, const float* gamma, const float* beta, Out* y, float* mean, float* rstd,
                            const GroupNormShape& s, float eps, bool silu, bool simd = true);

// The gradients of the forward pass from dy (float or c10::BFloat16, the output's type): dx [n, channels,
// hw] (overwritten), and per image the parameter gradients dgamma_n, dbeta_n [n, channels], which the caller
// sums over the images (kept apart so that the images run in parallel and the sum is deterministic).
template <class Grad>
void group_norm_act_backward(const Grad* dy, const float* x, const float* gamma, const float* beta, const float* mean,
                             const float* rstd, float* dx, float* dgamma_n, float* dbeta_n, const GroupNormShape& s,
                             bool silu, bool simd = true);

}  // namespace scorediff
