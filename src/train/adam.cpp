#include "scorediff/train/adam.hpp"

#include <torch/torch.h>

#include <cmath>

#include "scorediff/kernels/optimiser.hpp"
#include "scorediff/train/posthoc_ema.hpp"

namespace scorediff {

Adam::Adam(std::vector<torch::Tensor> params, AdamOptions options) : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    exp_avg_.push_back(torch::zeros_like(p));
    exp_avg_sq_.push_back(torch::zeros_like(p));
  }
}

void Adam::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

namespace {

bool fusable(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
}

}  // namespace

void Adam::step(double lr, double grad_scale) {
  bool fused = true;
  for (size_t i = 0; i < params_.size(); ++i)
    fused = fused && fusable(params_[i]) && (!params_[i].grad().defined() || fusable(params_[i].grad())) &&
            fusable(exp_avg_[i]) && fusable(exp_avg_sq_[i]);
  fused ? step_fused(lr, grad_scale) : step_aten(lr, grad_scale);
}

void Adam::step_fused(double lr, double grad_scale) {
  ++steps_;
  const double bias1 = 1 - std::pow(options_.beta1, static_cast<double>(steps_));
  AdamScalars k{};
  k.grad_scale = static_cast<float>(grad_scale);
  k.decay = static_cast<float>(1 - lr * options_.weight_decay);
  k.weight_decay = options_.weight_decay > 0;
  k.beta1 = static_cast<float>(options_.beta1);
  k.beta2 = static_cast<float>(options_.beta2);
  k.step_size = static_cast<float>(lr / bias1);
  k.inv_bias2_sqrt = static_cast<float>(1.0 / std::sqrt(1 - std::pow(options_.beta2, static_cast<double>(steps_))));
  k.eps = static_cast<float>(options_.eps);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    adam_update(params_[i].data_ptr<float>(), params_[i].grad().data_ptr<float>(), exp_avg_[i].data_ptr<float>(),
                exp_avg_sq_[i].data_ptr<float>(), params_[i].numel(), k);
  }
}

void Adam::step_aten(double lr, double grad_scale) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias1 = 1 - std::pow(b1, static_cast<double>(steps_));
  const double bias2_sqrt = std::sqrt(1 - std::pow(b2, static_cast<double>(steps_)));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!p.grad().defined()) continue;
    const torch::Tensor g = grad_scale == 1.0 ? p.grad() : p.grad() * grad_scale;
    if (options_.weight_decay > 0) p.mul_(1 - lr * options_.weight_decay);
    exp_avg_[i].mul_(b1).add_(g, 1 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(g, g, 1 - b2);
    torch::Tensor denom = (exp_avg_sq_[i].sqrt() / bias2_sqrt).add_(options_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr / bias1);
  }
}

Ema::Ema(const std::vector<torch::Tensor>& params, double decay) : decay_(decay) {
  for (const auto& p : params) shadow_.push_back(p.detach().clone());
}

Ema Ema::power_function(const std::vector<torch::Tensor>& params, double gamma) {
  Ema ema(params, 0.0);
  ema.gamma_ = gamma;
  return ema;
}

void Ema::update(const std::vector<torch::Tensor>& params, int64_t step) {
  torch::NoGradGuard no_grad;
  double n = static_cast<double>(step);
  double d = gamma_ >= 0 ? power_ema_decay(gamma_, step) : std::min(decay_, (1 + n) / (10 + n));
  for (size_t i = 0; i < params.size(); ++i) {
    if (fusable(shadow_[i]) && fusable(params[i])) {
      ema_update(shadow_[i].data_ptr<float>(), params[i].data_ptr<float>(), shadow_[i].numel(), d);
    } else {
      shadow_[i].mul_(d).add_(params[i].detach(), 1 - d);
    }
  }
}

GradNorm gradient_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  GradNorm out;
  bool fused = true;
  for (const auto& p : params) fused = fused && (!p.grad().defined() || fusable(p.grad()));
  if (fused) {
    double sum = 0.0;
    for (const auto& p : params) {
      if (!p.grad().defined()) continue;
      sum += sum_squares(p.grad().data_ptr<float>(), p.numel());
    }
    out.norm = std::sqrt(sum);
  } else {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> norms;
    for (const auto& p : params)
      if (p.grad().defined()) norms.push_back(p.grad().norm().to(torch::kCPU, torch::kFloat64));
    out.norm = norms.empty() ? 0.0 : torch::stack(norms).norm().item<double>();
  }
  const double coef = max_norm / (out.norm + 1e-6);
  if (coef < 1) out.scale = coef;
  return out;
}

}  // namespace scorediff
