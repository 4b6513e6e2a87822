// Activation kernels of the MLPs, each tested against its ATen composition: bias + SiLU (float32 and
// bfloat16), bias + sigmoid + SiLU keeping the sigmoid for the backward pass, SiLU', column sums, exp.
#include "scorediff/kernels/activations.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "kernels/simd.hpp"
#include "scorediff/core/error.hpp"

namespace scorediff {
namespace {

using namespace kernels;

#if defined(__x86_64__)
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

#endif

}  // namespace

// z = z + bias per row; s = sigmoid(z); h = z s. The exp is fast_exp's (2 ulp).
namespace {

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

}  // namespace

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

}  // namespace scorediff
