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
  void step(double lr);  // uses each parameter's .grad()

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
  void update(const std::vector<torch::Tensor>& params, int64_t step);
  std::vector<torch::Tensor>& shadow() { return shadow_; }
  const std::vector<torch::Tensor>& shadow() const { return shadow_; }

 private:
  std::vector<torch::Tensor> shadow_;
  double decay_;
};

}  // namespace scorediff
