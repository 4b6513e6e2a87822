#include "scorediff/models/init.hpp"

#include <torch/torch.h>

namespace scorediff {

void init_default(torch::Tensor& weight, torch::Tensor& bias, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(weight[0].numel()));
  torch::NoGradGuard no_grad;
  weight.uniform_(-bound, bound, gen);
  if (bias.defined()) bias.uniform_(-bound, bound, gen);
}

void init_default(torch::nn::Module& module, at::Generator& gen) {
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) init_default(c->weight, c->bias, gen);
    else if (auto* l = m->as<torch::nn::Linear>()) init_default(l->weight, l->bias, gen);
  }
}

}  // namespace scorediff
