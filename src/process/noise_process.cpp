#include "scorediff/process/noise_process.hpp"

#include <torch/torch.h>

#include <cmath>

namespace scorediff {

double NoiseProcess::sigma_at(double t) const {
  return sigma(torch::full({1}, t, torch::kFloat64)).item<double>();
}

double NoiseProcess::t_at_sigma(double s) const {
  return t_of_sigma(torch::full({1}, s, torch::kFloat64)).item<double>();
}

VEProcess::VEProcess(double sigma_min, double sigma_max) : sigma_min_(sigma_min), sigma_max_(sigma_max) {
  require(sigma_min > 0, "process.sigma_min must be > 0, got {}", sigma_min);
  require(sigma_max > sigma_min, "process.sigma_min ({}) must be smaller than process.sigma_max ({})", sigma_min,
          sigma_max);
}

torch::Tensor VEProcess::mean_coef(const torch::Tensor& t) const { return torch::ones_like(t); }

torch::Tensor VEProcess::std(const torch::Tensor& t) const {
  return sigma_min_ * torch::pow(sigma_max_ / sigma_min_, t);
}

torch::Tensor VEProcess::t_of_sigma(const torch::Tensor& sigma) const {
  return torch::log(sigma / sigma_min_) / std::log(sigma_max_ / sigma_min_);
}

torch::Tensor VEProcess::drift(const torch::Tensor& x, const torch::Tensor&) const { return torch::zeros_like(x); }

torch::Tensor VEProcess::diffusion(const torch::Tensor& t) const {
  return std(t) * std::sqrt(2 * std::log(sigma_max_ / sigma_min_));
}

torch::Tensor VEProcess::prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                                      const torch::TensorOptions& options) const {
  return sigma_max_ * torch::randn({n, dim}, gen, options);
}

torch::Tensor VEProcess::prior_logp(const torch::Tensor& x) const {
  auto d = static_cast<double>(x[0].numel());
  return -0.5 * d * std::log(2 * M_PI * sigma_max_ * sigma_max_) -
         x.flatten(1).pow(2).sum(1) / (2 * sigma_max_ * sigma_max_);
}

SigmaLadder::SigmaLadder(double sigma_min, double sigma_max, int64_t levels)
    : VEProcess(sigma_min, sigma_max), levels_(levels) {
  require(levels >= 2, "process.levels must be >= 2, got {}", levels);
}

std::vector<double> SigmaLadder::levels() const {
  std::vector<double> out;
  for (int64_t i = 0; i < levels_; ++i) {
    double t = 1.0 - static_cast<double>(i) / static_cast<double>(levels_ - 1);
    out.push_back(sigma_min_ * std::pow(sigma_max_ / sigma_min_, t));
  }
  return out;
}

void register_builtins(Registry<ProcessFactory>& r) {
  r.add("ladder", [](const ProcessOptions& o) {
    return std::make_shared<SigmaLadder>(o.sigma_min, o.sigma_max, o.levels);
  }, "NCSN's L geometric noise levels");
  r.add("ve", [](const ProcessOptions& o) {
    return std::make_shared<VEProcess>(o.sigma_min, o.sigma_max);
  }, "variance-exploding SDE");
}

const Registry<ProcessFactory>& processes() { return builtin_registry<ProcessFactory>("process"); }

void bind(Schema& s, ProcessOptions& o) {
  s.add("process.name", &o.name, "noise process").one_of(processes().names());
  s.add("process.sigma_min", &o.sigma_min, "smallest noise level").positive();
  s.add("process.sigma_max", &o.sigma_max, "largest noise level").positive();
  s.add("process.levels", &o.levels, "number of ladder levels L (also the bins of per-level logs)").at_least(2);
}

void validate(const ProcessOptions& o) {
  require(o.sigma_min < o.sigma_max, "process.sigma_min ({}) must be smaller than process.sigma_max ({})", o.sigma_min,
          o.sigma_max);
}

std::shared_ptr<const NoiseProcess> make_process(const ProcessOptions& options) {
  validate(options);
  return processes().get(options.name)(options);
}

}  // namespace scorediff
