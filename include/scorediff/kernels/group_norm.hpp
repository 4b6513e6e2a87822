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

// x is [n, channels, hw] contiguous (NCHW), or [n, hw, channels] with channels_last (NHWC); the groups split the
// channels into groups of channels / groups. Every tensor of the calls below takes x's layout; mean, rstd and
// the per-image parameter gradients do not depend on it.
struct GroupNormShape {
  int64_t n = 0, channels = 0, hw = 0, groups = 1;
  bool channels_last = false;
};

// Dropout inside the fused pass, with masks from a counter-based hash instead of a random-number stream, so
// that no mask tensor is drawn or stored (the backward pass recomputes it) and the images and groups stay in
// parallel. Element i of the global batch (offset + its flat index here) is kept when
//   h(i) = mix(mix(i ⊕ k₀) ⊕ k₁) ≥ ⌊p · 2³²⌋,
// mix being Wellons' "lowbias32" integer hash (C. Wellons, "Prospecting for hash functions", 2018) and k₀, k₁
// the halves of SplitMix64(key) (Steele et al. 2014); kept values are scaled by 1/(1 − p) in float32. In
// channels-last layout an element's index is still its NCHW flat index, so both layouts drop the same elements.
struct DropoutSpec {
  double p = 0;         // 0: no dropout
  uint64_t key = 0;     // one per call: the caller's seed and call count
  int64_t offset = 0;   // flat index of this tensor's first element in the global batch (data parallel)
};

// The factor element `index` (flat, local: offset is added) is multiplied by: 0 or 1/(1 − p). Portable
// reference of what the kernels compute inline; the ATen path builds its mask from it (dropout_scale_fill).
float dropout_scale(const DropoutSpec& d, int64_t index);
// out[j] = dropout_scale(d, first + j) for j < n, the images in parallel.
void dropout_scale_fill(const DropoutSpec& d, int64_t first, int64_t n, float* out);

// y = act(γ_c (x − μ) r + β_c), with μ and r = 1/√(σ² + eps) the mean and biased variance's inverse root over
// each (image, group), act = SiLU or the identity, times the dropout factor. Writes mean and rstd [n, groups]
// for the backward pass. Out is float or c10::BFloat16 (rounded to nearest even, once, after the dropout scale).
// simd = false runs the portable loops (tests).
template <class Out>
void group_norm_act_forward(const float* x, const float* gamma, const float* beta, Out* y, float* mean, float* rstd,
                            const GroupNormShape& s, float eps, bool silu, const DropoutSpec& dropout = {},
                            bool simd = true);

// The gradients of the forward pass from dy (float or c10::BFloat16, the output's type): dx [n, channels,
// hw] (overwritten), and per image the parameter gradients dgamma_n, dbeta_n [n, channels], which the caller
// sums over the images (kept apart so that the images run in parallel and the sum is deterministic).
template <class Grad>
void group_norm_act_backward(const Grad* dy, const float* x, const float* gamma, const float* beta, const float* mean,
                             const float* rstd, float* dx, float* dgamma_n, float* dbeta_n, const GroupNormShape& s,
                             bool silu, const DropoutSpec& dropout = {}, bool simd = true);

}  // namespace scorediff
