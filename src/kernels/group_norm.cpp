// GroupNorm + SiLU in one pass (forward) and two passes (backward) per (image, group), the images and groups
// in parallel. The formulas are ATen's GroupNorm (biased variance, eps inside the root) followed by
// SiLU(z) = z·sigmoid(z), SiLU'(z) = s(1 + z(1 − s)); the backward pass is the usual normalisation gradient
//   dx = r (γ dz − mean(γ dz) − x̂ mean(γ dz x̂)),   x̂ = (x − μ) r,
// with the means over the group, written as dx = (γ r) dz + c₂ x + c₃ so that each element costs two FMAs.
#include "scorediff/kernels/group_norm.hpp"

#include "kernels/group_norm_common.hpp"

namespace scorediff {
namespace {

using namespace kernels;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float sum_avx512(const float* x, int64_t m, float shift, bool squares) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const __m512 vs = _mm512_set1_ps(shift);
  int64_t j = 0;
  for (; j + 32 <= m; j += 32) {
    __m512 a = _mm512_sub_ps(_mm512_loadu_ps(x + j), vs), b = _mm512_sub_ps(_mm512_loadu_ps(x + j + 16), vs);
    acc0 = squares ? _mm512_fmadd_ps(a, a, acc0) : _mm512_add_ps(acc0, a);
    acc1 = squares ? _mm512_fmadd_ps(b, b, acc1) : _mm512_add_ps(acc1, b);
  }
  for (; j < m; j += 16) {
    const __mmask16 k = tail_mask(m - j);
    __m512 a = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + j), vs);
    acc0 = squares ? _mm512_fmadd_ps(a, a, acc0) : _mm512_add_ps(acc0, a);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx512f"))) int64_t fill_span_avx512(const DropKeys& k, int64_t first, int64_t lo, int64_t hi,
                                                            float* out) {
  const __m512 vs = _mm512_set1_ps(k.scale);
  const __m512i steps = lane_steps(1);
  int64_t j = lo;
  for (; j + 16 <= hi; j += 16) _mm512_storeu_ps(out + j, _mm512_maskz_mov_ps(keep16(k, first + j, steps), vs));
  return j;
}

// y = act(a x + b) · dropout over m elements of a row whose first element has local flat index i0.
template <class Out>
__attribute__((target("avx512f"))) int64_t forward_span_avx512(const float* x, Out* y, int64_t m, float a, float b,
                                                               bool silu, const DropKeys& drop, int64_t i0) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vs = _mm512_set1_ps(drop.scale);
  const __m512i steps = lane_steps(1);
  int64_t j = 0;
  for (; j + 16 <= m; j += 16) {
    __m512 z = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + j), vb);
    if (silu) z = _mm512_mul_ps(z, sigmoid_avx512(z));
    if (drop.on) z = _mm512_maskz_mul_ps(keep16(drop, i0 + j, steps), z, vs);
    store16(y + j, z);
  }
  return j;
}

// dz = (dy · dropout)·SiLU'(z) (or without SiLU) into dz, with Σ dz and Σ dz·x̂ added to sums[0], sums[1].
template <class Grad>
__attribute__((target("avx512f"))) int64_t output_grad_span_avx512(const Grad* dy, const float* x, float* dz, int64_t m,
                                                                   float a, float b, float mu, float r, bool silu,
                                                                   const DropKeys& drop, int64_t i0, float* sums) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vmu = _mm512_set1_ps(mu), vr = _mm512_set1_ps(r);
  const __m512i steps = lane_steps(1);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= m; j += 16) {
    const __m512 xv = _mm512_loadu_ps(x + j);
    const __mmask16 keep = drop.on ? keep16(drop, i0 + j, steps) : __mmask16(0xFFFF);
    _mm512_storeu_ps(dz + j, output_grad16(load16(dy + j), xv, va, vb, vmu, vr, silu, drop, keep, s0, s1));
  }
  sums[0] += _mm512_reduce_add_ps(s0);
  sums[1] += _mm512_reduce_add_ps(s1);
  return j;
}

// dx = c1·dz + c2·x + c3, in place over dz.
__attribute__((target("avx512f"))) int64_t input_grad_span_avx512(const float* x, float* dx, int64_t m, float c1,
                                                                  float c2, float c3) {
  const __m512 v1 = _mm512_set1_ps(c1), v2 = _mm512_set1_ps(c2), v3 = _mm512_set1_ps(c3);
  int64_t j = 0;
  for (; j + 16 <= m; j += 16)
    _mm512_storeu_ps(dx + j, _mm512_fmadd_ps(v1, _mm512_loadu_ps(dx + j), _mm512_fmadd_ps(v2, _mm512_loadu_ps(x + j), v3)));
  return j;
}
#endif

// Σ (x − shift) or Σ (x − shift)² over m elements.
float shifted_sum(const float* x, int64_t m, float shift, bool squares, bool vec) {
#if defined(__x86_64__)
  if (vec) return sum_avx512(x, m, shift, squares);
#endif
  (void)vec;
  float total = 0;
  for (int64_t j = 0; j < m; ++j) total += squares ? (x[j] - shift) * (x[j] - shift) : x[j] - shift;
  return total;
}

}  // namespace

template <class Out>
void group_norm_act_forward(const float* x, const float* gamma, const float* beta, Out* y, float* mean, float* rstd,
                            const GroupNormShape& s, float eps, bool silu, const DropoutSpec& dropout, bool simd) {
  check_shape(gamma, beta, s);
  const DropKeys drop = drop_keys(dropout);
  const bool vec = use_avx512(simd);
  if (s.channels_last) return group_norm_act_forward_nhwc(x, gamma, beta, y, mean, rstd, s, eps, silu, drop, vec);
  const int64_t per_group = s.channels / s.groups, m = per_group * s.hw;
  parallel_groups(s.n * s.groups, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t first = (k / s.groups) * s.channels + (k % s.groups) * per_group;  // row of the group's first channel
      const float* xs = x + first * s.hw;
      const float mu = shifted_sum(xs, m, 0.0f, false, vec) / static_cast<float>(m);
      const float r = 1.0f / std::sqrt(shifted_sum(xs, m, mu, true, vec) / static_cast<float>(m) + eps);
      mean[k] = mu;
      rstd[k] = r;
      for (int64_t c = 0; c < per_group; ++c) {
        const int64_t ch = (k % s.groups) * per_group + c;
        const float a = gamma[ch] * r, b = beta[ch] - mu * a;
        const float* xc = xs + c * s.hw;
        Out* yc = y + (first + c) * s.hw;
        int64_t j = 0;
#if defined(__x86_64__)
        if (vec) j = forward_span_avx512(xc, yc, s.hw, a, b, silu, drop, (first + c) * s.hw);
#endif
        for (; j < s.hw; ++j) {
          const float z = a * xc[j] + b, v = silu ? silu_scalar(z) : z;
          yc[j] = Out(drop.on ? v * drop_scale(drop, (first + c) * s.hw + j) : v);
        }
      }
    }
  });
}

template <class Grad>
void group_norm_act_backward(const Grad* dy, const float* x, const float* gamma, const float* beta, const float* mean,
                             const float* rstd, float* dx, float* dgamma_n, float* dbeta_n, const GroupNormShape& s,
                             bool silu, const DropoutSpec& dropout, bool simd) {
  check_shape(gamma, beta, s);
  const DropKeys drop = drop_keys(dropout);
  const bool vec = use_avx512(simd);
  if (s.channels_last)
    return group_norm_act_backward_nhwc(dy, x, gamma, beta, mean, rstd, dx, dgamma_n, dbeta_n, s, silu, drop, vec);
  const int64_t per_group = s.channels / s.groups, m = per_group * s.hw;
  parallel_groups(s.n * s.groups, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t first = (k / s.groups) * s.channels + (k % s.groups) * per_group;
      const float mu = mean[k], r = rstd[k];
      float a_sum = 0, b_sum = 0;  // Σ γ dz and Σ γ dz x̂ over the group
      for (int64_t c = 0; c < per_group; ++c) {
        const int64_t ch = (k % s.groups) * per_group + c, row = first + c;
        const float a = gamma[ch] * r, b = beta[ch] - mu * a;
        const float* xc = x + row * s.hw;
        const Grad* gc = dy + row * s.hw;
        float* dz = dx + row * s.hw;
        float sums[2] = {0, 0};
        int64_t j = 0;
#if defined(__x86_64__)
        if (vec) j = output_grad_span_avx512(gc, xc, dz, s.hw, a, b, mu, r, silu, drop, row * s.hw, sums);
#endif
        for (; j < s.hw; ++j) {
          float g = static_cast<float>(gc[j]);
          if (drop.on) g *= drop_scale(drop, row * s.hw + j);
          if (silu) {
            const float z = a * xc[j] + b, sg = sigmoid_scalar(z);
            g = g * sg * (1.0f + z * (1.0f - sg));
          }
          sums[0] += g;
          sums[1] += g * (xc[j] - mu) * r;
          dz[j] = g;
        }
        dbeta_n[row] = sums[0];
        dgamma_n[row] = sums[1];
        a_sum += gamma[ch] * sums[0];
        b_sum += gamma[ch] * sums[1];
      }
      const float a_mean = a_sum / static_cast<float>(m), b_mean = b_sum / static_cast<float>(m);
      // dx = r (γ dz − a_mean − (x − μ) r b_mean) = (γ r) dz + c2 x + c3
      const float c2 = -r * r * b_mean, c3 = -r * a_mean + mu * r * r * b_mean;
      for (int64_t c = 0; c < per_group; ++c) {
        const int64_t ch = (k % s.groups) * per_group + c, row = first + c;
        const float c1 = gamma[ch] * r;
        const float* xc = x + row * s.hw;
        float* d = dx + row * s.hw;
        int64_t j = 0;
#if defined(__x86_64__)
        if (vec) j = input_grad_span_avx512(xc, d, s.hw, c1, c2, c3);
#endif
        for (; j < s.hw; ++j) d[j] = c1 * d[j] + c2 * xc[j] + c3;
      }
    }
  });
}

float dropout_scale(const DropoutSpec& d, int64_t index) {
  const DropKeys k = drop_keys(d);
  return k.on ? drop_scale(k, index) : 1.0f;
}

void dropout_scale_fill(const DropoutSpec& d, int64_t first, int64_t n, float* out) {
  const DropKeys k = drop_keys(d);
  const bool vec = use_avx512(true);
  constexpr int64_t kChunk = 16384;
  parallel_groups((n + kChunk - 1) / kChunk, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t lo = c * kChunk, hi = std::min(n, lo + kChunk);
      int64_t j = lo;
#if defined(__x86_64__)
      if (vec && k.on) j = fill_span_avx512(k, first, lo, hi, out);
#endif
      for (; j < hi; ++j) out[j] = k.on ? drop_scale(k, first + j) : 1.0f;
    }
  });
}

template void group_norm_act_forward<float>(const float*, const float*, const float*, float*, float*, float*,
                                            const GroupNormShape&, float, bool, const DropoutSpec&, bool);
template void group_norm_act_forward<c10::BFloat16>(const float*, const float*, const float*, c10::BFloat16*, float*,
                                                    float*, const GroupNormShape&, float, bool, const DropoutSpec&, bool);
template void group_norm_act_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                             const float*, float*, float*, float*, const GroupNormShape&, bool, const DropoutSpec&, bool);
template void group_norm_act_backward<c10::BFloat16>(const c10::BFloat16*, const float*, const float*, const float*,
                                                     const float*, const float*, float*, float*, float*,
                                                     const GroupNormShape&, bool, const DropoutSpec&, bool);

}  // namespace scorediff
