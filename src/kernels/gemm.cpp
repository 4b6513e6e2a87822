// Small float32 GEMM for the MLPs: libxsmm's JIT kernels (Debian libxsmm-dev), BLAS sgemm without it.
//
// libxsmm replaced scorediff's own AVX-512 register-tiled kernel on 2026-12-02: at the MLPs' shapes (batch 256
// and 4 096, widths 128 and 256, the three layouts of a layer) it ran within 10 % of ours at one thread, and a
// whole toy training step and sampling step ran at the same speed (docs/performance.md, "libxsmm"). It also
// has AVX2 code, where ours fell back to OpenBLAS: 1.03-1.40x OpenBLAS' speed there.
#include "scorediff/kernels/gemm.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "scorediff/core/error.hpp"

#if SCOREDIFF_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

namespace scorediff {
namespace {

// Fortran BLAS sgemm, found at run time in the BLAS LibTorch loaded (libblas.so.3: OpenBLAS on Debian).
using Sgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);

Sgemm find_sgemm() {
  static const Sgemm f = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return f;
}

// OpenBLAS' thread count (1 when BLAS is not OpenBLAS). libxsmm's kernels are single-threaded: with more than
// two threads, large products are left to OpenBLAS, which splits them across cores.
int blas_threads() {
  using GetThreads = int (*)();
  static const auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get != nullptr ? get() : 1;
}

void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float beta, float* c, int64_t ldc) {
  require(find_sgemm() != nullptr, "gemm: neither libxsmm nor a BLAS sgemm is available");
  // Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ.
  const char transa = tb ? 'T' : 'N', transb = ta ? 'T' : 'N';
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int LDA = static_cast<int>(ldb), LDB = static_cast<int>(lda), LDC = static_cast<int>(ldc);
  const float one = 1.0f;
  find_sgemm()(&transa, &transb, &M, &N, &K, &one, b, &LDA, a, &LDB, &beta, c, &LDC);
}

#if SCOREDIFF_HAVE_LIBXSMM
// A per-thread buffer for a transposed operand that starts on a 64-byte boundary (malloc aligns to 16), so
// rows whose length is a multiple of 16 floats are read without loads straddling two cache lines.
float* scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < static_cast<size_t>(floats + 16)) buffer.resize(static_cast<size_t>(floats + 16));
  auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + ((64 - address % 64) % 64) / sizeof(float);
}

// libxsmm's kernels are column-major: row-major C [m, n] is column-major Cᵀ [n × m] = op(B)ᵀ [n × k] · op(A)ᵀ
// [k × m]. One kernel per block of 512 rows of C and slice of 256 of k (accumulated), dispatched by shape
// (libxsmm keeps them). A transposed A is libxsmm's TRANS_B; a transposed B, which libxsmm 1.17 cannot JIT, is
// transposed into a buffer first, in 16×16 blocks.
void gemm_libxsmm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc) {
  if (tb) {
    float* bt = scratch(k * n);
    constexpr int64_t kBlock = 16;
    for (int64_t j0 = 0; j0 < n; j0 += kBlock)
      for (int64_t p0 = 0; p0 < k; p0 += kBlock)
        for (int64_t j = j0, j1 = std::min(n, j0 + kBlock); j < j1; ++j)
          for (int64_t p = p0, p1 = std::min(k, p0 + kBlock); p < p1; ++p) bt[p * n + j] = b[j * ldb + p];
    b = bt;
    ldb = n;
  }
  // Rows per kernel call: 512 ran sampling 4 % faster than 64 (fewer dispatches) and training as fast.
  constexpr int64_t kRows = 512, kSlice = 256;
  const int flags = ta ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_PREFETCH_NONE;
  const float alpha = 1.0f;
  for (int64_t i0 = 0; i0 < m; i0 += kRows) {
    const int64_t rows = std::min(kRows, m - i0);
    for (int64_t p0 = 0; p0 < k; p0 += kSlice) {
      const int64_t kk = std::min(kSlice, k - p0);
      const float block_beta = p0 > 0 ? 1.0f : beta;
      const libxsmm_blasint M = n, N = rows, K = kk, LDA = ldb, LDB = lda, LDC = ldc;
      const libxsmm_smmfunction kernel =
          libxsmm_smmdispatch(M, N, K, &LDA, &LDB, &LDC, &alpha, &block_beta, &flags, &prefetch);
      if (kernel == nullptr) {  // a shape libxsmm does not generate: BLAS for this block
        blas_gemm(ta, false, rows, n, kk, ta ? a + p0 * lda + i0 : a + i0 * lda + p0, lda, b + p0 * ldb, ldb,
                  block_beta, c + i0 * ldc, ldc);
        continue;
      }
      kernel(b + p0 * ldb, ta ? a + p0 * lda + i0 : a + i0 * lda + p0, c + i0 * ldc);
    }
  }
}
#endif

}  // namespace

bool fast_gemm_available() {
#if SCOREDIFF_HAVE_LIBXSMM
  return true;
#else
  return find_sgemm() != nullptr;
#endif
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  require(beta == 0.0f || beta == 1.0f, "gemm: beta must be 0 or 1");
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // C = beta C; BLAS rejects leading dimensions of 0
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
#if SCOREDIFF_HAVE_LIBXSMM
  const bool large = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) >= 4.0e6;
  if (!(large && blas_threads() > 2 && find_sgemm() != nullptr))
    return gemm_libxsmm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
#endif
  blas_gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace scorediff
