#include "scorediff/models/energy.hpp"

#include <torch/torch.h>

namespace scorediff {

EnergyMlpImpl::EnergyMlpImpl(const ModelOptions& o, int64_t dim, at::Generator& gen) {
  require(o.activation != "relu", "energy models need a smooth activation (silu, gelu, softplus, tanh): the score "
                                  "is the energy's gradient and training differentiates it again");
  mlp_ = register_module("energy", std::make_shared<MlpNetworkImpl>(o, dim, gen, 1));
}

torch::Tensor EnergyMlpImpl::energy(const torch::Tensor& x, const torch::Tensor& log_sigma) {
  return mlp_->forward_autograd(x, log_sigma).squeeze(1);
}

torch::Tensor EnergyMlpImpl::forward(const torch::Tensor& x, const torch::Tensor& log_sigma) {
  const bool differentiable = torch::GradMode::is_enabled() || x.requires_grad();
  // Samplers run in inference mode; the gradient of E needs autograd, on ordinary (cloned) tensors.
  c10::InferenceMode normal_mode(false);
  torch::AutoGradMode grad(true);
  torch::Tensor input = x.requires_grad() ? x : x.detach().clone().requires_grad_(true);
  torch::Tensor e = energy(input, log_sigma.clone()).sum();
  torch::Tensor g = torch::autograd::grad({e}, {input}, {}, /*retain_graph=*/differentiable, differentiable)[0];
  return differentiable ? -g : -g.detach();
}

}  // namespace scorediff
