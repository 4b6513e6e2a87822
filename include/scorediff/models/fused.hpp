// Fused kernels for the small-model inference path, each tested against its ATen composition.
//
// Written here because no library offers them: ATen's SiLU calls Sleef's 1-ulp expf and needs a
// separate pass for the bias, and was ~30% of a sampling step's time (perf, 10 000 points, 128-wide
// MLP). This kernel adds the bias and applies SiLU in one pass with a 2-ulp exp.
#pragma once
#include <torch/types.h>

#include <vector>

namespace scorediff {

// out = silu(in + bias) for in, out [N, C] contiguous float32 or bfloat16, each either (same dtype: may
// alias), bias [C] float32. The arithmetic is float32; a bfloat16 output is rounded to nearest even.
void bias_silu_out(torch::Tensor& out, const torch::Tensor& in, const torch::Tensor& bias);

// While one is alive on this thread, the MLP's inference path (sampling, evaluation: no autograd) computes
// its hidden-layer products in bfloat16 with float32 accumulation (oneDNN; AVX-512 BF16 or AMX make it
// 2-4x faster than sgemm); the first and last layers, the biases and SiLU stay float32. Scores then carry
// a relative error of about 1e-2. sample.precision = "bfloat16" (sampling_score_fn) sets it.
class BFloat16Inference {
 public:
  explicit BFloat16Inference(bool on = true);
  ~BFloat16Inference();
  BFloat16Inference(const BFloat16Inference&) = delete;
  BFloat16Inference& operator=(const BFloat16Inference&) = delete;
  static bool active();

 private:
  bool previous_;
};

// The MLP h -> W_L silu(... silu(W_0 h + b_0) ...) + b_L as one autograd node, for training: the forward
// pass calls sgemm directly with the bias and SiLU fused into one pass that also keeps the sigmoid, and the
// backward pass calls sgemm for every weight and input gradient with SiLU' fused into the gradient pass.
// Replaces about 25 ATen operations and autograd nodes per step. input [B, n0] float32 on the CPU that does
// not require grad (its gradient is not computed), weights[l] [n_{l+1}, n_l], biases[l] [n_{l+1}].
// Not differentiable twice. Undefined Tensor when BLAS' sgemm cannot be found: use the ATen path then.
torch::Tensor mlp_silu_fused(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                             const std::vector<torch::Tensor>& biases);
bool fused_mlp_available();
// Whether MLP training uses mlp_silu_fused where it applies (default on; off for before/after
// measurements and the tests that compare both paths).
void set_fused_mlp_training(bool on);
bool fused_mlp_training();

// Per-row coefficients of a DSM loss L_i = ½ ω_i ‖α_i F_i + β_i ε_i‖² on the network output F (all [B] float32):
// with score = a_i F_i (a = 1/s, −1/s or 1: score, eps or raw output), σ² weighting is α = s a, β = 1, ω = 1
// (dsm_sigma2_loss), any other weighting λ (and σ² under importance sampling, λ = s² times the importance
// factor) is α = a, β = 1/s, ω = λ.
struct DsmRowCoefficients {
  torch::Tensor alpha, beta, omega;
};
// The DSM loss of the SiLU MLP F = mlp_silu_fused(input, weights, biases) and its parameter gradients, with no
// autograd: the same forward and backward kernels, and the loss's gradient dL̄/dF = ω α (αF + βε)/B written
// between them. Writes L_i to loss [B] and the gradients of L̄ = (1/B) Σ_i L_i to grads (dW_0, db_0, dW_1, ...),
// each reused in place when it is a contiguous float32 CPU tensor of its parameter's shape, else allocated.
// input [B, n_0] float32 on the CPU, eps [B, n_L].
void mlp_silu_dsm_gradients(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                            const std::vector<torch::Tensor>& biases, const torch::Tensor& eps, const DsmRowCoefficients& k,
                            torch::Tensor& loss, std::vector<torch::Tensor>& grads);

// Row-major float32 C[m, n] = op(A) op(B) + beta C with op(A) [m, k], op(B) [k, n]. ta: A is stored [k, m];
// tb: B is stored [n, k]; lda, ldb, ldc are the stored row lengths; beta is 0 or 1. On CPUs with AVX-512 it
// runs scorediff's register-tiled kernel (about twice OpenBLAS' speed at the small MLPs' shapes; see
// docs/performance.md), elsewhere BLAS sgemm. Summation order differs from BLAS: results agree to rounding.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc);
bool fast_gemm_available();

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

// The DSM loss with σ² weighting per sample, ½‖std·predicted + eps‖² over each row (seed 001 §5.1): one
// autograd node on the CPU in float32 (gradient for predicted only; not differentiable twice), ATen's
// composition elsewhere.
// predicted, eps [B, ...]; std [B] or [B, 1, ...].
torch::Tensor dsm_sigma2_loss(const torch::Tensor& predicted, const torch::Tensor& std, const torch::Tensor& eps);

// exp for float32 with relative error below 3e-7 (about 2 ulp) on [-87, 88], vectorised where the CPU allows;
// exposed for its test.
void fast_exp(const float* in, float* out, int64_t n);

}  // namespace scorediff
