// The optimiser's loops over one float32 tensor: Adam(W), EMA, the gradient's squared norm.
#include "scorediff/kernels/optimiser.hpp"

#include <cmath>

#include "kernels/simd.hpp"

namespace scorediff {

#if defined(__x86_64__)
namespace {

using namespace kernels;

// The same formulas as the scalar loops below; the compiler may fuse a multiply and an add into one FMA, so
// the two agree to rounding, not bit for bit.
__attribute__((target("avx512f"))) void adam_update_avx512(float* p, const float* g, float* m, float* v, int64_t n,
                                                           const AdamScalars& k) {
  const __m512 scale = _mm512_set1_ps(k.grad_scale), decay = _mm512_set1_ps(k.decay), b1 = _mm512_set1_ps(k.beta1),
               b2 = _mm512_set1_ps(k.beta2), rb1 = _mm512_set1_ps(1 - k.beta1), rb2 = _mm512_set1_ps(1 - k.beta2),
               step = _mm512_set1_ps(k.step_size), inv = _mm512_set1_ps(k.inv_bias2_sqrt), eps = _mm512_set1_ps(k.eps);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = tail_mask(n - i);
    const __m512 gj = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, g + i), scale);
    __m512 pj = _mm512_maskz_loadu_ps(mask, p + i);
    if (k.weight_decay) pj = _mm512_mul_ps(pj, decay);
    const __m512 mj = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(mask, m + i)), _mm512_mul_ps(rb1, gj));
    const __m512 vj =
        _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(mask, v + i)), _mm512_mul_ps(_mm512_mul_ps(rb2, gj), gj));
    const __m512 denom = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vj), inv), eps);
    pj = _mm512_sub_ps(pj, _mm512_div_ps(_mm512_mul_ps(step, mj), denom));
    _mm512_mask_storeu_ps(m + i, mask, mj);
    _mm512_mask_storeu_ps(v + i, mask, vj);
    _mm512_mask_storeu_ps(p + i, mask, pj);
  }
}

__attribute__((target("avx512f"))) void ema_update_avx512(float* shadow, const float* p, int64_t n, float decay,
                                                          float remainder) {
  const __m512 d = _mm512_set1_ps(decay), rest = _mm512_set1_ps(remainder);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = tail_mask(n - i);
    const __m512 sv = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(mask, shadow + i));
    _mm512_mask_storeu_ps(shadow + i, mask, _mm512_add_ps(sv, _mm512_mul_ps(rest, _mm512_maskz_loadu_ps(mask, p + i))));
  }
}

__attribute__((target("avx512f"))) double sum_squares_avx512(const float* g, int64_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(mask, g + i);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    a0 = _mm512_fmadd_pd(lo, lo, a0);
    a1 = _mm512_fmadd_pd(hi, hi, a1);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}
}  // namespace
#endif

void adam_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars& k) {
#if defined(__x86_64__)
  if (has_avx512()) return adam_update_avx512(p, g, m, v, n, k);
#endif
  for (int64_t j = 0; j < n; ++j) {
    const float gj = g[j] * k.grad_scale;
    if (k.weight_decay) p[j] *= k.decay;
    m[j] = k.beta1 * m[j] + (1 - k.beta1) * gj;
    v[j] = k.beta2 * v[j] + (1 - k.beta2) * gj * gj;
    p[j] -= k.step_size * m[j] / (std::sqrt(v[j]) * k.inv_bias2_sqrt + k.eps);
  }
}

void ema_update(float* shadow, const float* p, int64_t n, double decay) {
  // Both weights rounded from double, as ATen's shadow.mul_(d).add_(p, 1 − d) does.
  const float d = static_cast<float>(decay), rest = static_cast<float>(1 - decay);
#if defined(__x86_64__)
  if (has_avx512()) return ema_update_avx512(shadow, p, n, d, rest);
#endif
  for (int64_t j = 0; j < n; ++j) shadow[j] = d * shadow[j] + rest * p[j];
}

double sum_squares(const float* g, int64_t n) {
#if defined(__x86_64__)
  if (has_avx512()) return sum_squares_avx512(g, n);
#endif
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(g[j]) * g[j];
  return sum;
}

}  // namespace scorediff
