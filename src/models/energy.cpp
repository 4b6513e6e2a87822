#include "scorediff/models/energy.hpp"

#include <torch/torch.h>

#include "scorediff/models/init.hpp"

namespace scorediff {

torch::Tensor EnergyNetworkImpl::forward(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels) {
  require(!labels.defined(), "energy models have no class conditioning (model.classes must be 0)");
  const bool differentiable = torch::GradMode::is_enabled() || x.requires_grad();
  // Samplers run in inference mode; the gradient of E needs autograd, on ordinary (cloned) tensors.
  c10::InferenceMode normal_mode(false);
  torch::AutoGradMode grad(true);
  torch::Tensor input = x.requires_grad() ? x : x.detach().clone().requires_grad_(true);
  torch::Tensor e = energy(input, log_sigma.clone()).sum();
  torch::Tensor g = torch::autograd::grad({e}, {input}, {}, /*retain_graph=*/differentiable, differentiable)[0];
  return differentiable ? -g : -g.detach();
}

EnergyMlpImpl::EnergyMlpImpl(const ModelOptions& o, int64_t dim, at::Generator& gen) {
  require(o.activation != "relu", "energy models need a smooth activation (silu, gelu, softplus, tanh): the score "
                                  "is the energy's gradient and training differentiates it again");
  mlp_ = register_module("energy", std::make_shared<MlpNetworkImpl>(o, dim, gen, 1));
}

torch::Tensor EnergyMlpImpl::energy(const torch::Tensor& x, const torch::Tensor& log_sigma) {
  return mlp_->forward_autograd(x, log_sigma).squeeze(1);
}

EnergyCnnImpl::EnergyCnnImpl(const ModelOptions& o, int64_t dim, at::Generator& gen) : shape_(o.image_shape) {
  require(shape_.size() == 3 && shape_[0] * shape_[1] * shape_[2] == dim,
          "model.name = 'energy-cnn' needs image data (data of dimension {} has no image shape)", dim);
  const int64_t c = o.channels;
  const std::vector<std::array<int64_t, 3>> layers = {
      {shape_[0], c, 1}, {c, 2 * c, 2}, {2 * c, 2 * c, 1}, {2 * c, 4 * c, 2}, {4 * c, 4 * c, 1}};  // in, out, stride
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& [in, out, stride] = layers[i];
    convs_.push_back(register_module(fmt::format("conv{}", i),
                                     torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1))));
  }
  features_ = register_module("features", FourierFeatures(o.fourier_features, o.fourier_scale, gen));
  embed_ = register_module("embed", torch::nn::Linear(features_->out_features(), c));
  out_ = register_module("out", torch::nn::Linear(4 * c, 1));
  init_default(*this, gen);
}

torch::Tensor EnergyCnnImpl::energy(const torch::Tensor& x, const torch::Tensor& log_sigma) {
  const int64_t batch = x.size(0);
  torch::Tensor h = convs_[0]->forward(x.reshape({batch, shape_[0], shape_[1], shape_[2]}));
  h = torch::silu(h + embed_->forward(features_->forward(log_sigma.reshape({batch}))).unsqueeze(-1).unsqueeze(-1));
  for (size_t i = 1; i < convs_.size(); ++i) h = torch::silu(convs_[i]->forward(h));
  return out_->forward(h.mean({2, 3})).squeeze(1);
}

}  // namespace scorediff
