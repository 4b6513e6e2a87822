// Energy-based models (seed 002 §1): p_θ(x) = exp(−E_θ(x))/Z_θ, score −∇ₓE_θ by autograd, so Z_θ
// never appears. Trainable with every objective; the samplers see an ordinary ScoreFn.
#pragma once
#include "scorediff/models/mlp.hpp"

namespace scorediff {

class EnergyMlpImpl : public ScoreNetworkImpl {
 public:
  EnergyMlpImpl(const ModelOptions& options, int64_t dim, at::Generator& gen);
  // −∇ₓE(x, σ) [B, D]. Differentiable (create_graph) when autograd is on or x requires grad, so it
  // trains with DSM and with objectives that differentiate the score again (ISM, SSM); usable inside
  // samplers' inference mode too.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& log_sigma) override;
  bool has_energy() const override { return true; }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& log_sigma) override;  // [B]

 private:
  std::shared_ptr<MlpNetworkImpl> mlp_;
};

}  // namespace scorediff
