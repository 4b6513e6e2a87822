// The SiLU MLP as one fused autograd node for training, and the bfloat16 switch of its inference path.
#pragma once
#include <torch/types.h>

#include <vector>

namespace scorediff {

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
// Whether this build can run it (libxsmm built in, or BLAS sgemm found at run time).
bool fused_mlp_available();

}  // namespace scorediff
