#include "scorediff/models/fused.hpp"

#include <dlfcn.h>
#include <torch/autograd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "scorediff/core/error.hpp"
#include "scorediff/process/noise_process.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace scorediff {
namespace {

// exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n ln 2 ∈ [−ln2/2, ln2/2]; exp(r) by its degree-6
// Taylor polynomial (truncation error ≤ 1.3e-7 relative at |r| = ln2/2; the Cody–Waite split of ln 2
// keeps r exact). Measured worst case over [-87, 88]: 2.6e-7.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kC2 = 1.0f / 2, kC3 = 1.0f / 6, kC4 = 1.0f / 24, kC5 = 1.0f / 120, kC6 = 1.0f / 720;
constexpr float kMaxX = 88.3762626647949f, kMinX = -87.3365478515625f;

inline float exp_scalar(float x) {
  x = std::fmin(std::fmax(x, kMinX), kMaxX);
  float n = std::nearbyint(x * kLog2e);
  float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = ((((kC6 * r + kC5) * r + kC4) * r + kC3) * r + kC2) * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float silu_scalar(float x) { return x / (1.0f + exp_scalar(-x)); }

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kMinX)), _mm256_set1_ps(kMaxX));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kC6), r, _mm256_set1_ps(kC5));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC2));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

__attribute__((target("avx2,fma"))) void bias_silu_avx2(float* out, const float* in, const float* bias, int64_t rows,
                                                        int64_t cols) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  for (int64_t i = 0; i < rows; ++i) {
    const float* src = in + i * cols;
    float* dst = out + i * cols;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256 v = _mm256_add_ps(_mm256_loadu_ps(src + j), _mm256_loadu_ps(bias + j));
      __m256 e = exp_avx2(_mm256_sub_ps(zero, v));
      _mm256_storeu_ps(dst + j, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; j < cols; ++j) dst[j] = silu_scalar(src[j] + bias[j]);
  }
}

__attribute__((target("avx2,fma"))) void exp_avx2_array(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp_avx2(_mm256_loadu_ps(in + i)));
  for (; i < n; ++i) out[i] = exp_scalar(in[i]);
}

__attribute__((target("avx512f"))) inline __m512 exp_avx512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kMinX)), _mm512_set1_ps(kMaxX));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kC6), r, _mm512_set1_ps(kC5));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC2));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  // 2^n exactly, including the n = 128 end of the clamp range, by scalef.
  return _mm512_scalef_ps(p, n);
}

// 1/(1 + e^−v): the reciprocal from rcp14 plus one Newton step (error < 1e-7 relative) instead of a division,
// which would cost as much as the exp.
__attribute__((target("avx512f"))) inline __m512 sigmoid_avx512(__m512 v) {
  const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), v)));
  const __m512 y = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0f)));
}

// The lanes of a 16-float vector that hold one of the `remaining` elements (all 16 when there are more).
inline __mmask16 tail_mask(int64_t remaining) {
  return static_cast<__mmask16>(remaining >= 16 ? 0xFFFFu : remaining <= 0 ? 0u : (1u << remaining) - 1);
}

// bfloat16 is the top half of a float32: widening is a shift; narrowing rounds to nearest even (finite
// values; a NaN stays a NaN).
__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const c10::BFloat16* p) {
  __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}
__attribute__((target("avx512f"))) inline void store16(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
__attribute__((target("avx512f"))) inline void store16(c10::BFloat16* p, __m512 v) {
  __m512i bits = _mm512_castps_si512(v);
  __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  bits = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16)));
}

// out = silu(in + bias) for any mix of float32 and bfloat16 input and output (bfloat16: the MLP's
// bfloat16 path). silu(v) = v · sigmoid(v).
template <class In, class Out>
__attribute__((target("avx512f"))) void bias_silu_avx512(Out* out, const In* in, const float* bias, int64_t rows,
                                                               int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    const In* src = in + i * cols;
    Out* dst = out + i * cols;
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      const __m512 v = _mm512_add_ps(load16(src + j), _mm512_loadu_ps(bias + j));
      store16(dst + j, _mm512_mul_ps(v, sigmoid_avx512(v)));
    }
    for (; j < cols; ++j) dst[j] = Out(silu_scalar(static_cast<float>(src[j]) + bias[j]));
  }
}

__attribute__((target("avx512f"))) void exp_avx512_array(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, exp_avx512(_mm512_loadu_ps(in + i)));
  for (; i < n; ++i) out[i] = exp_scalar(in[i]);
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

// Fortran BLAS sgemm, found at run time in the BLAS LibTorch loaded (libblas.so.3: OpenBLAS on Debian).
using Sgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);

Sgemm find_sgemm() {
  static const Sgemm f = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return f;
}

#if defined(__x86_64__)
// The AVX-512 small-matrix kernel. C[m, n] (+)= Σ_p A(i, p) B[p, n] with A(i, p) = a[i·rsa + p·csa] (so A may be
// stored either way round) and B row-major. A tile of C, 8 rows × 32 columns, lives in 16 zmm registers for
// the whole k loop; each step loads two vectors of B's row p and broadcasts 8 entries of A's column p, for 16
// FMAs. Column tails use masked loads and stores. The register file is written out by hand: with arrays of
// accumulators GCC spills them to the stack and the kernel runs at a third of the speed. At the MLP's shapes
// (k, n ≤ a few hundred) the operands stay in L1/L2, so no packing is needed. Measured at [256×128]·[128×128]
// on this project's AMD EPYC, 1 thread: 209 GFLOP/s, against OpenBLAS 0.3.21's 107 (Haswell kernels, which
// this machine's environment selects) and 129 (Cooperlake).
#define SD_ROW(r)                                                  \
  {                                                                \
    const __m512 av = _mm512_set1_ps(ap[(r) * rsa]);               \
    c##r##a = _mm512_fmadd_ps(av, b0, c##r##a);                    \
    c##r##b = _mm512_fmadd_ps(av, b1, c##r##b);                    \
  }
#define SD_STORE(r)                                                                      \
  {                                                                                      \
    float* cr = c + (r) * ldc;                                                           \
    if (accumulate) {                                                                    \
      c##r##a = _mm512_add_ps(c##r##a, _mm512_maskz_loadu_ps(m0, cr));                   \
      c##r##b = _mm512_add_ps(c##r##b, _mm512_maskz_loadu_ps(m1, cr + 16));              \
    }                                                                                    \
    _mm512_mask_storeu_ps(cr, m0, c##r##a);                                              \
    _mm512_mask_storeu_ps(cr + 16, m1, c##r##b);                                         \
  }

__attribute__((target("avx512f"))) void tile8x32(int64_t k, const float* a, int64_t rsa, int64_t csa, const float* b,
                                                 int64_t ldb, float* c, int64_t ldc, __mmask16 m0, __mmask16 m1,
                                                 bool accumulate) {
  __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a,
         c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + p * ldb), b1 = _mm512_maskz_loadu_ps(m1, b + p * ldb + 16);
    const float* ap = a + p * csa;
    SD_ROW(0) SD_ROW(1) SD_ROW(2) SD_ROW(3) SD_ROW(4) SD_ROW(5) SD_ROW(6) SD_ROW(7)
  }
  SD_STORE(0) SD_STORE(1) SD_STORE(2) SD_STORE(3) SD_STORE(4) SD_STORE(5) SD_STORE(6) SD_STORE(7)
}

__attribute__((target("avx512f"))) void tile1x32(int64_t k, const float* a, int64_t csa, const float* b, int64_t ldb,
                                                 float* c, __mmask16 m0, __mmask16 m1, bool accumulate) {
  __m512 ca = _mm512_setzero_ps(), cb = ca;
  for (int64_t p = 0; p < k; ++p) {
    const __m512 av = _mm512_set1_ps(a[p * csa]);
    ca = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m0, b + p * ldb), ca);
    cb = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m1, b + p * ldb + 16), cb);
  }
  if (accumulate) {
    ca = _mm512_add_ps(ca, _mm512_maskz_loadu_ps(m0, c));
    cb = _mm512_add_ps(cb, _mm512_maskz_loadu_ps(m1, c + 16));
  }
  _mm512_mask_storeu_ps(c, m0, ca);
  _mm512_mask_storeu_ps(c + 16, m1, cb);
}
#undef SD_ROW
#undef SD_STORE

// Blocking: k in slices of 256 (a slice of B's 32-column panel is 32 KB: L1), rows in blocks of 64 so that the
// block of A is reused from L1/L2 across the column panels.
__attribute__((target("avx512f"))) void gemm_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t rsa,
                                                    int64_t csa, const float* b, int64_t ldb, bool accumulate, float* c,
                                                    int64_t ldc) {
  constexpr int64_t kSlice = 256, kRowBlock = 64;
  for (int64_t p0 = 0; p0 == 0 || p0 < k; p0 += kSlice) {
    const int64_t kk = std::min(kSlice, k - p0);
    const bool acc = accumulate || p0 > 0;
    const float* as = a + p0 * csa;
    const float* bs = b + p0 * ldb;
    for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
      const int64_t i1 = std::min(m, i0 + kRowBlock);
      for (int64_t j = 0; j < n; j += 32) {
        const int64_t w = std::min<int64_t>(32, n - j);
        const __mmask16 m0 = tail_mask(w);
        const __mmask16 m1 = tail_mask(w - 16);
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8) tile8x32(kk, as + i * rsa, rsa, csa, bs + j, ldb, c + i * ldc + j, ldc, m0, m1, acc);
        for (; i < i1; ++i) tile1x32(kk, as + i * rsa, csa, bs + j, ldb, c + i * ldc + j, m0, m1, acc);
      }
    }
  }
}

// C[i, j] (+)= a_i · b_j for A [m, k] and B stored [n, k], both rows contiguous: one dot product per entry.
__attribute__((target("avx512f"))) void gemm_dots_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                                         const float* b, int64_t ldb, bool accumulate, float* c,
                                                         int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t p = 0; p < k; p += 16) {
        const __mmask16 mask = tail_mask(k - p);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i * lda + p), _mm512_maskz_loadu_ps(mask, b + j * ldb + p), acc);
      }
      const float dot = _mm512_reduce_add_ps(acc);
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + dot : dot;
    }
}
#endif

// Per-thread scratch buffers that start on a 64-byte boundary (malloc aligns to 16), so that rows whose length
// is a multiple of 16 floats are read without loads straddling two cache lines. They keep their largest size.
float* scratch(int slot, int64_t floats) {
  thread_local std::vector<float> buffers[2];
  std::vector<float>& b = buffers[slot];
  if (b.size() < static_cast<size_t>(floats + 16)) b.resize(static_cast<size_t>(floats + 16));
  auto address = reinterpret_cast<uintptr_t>(b.data());
  return b.data() + ((64 - address % 64) % 64) / sizeof(float);
}

}  // namespace

namespace {

// OpenBLAS' thread count (1 when BLAS is not OpenBLAS). The kernel above is single-threaded: on two threads it
// still beats OpenBLAS (2-thread toy training 2 021 steps/s against 624 with OpenBLAS on 11-29), but with more
// threads large products are left to OpenBLAS, which splits them across cores.
int blas_threads() {
  using GetThreads = int (*)();
  static const auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get != nullptr ? get() : 1;
}

}  // namespace

bool fast_gemm_available() {
#if defined(__x86_64__)
  if (has_avx512()) return true;
#endif
  return find_sgemm() != nullptr;
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  require(beta == 0.0f || beta == 1.0f, "gemm: beta must be 0 or 1");
  if (m <= 0 || n <= 0) return;
#if defined(__x86_64__)
  const bool large = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) >= 4.0e6;
  if (has_avx512() && !(large && blas_threads() > 2 && find_sgemm() != nullptr)) {
    // Narrow outputs (the score layer's 2 columns, the first layer's 3-column weight gradient) would fill
    // an eighth of each 32-wide tile: 10 µs each at the toy MLP's shapes, five times their FLOPs.
    if (n < 8 && m >= 16 && !ta && tb) return gemm_dots_avx512(m, n, k, a, lda, b, ldb, beta != 0.0f, c, ldc);
    if (n < 8 && m >= 16 && ta && !tb && beta == 0.0f) {
      // Cᵀ [n, m] = Bᵀ A: A stored [k, m] is row-major for the transposed product; then Cᵀ back into C.
      float* ct = scratch(0, n * m);
      gemm_avx512(n, m, k, b, 1, ldb, a, lda, false, ct, m);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = ct[j * m + i];
      return;
    }
    if (tb) {  // the kernel reads B row-major: transpose B [n, k] into a per-thread buffer first
      float* bt = scratch(1, k * n);
      constexpr int64_t kBlock = 16;  // in 16×16 blocks: both sides stay in a few cache lines
      for (int64_t j0 = 0; j0 < n; j0 += kBlock)
        for (int64_t p0 = 0; p0 < k; p0 += kBlock)
          for (int64_t j = j0, j1 = std::min(n, j0 + kBlock); j < j1; ++j)
            for (int64_t p = p0, p1 = std::min(k, p0 + kBlock); p < p1; ++p) bt[p * n + j] = b[j * ldb + p];
      b = bt;
      ldb = n;
    }
    return gemm_avx512(m, n, k, a, ta ? 1 : lda, ta ? lda : 1, b, ldb, beta != 0.0f, c, ldc);
  }
#endif
  require(find_sgemm() != nullptr, "gemm: no AVX-512 and no BLAS sgemm found");
  if (k <= 0) {  // BLAS rejects leading dimensions of 0; C = beta C
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  const char transa = tb ? 'T' : 'N', transb = ta ? 'T' : 'N';
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int LDA = static_cast<int>(ldb), LDB = static_cast<int>(lda), LDC = static_cast<int>(ldc);
  const float one = 1.0f;
  find_sgemm()(&transa, &transb, &M, &N, &K, &one, b, &LDA, a, &LDB, &beta, c, &LDC);
}

namespace {

// z = z + bias per row; s = sigmoid(z); h = z s. The exp is fast_exp's (2 ulp).
#if defined(__x86_64__)
__attribute__((target("avx512f"))) void bias_sigmoid_silu_avx512(float* z, float* s, float* h, const float* bias,
                                                                 int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; j += 16) {
      const __mmask16 mask = tail_mask(cols - j);
      const int64_t at = i * cols + j;
      const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, z + at), _mm512_maskz_loadu_ps(mask, bias + j));
      const __m512 y = sigmoid_avx512(v);
      _mm512_mask_storeu_ps(z + at, mask, v);
      _mm512_mask_storeu_ps(s + at, mask, y);
      _mm512_mask_storeu_ps(h + at, mask, _mm512_mul_ps(v, y));
    }
}

// g = g · silu'(z) = g · s (1 + z (1 − s)), n elements.
__attribute__((target("avx512f"))) void silu_backward_avx512(float* g, const float* z, const float* s, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = tail_mask(n - i);
    const __m512 sv = _mm512_maskz_loadu_ps(mask, s + i), zv = _mm512_maskz_loadu_ps(mask, z + i);
    const __m512 d = _mm512_mul_ps(sv, _mm512_fmadd_ps(zv, _mm512_sub_ps(one, sv), one));
    _mm512_mask_storeu_ps(g + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, g + i), d));
  }
}

// out[j] = Σ_i g[i, j] (+ out[j] when accumulating): the bias gradient.
__attribute__((target("avx512f"))) void column_sums_avx512(float* out, const float* g, int64_t rows, int64_t cols,
                                                           bool accumulate) {
  for (int64_t j = 0; j < cols; j += 16) {
    const __mmask16 mask = tail_mask(cols - j);
    __m512 acc = accumulate ? _mm512_maskz_loadu_ps(mask, out + j) : _mm512_setzero_ps();
    for (int64_t i = 0; i < rows; ++i) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask, g + i * cols + j));
    _mm512_mask_storeu_ps(out + j, mask, acc);
  }
}
#endif

void bias_sigmoid_silu(float* z, float* s, float* h, const float* bias, int64_t rows, int64_t cols) {
#if defined(__x86_64__)
  if (has_avx512()) return bias_sigmoid_silu_avx512(z, s, h, bias, rows, cols);
#endif
  for (int64_t i = 0; i < rows; ++i) {
    float* zi = z + i * cols;
    for (int64_t j = 0; j < cols; ++j) zi[j] = -(zi[j] + bias[j]);
    fast_exp(zi, s + i * cols, cols);  // e^{-z}
    float* si = s + i * cols;
    float* hi = h + i * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const float zj = -zi[j];
      zi[j] = zj;
      si[j] = 1.0f / (1.0f + si[j]);
      hi[j] = zj * si[j];
    }
  }
}

void silu_backward(float* g, const float* z, const float* s, int64_t n) {
#if defined(__x86_64__)
  if (has_avx512()) return silu_backward_avx512(g, z, s, n);
#endif
  for (int64_t i = 0; i < n; ++i) g[i] *= s[i] * (1.0f + z[i] * (1.0f - s[i]));
}

void column_sums(float* out, const float* g, int64_t rows, int64_t cols, bool accumulate) {
#if defined(__x86_64__)
  if (has_avx512()) return column_sums_avx512(out, g, rows, cols, accumulate);
#endif
  if (!accumulate) std::fill(out, out + cols, 0.0f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out[j] += g[i * cols + j];
}

// Whether t can take a result of this shape in place: contiguous float32 on the CPU.
bool reusable(const torch::Tensor& t, at::IntArrayRef shape) {
  return t.defined() && t.sizes() == shape && t.is_contiguous() && t.scalar_type() == torch::kFloat32 && t.device().is_cpu();
}

// A float32 CPU buffer for a [rows, cols] result: t itself when it is contiguous with cols columns and at least
// rows rows (only its first rows are used), else a new [rows, cols] tensor in its place.
float* buffer(torch::Tensor& t, int64_t rows, int64_t cols) {
  if (!(t.defined() && t.dim() == 2 && t.size(1) == cols && t.size(0) >= rows && t.is_contiguous() &&
        t.scalar_type() == torch::kFloat32 && t.device().is_cpu()))
    t = torch::empty({rows, cols}, torch::kFloat32);
  return t.data_ptr<float>();
}

// The SiLU MLP's forward pass, params W_0, b_0, W_1, b_1, ...: h_0 = input [rows, n_0] (contiguous); per hidden
// layer z = h Wᵀ + b, s = sigmoid(z), h = z s (one pass after the product); the output layer's bias rows, then
// the product onto them into the first rows of `out`. acts becomes h_0, then z, s, h of each hidden layer (for the
// backward pass). Buffers already in acts and out are written in place when they are large enough (the fused DSM
// step's workspace). transposed (optional): W_lᵀ [n_l, n_{l+1}] contiguous where defined, used instead of W_l so
// that gemm need not transpose W_l at every call (the fused DSM step calls this once per chunk of rows).
void mlp_forward(const torch::Tensor& input, at::TensorList params, std::vector<torch::Tensor>& acts, torch::Tensor& out,
                 at::TensorList transposed = {}) {
  const int64_t layers = static_cast<int64_t>(params.size()) / 2, rows = input.size(0);
  acts.resize(static_cast<size_t>(1 + 3 * (layers - 1)));
  acts[0] = input;
  for (int64_t l = 0; l < layers; ++l) {
    const float* h = acts[l == 0 ? 0 : 3 * l].data_ptr<float>();
    const torch::Tensor& w = params[2 * l];
    const float* bp = params[2 * l + 1].data_ptr<float>();
    const int64_t n = w.size(0), k = w.size(1);
    const bool has_transposed = static_cast<int64_t>(transposed.size()) > l && transposed[l].defined();
    auto product = [&](float* zp, float beta) {
      if (has_transposed) {
        gemm(false, false, rows, n, k, h, k, transposed[l].data_ptr<float>(), n, beta, zp, n);
      } else {
        gemm(false, true, rows, n, k, h, k, w.data_ptr<float>(), k, beta, zp, n);
      }
    };
    if (l + 1 == layers) {
      float* zp = buffer(out, rows, n);
      for (int64_t i = 0; i < rows; ++i) std::memcpy(zp + i * n, bp, n * sizeof(float));
      product(zp, 1.0f);
      return;
    }
    float* zp = buffer(acts[1 + 3 * l], rows, n);
    product(zp, 0.0f);
    bias_sigmoid_silu(zp, buffer(acts[2 + 3 * l], rows, n), buffer(acts[3 + 3 * l], rows, n), bp, rows, n);
  }
}

// The backward pass from g = dL/d(output) [rows, n_L] (read only): dW_l = g_lᵀ h_l and db_l = Σ_rows g_l into
// grads[2l], grads[2l + 1] (added to them when accumulating); g_{l−1} = (g_l W_l) silu'(z_{l−1}) with
// silu'(z) = s (1 + z (1 − s)), into scratch[l − 1]. Gradients are written in place when they are contiguous
// float32 CPU tensors of the parameter's shape, else allocated (which needs accumulate false); scratch buffers as
// in mlp_forward. acts as mlp_forward leaves them. The input's gradient is not computed.
void mlp_backward(const float* g, int64_t rows, const std::vector<torch::Tensor>& acts, at::TensorList weights,
                  std::vector<torch::Tensor>& grads, std::vector<torch::Tensor>& scratch, bool accumulate) {
  const int64_t layers = static_cast<int64_t>(weights.size());
  grads.resize(static_cast<size_t>(2 * layers));
  scratch.resize(static_cast<size_t>(layers - 1));
  for (int64_t l = layers - 1; l >= 0; --l) {
    const float* h = acts[l == 0 ? 0 : 3 * l].data_ptr<float>();
    const torch::Tensor& w = weights[l];
    const int64_t n = w.size(0), k = w.size(1);
    const bool in_place = reusable(grads[2 * l], w.sizes()) && reusable(grads[2 * l + 1], {n});
    TORCH_INTERNAL_ASSERT(in_place || !accumulate, "mlp_backward: accumulating into gradients it had to allocate");
    if (!in_place) {
      grads[2 * l] = torch::empty({n, k}, torch::kFloat32);
      grads[2 * l + 1] = torch::empty({n}, torch::kFloat32);
    }
    gemm(true, false, n, k, rows, g, n, h, k, accumulate ? 1.0f : 0.0f, grads[2 * l].data_ptr<float>(), k);
    column_sums(grads[2 * l + 1].data_ptr<float>(), g, rows, n, accumulate);
    if (l == 0) break;
    float* dh = buffer(scratch[l - 1], rows, k);
    gemm(false, false, rows, k, n, g, n, w.data_ptr<float>(), k, 0.0f, dh, k);
    silu_backward(dh, acts[1 + 3 * (l - 1)].data_ptr<float>(), acts[2 + 3 * (l - 1)].data_ptr<float>(), rows * k);
    g = dh;
  }
}

class FusedMlp : public torch::autograd::Function<FusedMlp> {
 public:
  // params: W_0, b_0, W_1, b_1, ... Saved for backward: mlp_forward's activations, then the weights.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                                                at::TensorList params) {
    const int64_t layers = static_cast<int64_t>(params.size()) / 2;
    std::vector<torch::Tensor> saved;
    torch::Tensor out;
    mlp_forward(input.contiguous(), params, saved, out);
    for (int64_t l = 0; l < layers; ++l) saved.push_back(params[2 * l]);
    ctx->save_for_backward(saved);
    ctx->saved_data["layers"] = layers;
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const int64_t layers = ctx->saved_data["layers"].toInt();
    auto saved = ctx->get_saved_variables();
    const std::vector<torch::Tensor> acts(saved.begin(), saved.end() - layers);
    const std::vector<torch::Tensor> weights(saved.end() - layers, saved.end());
    std::vector<torch::Tensor> grads, scratch;
    const torch::Tensor g = grad_output[0].contiguous();
    mlp_backward(g.data_ptr<float>(), g.size(0), acts, weights, grads, scratch, false);
    grads.insert(grads.begin(), torch::Tensor());  // the input's (not computed)
    return grads;
  }
};

// ½‖s·p + ε‖² per row, for DSM with σ² weighting: one pass forward, one backward (dL/dp = g·s·(s·p + ε)),
// instead of five ATen operations and five autograd nodes.
class DsmSigma2Loss : public torch::autograd::Function<DsmSigma2Loss> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& predicted,
                                                const torch::Tensor& std, const torch::Tensor& eps) {
    const int64_t rows = predicted.size(0), cols = predicted.numel() / std::max<int64_t>(rows, 1);
    const torch::Tensor p = predicted.contiguous(), e = eps.contiguous(), s = std.contiguous();
    torch::Tensor residual = torch::empty({rows, cols}, p.options()), loss = torch::empty({rows}, p.options());
    const float *pp = p.data_ptr<float>(), *ep = e.data_ptr<float>(), *sp = s.data_ptr<float>();
    float* rp = residual.data_ptr<float>();
    float* lp = loss.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i) {
      double sum = 0.0;  // rows of images are thousands of entries long
      for (int64_t j = 0; j < cols; ++j) {
        const float r = sp[i] * pp[i * cols + j] + ep[i * cols + j];
        rp[i * cols + j] = r;
        sum += static_cast<double>(r) * r;
      }
      lp[i] = static_cast<float>(0.5 * sum);
    }
    ctx->save_for_backward({residual, s});
    ctx->saved_data["shape"] = predicted.sizes().vec();
    return {loss};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& residual = saved[0];
    const torch::Tensor& s = saved[1];
    const torch::Tensor g = grad_output[0].contiguous();
    const int64_t rows = residual.size(0), cols = residual.size(1);
    torch::Tensor grad = torch::empty({rows, cols}, residual.options());
    const float *rp = residual.data_ptr<float>(), *sp = s.data_ptr<float>(), *gp = g.data_ptr<float>();
    float* out = grad.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i) {
      const float f = gp[i] * sp[i];
      for (int64_t j = 0; j < cols; ++j) out[i * cols + j] = f * rp[i * cols + j];
    }
    return {grad.view(ctx->saved_data["shape"].toIntVector()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dsm_sigma2_loss(const torch::Tensor& predicted, const torch::Tensor& std, const torch::Tensor& eps) {
  require(predicted.dim() >= 1 && eps.sizes() == predicted.sizes() && std.numel() == predicted.size(0),
          "dsm_sigma2_loss: expects predicted and eps of one shape [B, ...] and one std per row");
  const bool fused = predicted.device().is_cpu() && predicted.scalar_type() == torch::kFloat32 &&
                     eps.scalar_type() == torch::kFloat32 && std.scalar_type() == torch::kFloat32 && eps.device().is_cpu() &&
                     std.device().is_cpu() && !eps.requires_grad() && !std.requires_grad();
  if (!fused) return 0.5 * (per_sample(std, predicted) * predicted + eps).pow(2).flatten(1).sum(1);
  return DsmSigma2Loss::apply(predicted, std.reshape({-1}), eps)[0];
}

void fast_exp(const float* in, float* out, int64_t n) {
#if defined(__x86_64__)
  if (has_avx512()) return exp_avx512_array(in, out, n);
  if (has_avx2()) return exp_avx2_array(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = exp_scalar(in[i]);
}

void bias_silu_out(torch::Tensor& out, const torch::Tensor& in, const torch::Tensor& bias) {
  auto float_or_bf16 = [](const torch::Tensor& t) {
    return t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16;
  };
  require(float_or_bf16(in) && float_or_bf16(out) && in.is_contiguous() && out.is_contiguous() && in.dim() == 2 &&
              out.sizes() == in.sizes() && bias.numel() == in.size(1) && bias.is_contiguous() &&
              bias.scalar_type() == torch::kFloat32,
          "bias_silu_out: expects contiguous float32 or bfloat16 [N, C] tensors and a float32 [C] bias");
  if (in.scalar_type() == torch::kBFloat16 || out.scalar_type() == torch::kBFloat16) {
#if defined(__x86_64__)
    if (has_avx512()) {
      const float* b = bias.data_ptr<float>();
      const int64_t rows = in.size(0), cols = in.size(1);
      const bool in16 = in.scalar_type() == torch::kBFloat16, out16 = out.scalar_type() == torch::kBFloat16;
      using B = c10::BFloat16;
      if (in16 && out16) return bias_silu_avx512(out.data_ptr<B>(), in.data_ptr<B>(), b, rows, cols);
      if (in16) return bias_silu_avx512(out.data_ptr<float>(), in.data_ptr<B>(), b, rows, cols);
      return bias_silu_avx512(out.data_ptr<B>(), in.data_ptr<float>(), b, rows, cols);
    }
#endif
    // Elsewhere through float32, with ATen's conversions (same rounding).
    torch::Tensor widened = in.to(torch::kFloat32).contiguous(), result = torch::empty_like(widened);
    bias_silu_out(result, widened, bias);
    out.copy_(result);
    return;
  }
  const float* src = in.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const int64_t rows = in.size(0), cols = in.size(1);
#if defined(__x86_64__)
  if (has_avx512()) return bias_silu_avx512(dst, src, b, rows, cols);
  if (has_avx2()) return bias_silu_avx2(dst, src, b, rows, cols);
#endif
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * cols + j] = silu_scalar(src[i * cols + j] + b[j]);
}

#if defined(__x86_64__)
namespace {
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

namespace {
std::atomic<bool> fused_training_on{true};
thread_local bool bfloat16_inference = false;
}  // namespace

BFloat16Inference::BFloat16Inference(bool on) : previous_(bfloat16_inference) { bfloat16_inference = on; }
BFloat16Inference::~BFloat16Inference() { bfloat16_inference = previous_; }
bool BFloat16Inference::active() { return bfloat16_inference; }

bool fused_mlp_available() { return fast_gemm_available(); }
void set_fused_mlp_training(bool on) { fused_training_on = on; }
bool fused_mlp_training() { return fused_training_on && fused_mlp_available(); }

namespace {
// W_0, b_0, W_1, b_1, ... after checking that each is contiguous float32 and that the shapes chain from an input
// of n_0 columns: W_l [n_{l+1}, n_l], b_l [n_{l+1}] (the kernels read raw pointers).
std::vector<torch::Tensor> interleaved(const std::vector<torch::Tensor>& weights, const std::vector<torch::Tensor>& biases,
                                       int64_t n0, const char* who) {
  std::vector<torch::Tensor> params;
  int64_t in = n0;
  for (size_t l = 0; l < weights.size(); ++l) {
    require(weights[l].is_contiguous() && biases[l].is_contiguous() && weights[l].scalar_type() == torch::kFloat32 &&
                biases[l].scalar_type() == torch::kFloat32,
            "{}: weights and biases must be contiguous float32", who);
    require(weights[l].dim() == 2 && weights[l].size(1) == in && biases[l].dim() == 1 && biases[l].size(0) == weights[l].size(0),
            "{}: layer {} has weight [{}] and bias [{}] after {} inputs", who, l, fmt::join(weights[l].sizes(), ", "),
            fmt::join(biases[l].sizes(), ", "), in);
    in = weights[l].size(0);
    params.push_back(weights[l]);
    params.push_back(biases[l]);
  }
  return params;
}
}  // namespace

torch::Tensor mlp_silu_fused(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                             const std::vector<torch::Tensor>& biases) {
  require(input.scalar_type() == torch::kFloat32 && input.device().is_cpu() && input.dim() == 2 && !input.requires_grad() &&
              !weights.empty() && weights.size() == biases.size(),
          "mlp_silu_fused: expects a float32 CPU [B, n] input without grad and one bias per weight");
  if (!fused_mlp_available()) return {};
  return FusedMlp::apply(input, at::TensorList(interleaved(weights, biases, input.size(1), "mlp_silu_fused")))[0];
}

void mlp_silu_dsm_gradients(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                            const std::vector<torch::Tensor>& biases, const torch::Tensor& eps, const DsmRowCoefficients& k,
                            torch::Tensor& loss, std::vector<torch::Tensor>& grads) {
  const int64_t rows = input.size(0);
  require(input.scalar_type() == torch::kFloat32 && input.device().is_cpu() && input.dim() == 2 && rows > 0 &&
              !weights.empty() && weights.size() == biases.size() && fused_mlp_available(),
          "mlp_silu_dsm_gradients: expects a float32 CPU [B, n] input, one bias per weight, and AVX-512 or BLAS");
  const int64_t cols = weights.back().size(0);
  auto row_vector = [&](const torch::Tensor& v) {
    return v.scalar_type() == torch::kFloat32 && v.device().is_cpu() && v.is_contiguous() && v.numel() == rows;
  };
  require(eps.scalar_type() == torch::kFloat32 && eps.device().is_cpu() && eps.is_contiguous() && eps.dim() == 2 &&
              eps.size(0) == rows && eps.size(1) == cols && row_vector(k.alpha) && row_vector(k.beta) && row_vector(k.omega),
          "mlp_silu_dsm_gradients: eps must be [B, outputs] and alpha, beta, omega [B], contiguous float32 on the CPU");
  // Rows in chunks whose activations stay in L2 (256 rows of width 128: 128 KB per buffer), the weight and bias
  // gradients summed over the chunks; the buffers are kept per thread between calls, so a step allocates nothing.
  constexpr int64_t kChunk = 256;
  thread_local std::vector<torch::Tensor> acts, scratch;
  thread_local torch::Tensor out;
  const torch::Tensor in = input.contiguous();
  const std::vector<torch::Tensor> params = interleaved(weights, biases, input.size(1), "mlp_silu_dsm_gradients");
  if (!reusable(loss, {rows})) loss = torch::empty({rows}, in.options());
  float* lp = loss.data_ptr<float>();
  const float *ep = eps.data_ptr<float>(), *ap = k.alpha.data_ptr<float>(), *bp = k.beta.data_ptr<float>(),
              *wp = k.omega.data_ptr<float>();
  const float inv_rows = 1.0f / static_cast<float>(rows);
  // Wᵀ once per call rather than once per chunk, which gemm would do; not for outputs narrower than 8 columns (the
  // score layer of 2-D data), which gemm computes as dot products of W's rows.
  std::vector<torch::Tensor> transposed;
  if (rows > kChunk)
    for (const auto& w : weights) transposed.push_back(w.size(0) >= 8 ? w.t().contiguous() : torch::Tensor());
  for (int64_t start = 0; start < rows; start += kChunk) {
    const int64_t len = std::min(kChunk, rows - start);
    mlp_forward(in.narrow(0, start, len), params, acts, out, transposed);
    // r = αF + βε, L = ½ω‖r‖² per row (summed in double, as dsm_sigma2_loss), then out ← dL̄/dF = ωαr/B in place.
    float* f = out.data_ptr<float>();
    for (int64_t r0 = 0; r0 < len; ++r0) {
      const int64_t i = start + r0;
      double sum = 0.0;
      const float g = wp[i] * ap[i] * inv_rows;
      for (int64_t j = 0; j < cols; ++j) {
        const float r = ap[i] * f[r0 * cols + j] + bp[i] * ep[i * cols + j];
        sum += static_cast<double>(r) * r;
        f[r0 * cols + j] = g * r;
      }
      lp[i] = static_cast<float>(0.5 * wp[i] * sum);
    }
    mlp_backward(f, len, acts, weights, grads, scratch, start > 0);
  }
  acts[0] = torch::Tensor();  // not the caller's input
}

}  // namespace scorediff
