// Building blocks of the fused GroupNorm + SiLU kernels (group_norm.cpp for NCHW, group_norm_nhwc.cpp for
// channels-last; internal to src/kernels): the dropout hash of DropoutSpec, the split of a loop over ATen's
// intra-op threads, and the argument checks. A file that includes it must be compiled with OpenMP where there is
// one (CMakeLists.txt).
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/simd.hpp"
#include "scorediff/core/error.hpp"
#include "scorediff/kernels/group_norm.hpp"

namespace scorediff::kernels {

inline float sigmoid_scalar(float z) { return 1.0f / (1.0f + exp_scalar(-z)); }

// The dropout hash's constants for one call (DropoutSpec in the header); on = false: no dropout.
struct DropKeys {
  bool on = false;
  uint32_t k0 = 0, k1 = 0, threshold = 0, offset = 0;
  float scale = 1;
};

inline DropKeys drop_keys(const DropoutSpec& d) {
  DropKeys k;
  if (!(d.p > 0)) return k;
  require(d.p < 1 && d.offset >= 0 && d.offset <= 0xFFFFFFFFLL,
          "dropout: p must be in [0, 1) and the global batch under 2^32 elements per layer (p {}, offset {})", d.p,
          d.offset);
  uint64_t z = d.key + 0x9E3779B97F4A7C15ULL;  // SplitMix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  k.on = true;
  k.k0 = static_cast<uint32_t>(z);
  k.k1 = static_cast<uint32_t>(z >> 32);
  k.threshold = static_cast<uint32_t>(std::min(std::ldexp(d.p, 32), 4294967295.0));
  k.offset = static_cast<uint32_t>(d.offset);
  k.scale = static_cast<float>(1.0 / (1.0 - d.p));
  return k;
}

inline uint32_t mix32(uint32_t x) {  // lowbias32
  x ^= x >> 16;
  x *= 0x7FEB352DU;
  x ^= x >> 15;
  x *= 0x846CA68BU;
  x ^= x >> 16;
  return x;
}

// The factor for local flat index i: 0 or 1/(1 − p) (the global index wraps at 2^32, which drop_keys rules out).
inline float drop_scale(const DropKeys& k, int64_t i) {
  const uint32_t g = k.offset + static_cast<uint32_t>(i);
  return mix32(mix32(g ^ k.k0) ^ k.k1) >= k.threshold ? k.scale : 0.0f;
}

// f(begin, end) over [0, n) in one contiguous chunk per ATen intra-op thread. The thread count is ATen's
// (at::get_num_threads), given explicitly: with a LibTorch that bundles its own OpenMP runtime, this file's
// runtime would otherwise pick its default, one thread per core. Each (image, group) is computed whole by one
// thread, so the result does not depend on the split.
template <class F>
void parallel_groups(int64_t n, const F& f) {
#ifdef _OPENMP
  const int threads = static_cast<int>(std::min<int64_t>(at::get_num_threads(), n));
  if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t chunk = (n + threads - 1) / threads, begin = omp_get_thread_num() * chunk;
      if (begin < n) f(begin, std::min(n, begin + chunk));
    }
    return;
  }
#endif
  f(0, n);
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) inline __m512i mix32_avx512(__m512i x) {
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7FEB352D));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(static_cast<int>(0x846CA68BU)));
  return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

// The lane offsets 0, s, 2s, ..., 15s (mod 2^32, as drop_scale's index arithmetic).
__attribute__((target("avx512f"))) inline __m512i lane_steps(int64_t s) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(s))));
}

// Which of 16 elements are kept (drop_scale's test, 16 lanes at once): lane l holds local flat index i + steps_l,
// steps = lane_steps(1) for consecutive elements.
__attribute__((target("avx512f"))) inline __mmask16 keep16(const DropKeys& k, int64_t i, __m512i steps) {
  __m512i h = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(k.offset + static_cast<uint32_t>(i))), steps);
  h = mix32_avx512(_mm512_xor_si512(h, _mm512_set1_epi32(static_cast<int>(k.k0))));
  h = mix32_avx512(_mm512_xor_si512(h, _mm512_set1_epi32(static_cast<int>(k.k1))));
  return _mm512_cmpge_epu32_mask(h, _mm512_set1_epi32(static_cast<int>(k.threshold)));
}


// One vector of the backward pass: dz = (dy · dropout)·SiLU'(z) with z = a x + b (or without SiLU), added to the
// sums Σ dz (s0) and Σ dz x̂ (s1), x̂ = (x − μ) r; returns dz. keep: the dropout mask (all ones without dropout).
__attribute__((target("avx512f"))) inline __m512 output_grad16(__m512 g, __m512 xv, __m512 va, __m512 vb, __m512 vmu,
                                                               __m512 vr, bool silu, const DropKeys& drop,
                                                               __mmask16 keep, __m512& s0, __m512& s1) {
  if (drop.on) g = _mm512_maskz_mul_ps(keep, g, _mm512_set1_ps(drop.scale));
  if (silu) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 z = _mm512_fmadd_ps(va, xv, vb), s = sigmoid_avx512(z);
    g = _mm512_mul_ps(_mm512_mul_ps(g, s), _mm512_fmadd_ps(z, _mm512_sub_ps(one, s), one));
  }
  s0 = _mm512_add_ps(s0, g);
  s1 = _mm512_fmadd_ps(g, _mm512_mul_ps(_mm512_sub_ps(xv, vmu), vr), s1);
  return g;
}
#endif

inline bool use_avx512(bool simd) {
#if defined(__x86_64__)
  return simd && has_avx512();
#else
  (void)simd;
  return false;
#endif
}

inline void check_shape(const float* gamma, const float* beta, const GroupNormShape& s) {
  require(gamma != nullptr && beta != nullptr, "group_norm_act: the fused GroupNorm needs its scale and shift");
  require(s.groups >= 1 && s.channels % s.groups == 0, "group_norm_act: {} channels do not split into {} groups",
          s.channels, s.groups);
}


// The channels-last kernels (group_norm_nhwc.cpp), with group_norm_act_forward's and _backward's arguments.
template <class Out>
void group_norm_act_forward_nhwc(const float* x, const float* gamma, const float* beta, Out* y, float* mean,
                                 float* rstd, const GroupNormShape& s, float eps, bool silu, const DropKeys& drop,
                                 bool vec);
template <class Grad>
void group_norm_act_backward_nhwc(const Grad* dy, const float* x, const float* gamma, const float* beta,
                                  const float* mean, const float* rstd, float* dx, float* dgamma_n, float* dbeta_n,
                                  const GroupNormShape& s, bool silu, const DropKeys& drop, bool vec);

}  // namespace scorediff::kernels
