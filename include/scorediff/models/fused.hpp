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

// exp for float32 with relative error below 3e-7 (about 2 ulp) on [-87, 88], vectorised where the CPU allows;
// exposed for its test.
void fast_exp(const float* in, float* out, int64_t n);

}  // namespace scorediff
