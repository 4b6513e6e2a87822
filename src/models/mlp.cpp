#include "scorediff/models/mlp.hpp"

#include <torch/torch.h>

namespace scorediff {

Activation parse_activation(const std::string& name) {
  if (name == "silu") return Activation::SiLU;
  if (name == "relu") return Activation::ReLU;
  if (name == "gelu") return Activation::GELU;
  if (name == "tanh") return Activation::Tanh;
  if (name == "softplus") return Activation::Softplus;
  fail("unknown activation '{}'; valid: gelu, relu, silu, softplus, tanh", name);
}

torch::Tensor activate(const torch::Tensor& x, Activation a) {
  switch (a) {
    case Activation::SiLU: return torch::silu(x);
    case Activation::ReLU: return torch::relu(x);
    case Activation::GELU: return torch::gelu(x);
    case Activation::Tanh: return torch::tanh(x);
    case Activation::Softplus: return torch::softplus(x);
  }
  return x;
}

FourierFeaturesImpl::FourierFeaturesImpl(int64_t features, double scale, at::Generator& gen) {
  W_ = register_buffer("W", scale * torch::randn({features}, gen, torch::kFloat32));
}

torch::Tensor FourierFeaturesImpl::forward(const torch::Tensor& c) {
  torch::Tensor angle = (2 * M_PI) * c.reshape({-1, 1}) * W_.unsqueeze(0);  // [B, F]
  return torch::cat({torch::sin(angle), torch::cos(angle)}, 1);
}

MlpNetworkImpl::MlpNetworkImpl(const ModelOptions& o, int64_t dim, at::Generator& gen)
    : activation_(parse_activation(o.activation)), fourier_(o.embedding == "fourier") {
  require(o.depth >= 1 && o.width >= 1, "model.depth and model.width must be >= 1");
  int64_t cond = 1;
  if (fourier_) {
    features_ = register_module("features", FourierFeatures(o.fourier_features, o.fourier_scale, gen));
    cond = features_->out_features();
  }
  int64_t in = dim + cond;
  for (int64_t i = 0; i <= o.depth; ++i) {
    int64_t out = i == o.depth ? dim : o.width;
    auto layer = register_module("layer" + std::to_string(i), torch::nn::Linear(in, out));
    // PyTorch's default Linear initialisation, U(±1/√fan_in), drawn from our generator.
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    torch::NoGradGuard no_grad;
    layer->weight.uniform_(-bound, bound, gen);
    layer->bias.uniform_(-bound, bound, gen);
    layers_.push_back(layer);
    in = out;
  }
}

torch::Tensor MlpNetworkImpl::embed(const torch::Tensor& log_sigma) {
  if (fourier_) return features_->forward(log_sigma);
  return log_sigma.reshape({-1, 1}) / 4.0;  // seed 001 §8.4: log(σ)/4
}

torch::Tensor MlpNetworkImpl::forward(const torch::Tensor& x, const torch::Tensor& log_sigma) {
  // x [B, D], log_sigma [B] -> [B, D]
  torch::Tensor h = torch::cat({x, embed(log_sigma).to(x.dtype())}, 1);
  for (size_t i = 0; i + 1 < layers_.size(); ++i) h = activate(layers_[i]->forward(h), activation_);
  return layers_.back()->forward(h);
}

}  // namespace scorediff
