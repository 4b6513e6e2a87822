// GroupNorm + SiLU in channels-last layout, x [n, hw, channels]: the formulas of group_norm.cpp, arranged for a
// layout where a group's elements are short runs (4-6 channels) at every pixel. Per image: sums per channel over
// the pixels, 16 channels to a vector, then per group; the mean first and the squares around it second (two
// passes, as in NCHW); then the output, or in the backward pass the per-channel sums of dz and dz·x̂ and the input
// gradient. The images run in parallel. The vector path needs channels % 16 == 0 (every U-Net width of the
// presets); other widths take the portable loops.
#include <vector>

#include "kernels/group_norm_common.hpp"

namespace scorediff::kernels {
namespace {

// Per-channel coefficients of one image: μ and r of the channel's group, and the affine map a x + b.
struct ChannelCoefficients {
  std::vector<float> mu, r, a, b;
  explicit ChannelCoefficients(int64_t channels) : mu(channels), r(channels), a(channels), b(channels) {}
};

// Fills the per-channel vectors from the groups' μ and r (mean_i, rstd_i: this image's [groups]).
void fill_coefficients(ChannelCoefficients& k, const float* gamma, const float* beta, const float* mean_i,
                       const float* rstd_i, const GroupNormShape& s) {
  const int64_t per_group = s.channels / s.groups;
  for (int64_t c = 0; c < s.channels; ++c) {
    k.mu[c] = mean_i[c / per_group];
    k.r[c] = rstd_i[c / per_group];
    k.a[c] = gamma[c] * k.r[c];
    k.b[c] = beta[c] - k.mu[c] * k.a[c];
  }
}

// Σ over each group of per-channel values v[c], times w[c] when given.
void group_totals(const float* v, const float* w, const GroupNormShape& s, float* out) {
  const int64_t per_group = s.channels / s.groups;
  for (int64_t g = 0; g < s.groups; ++g) {
    float t = 0;
    for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c) t += w ? w[c] * v[c] : v[c];
    out[g] = t;
  }
}

#if defined(__x86_64__)
// acc[c] = Σ_p (x[p, c] − shift[c]) or its squares (shift null: 0).
__attribute__((target("avx512f"))) void channel_sums_avx512(const float* x, const GroupNormShape& s,
                                                            const float* shift, bool squares, float* acc) {
  const int64_t C = s.channels;
  for (int64_t c = 0; c < C; c += 16) {
    const __m512 sh = shift ? _mm512_loadu_ps(shift + c) : _mm512_setzero_ps();
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + 2 <= s.hw; p += 2) {
      const __m512 u = _mm512_sub_ps(_mm512_loadu_ps(x + p * C + c), sh);
      const __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + (p + 1) * C + c), sh);
      a0 = squares ? _mm512_fmadd_ps(u, u, a0) : _mm512_add_ps(a0, u);
      a1 = squares ? _mm512_fmadd_ps(v, v, a1) : _mm512_add_ps(a1, v);
    }
    for (; p < s.hw; ++p) {
      const __m512 u = _mm512_sub_ps(_mm512_loadu_ps(x + p * C + c), sh);
      a0 = squares ? _mm512_fmadd_ps(u, u, a0) : _mm512_add_ps(a0, u);
    }
    _mm512_storeu_ps(acc + c, _mm512_add_ps(a0, a1));
  }
}

// y = act(a x + b) · dropout for image i; element (p, c) has NCHW index (i C + c) hw + p.
template <class Out>
__attribute__((target("avx512f"))) void forward_image_avx512(const float* x, Out* y, const ChannelCoefficients& k,
                                                             const GroupNormShape& s, bool silu, const DropKeys& drop,
                                                             int64_t i) {
  const int64_t C = s.channels;
  const __m512 vs = _mm512_set1_ps(drop.scale);
  const __m512i steps = lane_steps(s.hw);
  for (int64_t c = 0; c < C; c += 16) {
    const __m512 va = _mm512_loadu_ps(k.a.data() + c), vb = _mm512_loadu_ps(k.b.data() + c);
    const int64_t first = (i * C + c) * s.hw;
    for (int64_t p = 0; p < s.hw; ++p) {
      __m512 z = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + p * C + c), vb);
      if (silu) z = _mm512_mul_ps(z, sigmoid_avx512(z));
      if (drop.on) z = _mm512_maskz_mul_ps(keep16(drop, first + p, steps), z, vs);
      store16(y + p * C + c, z);
    }
  }
}

// dz = (dy · dropout)·SiLU'(z) into dz; dbeta_i[c] = Σ_p dz, dgamma_i[c] = Σ_p dz x̂.
template <class Grad>
__attribute__((target("avx512f"))) void output_grad_image_avx512(const Grad* dy, const float* x, float* dz,
                                                                 const ChannelCoefficients& k, const GroupNormShape& s,
                                                                 bool silu, const DropKeys& drop, int64_t i,
                                                                 float* dgamma_i, float* dbeta_i) {
  const int64_t C = s.channels;
  const __m512i steps = lane_steps(s.hw);
  for (int64_t c = 0; c < C; c += 16) {
    const __m512 va = _mm512_loadu_ps(k.a.data() + c), vb = _mm512_loadu_ps(k.b.data() + c);
    const __m512 vmu = _mm512_loadu_ps(k.mu.data() + c), vr = _mm512_loadu_ps(k.r.data() + c);
    const int64_t first = (i * C + c) * s.hw;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (int64_t p = 0; p < s.hw; ++p) {
      const __m512 xv = _mm512_loadu_ps(x + p * C + c);
      const __mmask16 keep = drop.on ? keep16(drop, first + p, steps) : __mmask16(0xFFFF);
      _mm512_storeu_ps(dz + p * C + c,
                       output_grad16(load16(dy + p * C + c), xv, va, vb, vmu, vr, silu, drop, keep, s0, s1));
    }
    _mm512_storeu_ps(dbeta_i + c, s0);
    _mm512_storeu_ps(dgamma_i + c, s1);
  }
}

// dx = c1 dz + c2 x + c3 per channel, in place over dz.
__attribute__((target("avx512f"))) void input_grad_image_avx512(const float* x, float* dx, const float* c1,
                                                                const float* c2, const float* c3,
                                                                const GroupNormShape& s) {
  const int64_t C = s.channels;
  for (int64_t p = 0; p < s.hw; ++p)
    for (int64_t c = 0; c < C; c += 16) {
      const __m512 d = _mm512_loadu_ps(dx + p * C + c), xv = _mm512_loadu_ps(x + p * C + c);
      _mm512_storeu_ps(dx + p * C + c, _mm512_fmadd_ps(_mm512_loadu_ps(c1 + c), d,
                                                       _mm512_fmadd_ps(_mm512_loadu_ps(c2 + c), xv,
                                                                       _mm512_loadu_ps(c3 + c))));
    }
}
#endif

void channel_sums(const float* x, const GroupNormShape& s, const float* shift, bool squares, float* acc, bool vec) {
#if defined(__x86_64__)
  if (vec) return channel_sums_avx512(x, s, shift, squares, acc);
#endif
  (void)vec;
  std::fill(acc, acc + s.channels, 0.0f);
  for (int64_t p = 0; p < s.hw; ++p)
    for (int64_t c = 0; c < s.channels; ++c) {
      const float u = x[p * s.channels + c] - (shift ? shift[c] : 0.0f);
      acc[c] += squares ? u * u : u;
    }
}

}  // namespace

template <class Out>
void group_norm_act_forward_nhwc(const float* x, const float* gamma, const float* beta, Out* y, float* mean,
                                 float* rstd, const GroupNormShape& s, float eps, bool silu, const DropKeys& drop,
                                 bool vec) {
  vec = vec && s.channels % 16 == 0;
  const float m = static_cast<float>(s.channels / s.groups * s.hw);
  parallel_groups(s.n, [&](int64_t begin, int64_t end) {
    ChannelCoefficients k(s.channels);
    std::vector<float> sums(s.channels), totals(s.groups);
    for (int64_t i = begin; i < end; ++i) {
      const float* xi = x + i * s.hw * s.channels;
      float *mean_i = mean + i * s.groups, *rstd_i = rstd + i * s.groups;
      channel_sums(xi, s, nullptr, false, sums.data(), vec);
      group_totals(sums.data(), nullptr, s, totals.data());
      for (int64_t g = 0; g < s.groups; ++g) mean_i[g] = totals[g] / m;
      for (int64_t c = 0; c < s.channels; ++c) k.mu[c] = mean_i[c / (s.channels / s.groups)];
      channel_sums(xi, s, k.mu.data(), true, sums.data(), vec);
      group_totals(sums.data(), nullptr, s, totals.data());
      for (int64_t g = 0; g < s.groups; ++g) rstd_i[g] = 1.0f / std::sqrt(totals[g] / m + eps);
      fill_coefficients(k, gamma, beta, mean_i, rstd_i, s);
      Out* yi = y + i * s.hw * s.channels;
#if defined(__x86_64__)
      if (vec) {
        forward_image_avx512(xi, yi, k, s, silu, drop, i);
        continue;
      }
#endif
      for (int64_t p = 0; p < s.hw; ++p)
        for (int64_t c = 0; c < s.channels; ++c) {
          const int64_t j = p * s.channels + c;
          const float z = k.a[c] * xi[j] + k.b[c], v = silu ? silu_scalar(z) : z;
          yi[j] = Out(drop.on ? v * drop_scale(drop, (i * s.channels + c) * s.hw + p) : v);
        }
    }
  });
}

template <class Grad>
void group_norm_act_backward_nhwc(const Grad* dy, const float* x, const float* gamma, const float* beta,
                                  const float* mean, const float* rstd, float* dx, float* dgamma_n, float* dbeta_n,
                                  const GroupNormShape& s, bool silu, const DropKeys& drop, bool vec) {
  vec = vec && s.channels % 16 == 0;
  const int64_t C = s.channels, per_group = C / s.groups;
  const float m = static_cast<float>(per_group * s.hw);
  parallel_groups(s.n, [&](int64_t begin, int64_t end) {
    ChannelCoefficients k(C);
    std::vector<float> a_sum(s.groups), b_sum(s.groups), c1(C), c2(C), c3(C);
    for (int64_t i = begin; i < end; ++i) {
      const float* xi = x + i * s.hw * C;
      const Grad* gi = dy + i * s.hw * C;
      float *dxi = dx + i * s.hw * C, *dgamma_i = dgamma_n + i * C, *dbeta_i = dbeta_n + i * C;
      fill_coefficients(k, gamma, beta, mean + i * s.groups, rstd + i * s.groups, s);
#if defined(__x86_64__)
      if (vec) output_grad_image_avx512(gi, xi, dxi, k, s, silu, drop, i, dgamma_i, dbeta_i);
#endif
      if (!vec) {
        std::fill(dgamma_i, dgamma_i + C, 0.0f);
        std::fill(dbeta_i, dbeta_i + C, 0.0f);
        for (int64_t p = 0; p < s.hw; ++p)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t j = p * C + c;
            float g = static_cast<float>(gi[j]);
            if (drop.on) g *= drop_scale(drop, (i * C + c) * s.hw + p);
            if (silu) {
              const float z = k.a[c] * xi[j] + k.b[c], sg = sigmoid_scalar(z);
              g = g * sg * (1.0f + z * (1.0f - sg));
            }
            dbeta_i[c] += g;
            dgamma_i[c] += g * (xi[j] - k.mu[c]) * k.r[c];
            dxi[j] = g;
          }
      }
      group_totals(dbeta_i, gamma, s, a_sum.data());  // Σ γ dz over the group
      group_totals(dgamma_i, gamma, s, b_sum.data());  // Σ γ dz x̂
      for (int64_t c = 0; c < C; ++c) {
        const float r = k.r[c], mu = k.mu[c];
        const float a_mean = a_sum[c / per_group] / m, b_mean = b_sum[c / per_group] / m;
        c1[c] = gamma[c] * r;
        c2[c] = -r * r * b_mean;
        c3[c] = -r * a_mean + mu * r * r * b_mean;
      }
#if defined(__x86_64__)
      if (vec) {
        input_grad_image_avx512(xi, dxi, c1.data(), c2.data(), c3.data(), s);
        continue;
      }
#endif
      for (int64_t p = 0; p < s.hw; ++p)
        for (int64_t c = 0; c < C; ++c) dxi[p * C + c] = c1[c] * dxi[p * C + c] + c2[c] * xi[p * C + c] + c3[c];
    }
  });
}

template void group_norm_act_forward_nhwc<float>(const float*, const float*, const float*, float*, float*, float*,
                                                 const GroupNormShape&, float, bool, const DropKeys&, bool);
template void group_norm_act_forward_nhwc<c10::BFloat16>(const float*, const float*, const float*, c10::BFloat16*,
                                                         float*, float*, const GroupNormShape&, float, bool,
                                                         const DropKeys&, bool);
template void group_norm_act_backward_nhwc<float>(const float*, const float*, const float*, const float*,
                                                  const float*, const float*, float*, float*, float*,
                                                  const GroupNormShape&, bool, const DropKeys&, bool);
template void group_norm_act_backward_nhwc<c10::BFloat16>(const c10::BFloat16*, const float*, const float*,
                                                          const float*, const float*, const float*, float*, float*,
                                                          float*, const GroupNormShape&, bool, const DropKeys&, bool);

}  // namespace scorediff::kernels
