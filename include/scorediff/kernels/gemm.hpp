// Small float32 matrix products for the MLPs (CPU).
#pragma once
#include <cstdint>

namespace scorediff {

// Row-major float32 C[m, n] = op(A) op(B) + beta C with op(A) [m, k], op(B) [k, n]. ta: A is stored [k, m];
// tb: B is stored [n, k]; lda, ldb, ldc are the stored row lengths; beta is 0 or 1. Runs libxsmm's JIT kernels
// where the build has libxsmm (AVX-512 or AVX2 code: about twice OpenBLAS' speed at the small MLPs' shapes with
// AVX-512, 1.03-1.40x with AVX2; docs/performance.md), else BLAS sgemm. Summation order differs from BLAS: results agree to rounding.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc);
bool fast_gemm_available();

}  // namespace scorediff
