// Adam (Kingma & Ba 2015) with the update of torch.optim.Adam, written here rather than taken from
// torch::optim because its state must live in our checkpoints under stable names, bit for bit, on
// LibTorch 1.13 and 2.x alike (torch::optim's state API differs between them).
#pragma once
#include <torch/types.h>

#include <vector>

namespace scorediff {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled (AdamW); 0 = plain Adam
};

class Adam {
 public:
  Adam(std::vector<torch::Tensor> params, AdamOptions options);
  void zero_grad();
  // Uses each parameter's .grad(), scaled by grad_scale (gradient clipping folded into the update). Float32
  // CPU tensors go through one fused pass per tensor (step_fused); others through ATen operations
  // (step_aten). The two agree to float rounding (tests/test_train.cpp).
  void step(double lr, double grad_scale = 1.0);
  void step_aten(double lr, double grad_scale = 1.0);
  void step_fused(double lr, double grad_scale = 1.0);

  int64_t steps() const { return steps_; }
  // State for checkpoints: first and second moments, one per parameter, and the step count.
  std::vector<torch::Tensor>& exp_avg() { return exp_avg_; }
  std::vector<torch::Tensor>& exp_avg_sq() { return exp_avg_sq_; }
  const std::vector<torch::Tensor>& exp_avg() const { return exp_avg_; }
  const std::vector<torch::Tensor>& exp_avg_sq() const { return exp_avg_sq_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_;
  AdamOptions options_;
  int64_t steps_ = 0;
};

// Exponential moving average of parameters, θ' ← d θ' + (1 − d) θ, with the usual warm-up
// d_n = min(decay, (1 + n)/(10 + n)) so short runs are not dominated by the initial weights.
class Ema {
 public:
  Ema(const std::vector<torch::Tensor>& params, double decay);
  // A power-function EMA (train/posthoc_ema.hpp): decay (1 − 1/t)^(γ+1) at step t, no warm-up.
  static Ema power_function(const std::vector<torch::Tensor>& params, double gamma);
  void update(const std::vector<torch::Tensor>& params, int64_t step);  // fused per float32 CPU tensor
  std::vector<torch::Tensor>& shadow() { return shadow_; }
  const std::vector<torch::Tensor>& shadow() const { return shadow_; }

 private:
  std::vector<torch::Tensor> shadow_;
  double decay_;
  double gamma_ = -1;  // ≥ 0: a power-function EMA with this exponent
};

// The total 2-norm of the parameters' gradients, as torch::nn::utils::clip_grad_norm_ computes it, and the
// factor that clipping to max_norm applies: max_norm / (norm + 1e-6) when that is below 1, else 1. The
// gradients are not modified (Adam::step takes the factor). One pass over float32 CPU gradients.
struct GradNorm {
  double norm = 0.0;
  double scale = 1.0;
};
GradNorm gradient_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace scorediff
