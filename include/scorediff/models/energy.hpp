// Energy-based models (seed 002 §1): p_θ(x) = exp(−E_θ(x))/Z_θ, score −∇ₓE_θ by autograd, so Z_θ
// never appears. Trainable with every objective, and by contrastive divergence (objective.name = cd);
// the samplers see an ordinary ScoreFn.
#pragma once
#include "scorediff/models/mlp.hpp"

namespace scorediff {

// The score of any energy network: forward() is −∇ₓE by autograd.
class EnergyNetworkImpl : public ScoreNetworkImpl {
 public:
  // −∇ₓE(x, σ), shaped like x. Differentiable (create_graph) when autograd is on or x requires grad, so it
  // trains with DSM and with objectives that differentiate the score again (ISM, SSM); usable inside
  // samplers' inference mode too.
  // Energy networks have no classes: defined labels are refused.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels = {}) override;
  bool has_energy() const override { return true; }
};

class EnergyMlpImpl : public EnergyNetworkImpl {
 public:
  EnergyMlpImpl(const ModelOptions& options, int64_t dim, at::Generator& gen);
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& log_sigma) override;  // [B]

 private:
  std::shared_ptr<MlpNetworkImpl> mlp_;
};

// A convolutional energy for images (model.name = energy-cnn): a 3×3 convolution at full resolution, then
// stages at 1/2 and 1/4 resolution (a stride-2 and a stride-1 convolution each) with model.channels × 1,
// 2, 4 channels and SiLU, log σ entering as a per-channel bias (Fourier features, one linear layer) after
// the first convolution, the mean over positions, and a linear read-out to E. Smooth throughout, so
// −∇ₓE can be differentiated again.
class EnergyCnnImpl : public EnergyNetworkImpl {
 public:
  EnergyCnnImpl(const ModelOptions& options, int64_t dim, at::Generator& gen);
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& log_sigma) override;  // [B]

 private:
  std::vector<int64_t> shape_;  // [C, H, W]
  FourierFeatures features_{nullptr};
  torch::nn::Linear embed_{nullptr}, out_{nullptr};
  std::vector<torch::nn::Conv2d> convs_;
};

}  // namespace scorediff
