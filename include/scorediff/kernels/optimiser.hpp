// Optimiser kernels over one float32 tensor (CPU), each tested against its ATen composition.
#pragma once
#include <cstdint>

namespace scorediff {

// The optimiser's loops over one float32 tensor of n elements (AVX-512 where the CPU has it; the same formulas
// as the scalar loops, equal to rounding). Adam (Kingma & Ba 2015) with decoupled weight decay (AdamW), the gradient scaled first:
// g ← grad_scale·g; p ← decay·p if weight_decay; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
// p ← p − step_size·m / (√v · inv_bias2_sqrt + eps).
struct AdamScalars {
  float grad_scale, decay, beta1, beta2, step_size, inv_bias2_sqrt, eps;
  bool weight_decay;
};
void adam_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars& k);
// shadow ← decay·shadow + (1 − decay)·p.
void ema_update(float* shadow, const float* p, int64_t n, double decay);
// Σ g², accumulated in float64 (in 16 partial sums on AVX-512).
double sum_squares(const float* g, int64_t n);

}  // namespace scorediff
