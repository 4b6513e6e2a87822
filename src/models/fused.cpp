#include "scorediff/models/fused.hpp"

#include <dlfcn.h>
#include <torch/autograd.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "scorediff/core/error.hpp"

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
// bfloat16 path). silu(v) = v · 1/(1 + e^−v): the reciprocal from rcp14 plus one Newton step (error
// < 1e-7 relative) instead of a division, which would cost as much as the exp.
template <class In, class Out>
__attribute__((target("avx512f"))) void bias_silu_avx512(Out* out, const In* in, const float* bias, int64_t rows,
                                                               int64_t cols) {
  const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f), zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < rows; ++i) {
    const In* src = in + i * cols;
    Out* dst = out + i * cols;
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      __m512 v = _mm512_add_ps(load16(src + j), _mm512_loadu_ps(bias + j));
      __m512 d = _mm512_add_ps(one, exp_avx512(_mm512_sub_ps(zero, v)));
      __m512 y = _mm512_rcp14_ps(d);
      y = _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, two));
      store16(dst + j, _mm512_mul_ps(v, y));
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

// Row-major C[m, n] = op(A) op(B) + beta C, op(A) [m, k], op(B) [k, n]; ta: A is stored [k, m], tb: B is
// stored [n, k]; lda, ldb, ldc are the stored row lengths. Column-major BLAS computes Cᵀ = op(B)ᵀ op(A)ᵀ.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  const char transa = tb ? 'T' : 'N', transb = ta ? 'T' : 'N';
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int LDA = static_cast<int>(ldb), LDB = static_cast<int>(lda), LDC = static_cast<int>(ldc);
  const float one = 1.0f;
  find_sgemm()(&transa, &transb, &M, &N, &K, &one, b, &LDA, a, &LDB, &beta, c, &LDC);
}

// z = z + bias per row; s = sigmoid(z); h = z s. The exp is fast_exp's (2 ulp).
void bias_sigmoid_silu(float* z, float* s, float* h, const float* bias, int64_t rows, int64_t cols) {
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

class FusedMlp : public torch::autograd::Function<FusedMlp> {
 public:
  // params: W_0, b_0, W_1, b_1, ... Saved for backward: h_0 (the input), then per hidden layer l the
  // pre-activation z_l, the sigmoid s_l and the output h_{l+1}, then the weights.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                                                at::TensorList params) {
    const int64_t layers = static_cast<int64_t>(params.size()) / 2, rows = input.size(0);
    torch::Tensor h = input.contiguous();
    torch::autograd::variable_list saved{h};
    for (int64_t l = 0; l < layers; ++l) {
      const torch::Tensor& w = params[2 * l];
      const torch::Tensor& b = params[2 * l + 1];
      const int64_t out = w.size(0), in = w.size(1);
      torch::Tensor z = torch::empty({rows, out}, h.options());
      float* zp = z.data_ptr<float>();
      if (l + 1 == layers) {  // output layer: bias rows first, then accumulate the product onto them
        const float* bp = b.data_ptr<float>();
        for (int64_t i = 0; i < rows; ++i) std::memcpy(zp + i * out, bp, out * sizeof(float));
        gemm(false, true, rows, out, in, h.data_ptr<float>(), in, w.data_ptr<float>(), in, 1.0f, zp, out);
        h = z;
        break;
      }
      gemm(false, true, rows, out, in, h.data_ptr<float>(), in, w.data_ptr<float>(), in, 0.0f, zp, out);
      torch::Tensor sig = torch::empty_like(z), next = torch::empty_like(z);
      bias_sigmoid_silu(zp, sig.data_ptr<float>(), next.data_ptr<float>(), b.data_ptr<float>(), rows, out);
      saved.insert(saved.end(), {z, sig, next});
      h = next;
    }
    for (int64_t l = 0; l < layers; ++l) saved.push_back(params[2 * l]);
    ctx->save_for_backward(saved);
    ctx->saved_data["layers"] = layers;
    return {h};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const int64_t layers = ctx->saved_data["layers"].toInt();
    auto saved = ctx->get_saved_variables();
    torch::Tensor g = grad_output[0].contiguous();
    const int64_t rows = g.size(0);
    torch::autograd::variable_list grads(1 + 2 * layers);  // input (not computed), then W_l, b_l
    for (int64_t l = layers - 1; l >= 0; --l) {
      const torch::Tensor& h = l == 0 ? saved[0] : saved[3 * l];
      const torch::Tensor& w = saved[1 + 3 * (layers - 1) + l];
      const int64_t out = w.size(0), in = w.size(1);
      const float* gp = g.data_ptr<float>();
      torch::Tensor dw = torch::empty({out, in}, g.options()), db = torch::zeros({out}, g.options());
      gemm(true, false, out, in, rows, gp, out, h.data_ptr<float>(), in, 0.0f, dw.data_ptr<float>(), in);
      float* dbp = db.data_ptr<float>();
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < out; ++j) dbp[j] += gp[i * out + j];
      grads[1 + 2 * l] = dw;
      grads[2 + 2 * l] = db;
      if (l == 0) break;
      // dL/dh_l, then through SiLU: silu'(z) = s (1 + z (1 - s)).
      torch::Tensor dh = torch::empty({rows, in}, g.options());
      float* dhp = dh.data_ptr<float>();
      gemm(false, false, rows, in, out, gp, out, w.data_ptr<float>(), in, 0.0f, dhp, in);
      const float* zp = saved[1 + 3 * (l - 1)].data_ptr<float>();
      const float* sp = saved[2 + 3 * (l - 1)].data_ptr<float>();
      for (int64_t i = 0, n = rows * in; i < n; ++i) dhp[i] *= sp[i] * (1.0f + zp[i] * (1.0f - sp[i]));
      g = dh;
    }
    return grads;
  }
};

}  // namespace

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

namespace {
std::atomic<bool> fused_training_on{true};
thread_local bool bfloat16_inference = false;
}  // namespace

BFloat16Inference::BFloat16Inference(bool on) : previous_(bfloat16_inference) { bfloat16_inference = on; }
BFloat16Inference::~BFloat16Inference() { bfloat16_inference = previous_; }
bool BFloat16Inference::active() { return bfloat16_inference; }

bool fused_mlp_available() { return find_sgemm() != nullptr; }
void set_fused_mlp_training(bool on) { fused_training_on = on; }
bool fused_mlp_training() { return fused_training_on && fused_mlp_available(); }

torch::Tensor mlp_silu_fused(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                             const std::vector<torch::Tensor>& biases) {
  require(input.scalar_type() == torch::kFloat32 && input.device().is_cpu() && input.dim() == 2 && !input.requires_grad() &&
              !weights.empty() && weights.size() == biases.size(),
          "mlp_silu_fused: expects a float32 CPU [B, n] input without grad and one bias per weight");
  if (!fused_mlp_available()) return {};
  std::vector<torch::Tensor> params;
  for (size_t l = 0; l < weights.size(); ++l) {
    require(weights[l].is_contiguous() && biases[l].is_contiguous() && weights[l].scalar_type() == torch::kFloat32,
            "mlp_silu_fused: weights and biases must be contiguous float32");
    params.push_back(weights[l]);
    params.push_back(biases[l]);
  }
  return FusedMlp::apply(input, at::TensorList(params))[0];
}

}  // namespace scorediff
