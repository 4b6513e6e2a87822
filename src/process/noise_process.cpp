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

void NoiseProcess::check_time(double t, const std::string& what) const {
  require(std::isfinite(t) && t >= t_min() * (1 - 1e-12) && t <= t_max() * (1 + 1e-12),
          "{} = {} is outside [t_min, t_max] = [{}, {}] of process '{}'", what, t, t_min(), t_max(), name());
}

torch::Tensor per_sample(const torch::Tensor& v, const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return v.reshape(shape);
}

torch::Tensor probability_flow_drift(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& score,
                                     const NoiseProcess& process, const torch::Tensor& x, const torch::Tensor& t) {
  torch::Tensor g = per_sample(process.diffusion(t).to(x.dtype()), x);
  return process.drift(x, t) - 0.5 * g * g * score(x, t);
}

torch::Tensor isotropic_normal_logp(const torch::Tensor& x, double scale) {
  auto d = static_cast<double>(x[0].numel());
  return -0.5 * d * std::log(2 * M_PI * scale * scale) - x.flatten(1).pow(2).sum(1) / (2 * scale * scale);
}

VEProcess::VEProcess(double sigma_min, double sigma_max, double t_min)
    : sigma_min_(sigma_min), sigma_max_(sigma_max), t_min_(t_min) {
  require(sigma_min > 0, "process.sigma_min must be > 0, got {}", sigma_min);
  require(sigma_max > sigma_min, "process.sigma_min ({}) must be smaller than process.sigma_max ({})", sigma_min,
          sigma_max);
  require(t_min >= 0 && t_min < 1, "process.t_min must be in [0, 1), got {}", t_min);
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

torch::Tensor VEProcess::prior_logp(const torch::Tensor& x) const { return isotropic_normal_logp(x, sigma_max_); }

// The ladder's levels run from t = 1 down to t = 0 exactly.
SigmaLadder::SigmaLadder(double sigma_min, double sigma_max, int64_t levels)
    : VEProcess(sigma_min, sigma_max, 0.0), levels_(levels) {
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

VPProcess::VPProcess(double beta_min, double beta_max, double t_min, bool sub)
    : beta_min_(beta_min), beta_max_(beta_max), t_min_(t_min), sub_(sub) {
  require(beta_min > 0, "process.beta_min must be > 0, got {}", beta_min);
  require(beta_max > beta_min, "process.beta_min ({}) must be smaller than process.beta_max ({})", beta_min, beta_max);
  require(t_min > 0 && t_min < 1, "process.t_min must be in (0, 1) for '{}', got {}", name(), t_min);
}

torch::Tensor VPProcess::beta(const torch::Tensor& t) const { return beta_min_ + t * (beta_max_ - beta_min_); }

torch::Tensor VPProcess::log_mean_coef(const torch::Tensor& t) const {
  return -0.25 * t * t * (beta_max_ - beta_min_) - 0.5 * t * beta_min_;
}

torch::Tensor VPProcess::mean_coef(const torch::Tensor& t) const { return torch::exp(log_mean_coef(t)); }

torch::Tensor VPProcess::std(const torch::Tensor& t) const {
  torch::Tensor one_minus_m2 = -torch::expm1(2 * log_mean_coef(t));  // accurate for small t
  return sub_ ? one_minus_m2 : torch::sqrt(one_minus_m2);
}

torch::Tensor VPProcess::t_of_sigma(const torch::Tensor& sigma) const {
  // −log m as a function of σ = s/m, then the positive root of ¼Δt² + ½β_min t = −log m written in the
  // cancellation-free form t = 2c / (b + √(b² + Δc)), b = ½β_min, c = −log m.
  torch::Tensor c = sub_ ? -torch::log(2.0 / (sigma + torch::sqrt(sigma * sigma + 4.0)))  // σm = 1 − m²
                         : 0.5 * torch::log1p(sigma * sigma);                             // m² = 1/(1 + σ²)
  double b = 0.5 * beta_min_, delta = beta_max_ - beta_min_;
  return 2 * c / (b + torch::sqrt(b * b + delta * c));
}

torch::Tensor VPProcess::drift(const torch::Tensor& x, const torch::Tensor& t) const {
  return -0.5 * per_sample(beta(t).to(x.dtype()), x) * x;
}

torch::Tensor VPProcess::diffusion(const torch::Tensor& t) const {
  if (!sub_) return torch::sqrt(beta(t));
  return torch::sqrt(beta(t) * -torch::expm1(4 * log_mean_coef(t)));
}

torch::Tensor VPProcess::prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                                      const torch::TensorOptions& options) const {
  return torch::randn({n, dim}, gen, options);
}

torch::Tensor VPProcess::prior_logp(const torch::Tensor& x) const { return isotropic_normal_logp(x, 1.0); }

EDMProcess::EDMProcess(double sigma_min, double sigma_max) : sigma_min_(sigma_min), sigma_max_(sigma_max) {
  require(sigma_min > 0, "process.sigma_min must be > 0, got {}", sigma_min);
  require(sigma_max > sigma_min, "process.sigma_min ({}) must be smaller than process.sigma_max ({})", sigma_min,
          sigma_max);
}

torch::Tensor EDMProcess::drift(const torch::Tensor& x, const torch::Tensor&) const { return torch::zeros_like(x); }

torch::Tensor EDMProcess::diffusion(const torch::Tensor& t) const { return torch::sqrt(2 * t); }

torch::Tensor EDMProcess::prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                                       const torch::TensorOptions& options) const {
  return sigma_max_ * torch::randn({n, dim}, gen, options);
}

torch::Tensor EDMProcess::prior_logp(const torch::Tensor& x) const { return isotropic_normal_logp(x, sigma_max_); }

FlowProcess::FlowProcess(double t_min, double t_max) : t_min_(t_min), t_max_(t_max) {
  require(t_min > 0 && t_min < t_max && t_max < 1,
          "process 'flow' needs 0 < process.t_min < process.t_max < 1, got t_min = {}, t_max = {}", t_min, t_max);
}

torch::Tensor FlowProcess::drift(const torch::Tensor& x, const torch::Tensor& t) const {
  return -x / per_sample((1 - t).to(x.dtype()), x);
}

torch::Tensor FlowProcess::diffusion(const torch::Tensor& t) const { return torch::sqrt(2 * t / (1 - t)); }

torch::Tensor FlowProcess::prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                                        const torch::TensorOptions& options) const {
  return t_max_ * torch::randn({n, dim}, gen, options);
}

torch::Tensor FlowProcess::prior_logp(const torch::Tensor& x) const { return isotropic_normal_logp(x, t_max_); }

void register_builtins(Registry<ProcessFactory>& r) {
  r.add("ladder", [](const ProcessOptions& o) {
    return std::make_shared<SigmaLadder>(o.sigma_min, o.sigma_max, o.levels);
  }, "NCSN's L geometric noise levels");
  r.add("ve", [](const ProcessOptions& o) {
    return std::make_shared<VEProcess>(o.sigma_min, o.sigma_max, o.t_min > 0 ? o.t_min : 1e-5);
  }, "variance-exploding SDE, sigma from sigma_min to sigma_max");
  r.add("vp", [](const ProcessOptions& o) {
    return std::make_shared<VPProcess>(o.beta_min, o.beta_max, o.t_min > 0 ? o.t_min : 1e-3);
  }, "variance-preserving SDE (DDPM), beta from beta_min to beta_max");
  r.add("subvp", [](const ProcessOptions& o) {
    return std::make_shared<VPProcess>(o.beta_min, o.beta_max, o.t_min > 0 ? o.t_min : 1e-3, true);
  }, "sub-VP SDE: the VP mean with a smaller variance");
  r.add("edm", [](const ProcessOptions& o) {
    return std::make_shared<EDMProcess>(o.sigma_min, o.sigma_max);
  }, "EDM: sigma(t) = t from sigma_min to sigma_max, no drift");
  r.add("flow", [](const ProcessOptions& o) {
    return std::make_shared<FlowProcess>(o.t_min > 0 ? o.t_min : 1e-3, o.t_max > 0 ? o.t_max : 0.99);
  }, "flow matching / rectified flow: x_t = (1 - t) x0 + t eps, t from t_min to t_max");
}

const Registry<ProcessFactory>& processes() { return builtin_registry<ProcessFactory>("process"); }

void bind(Schema& s, ProcessOptions& o) {
  s.add("process.name", &o.name, "noise process").one_of(processes().names());
  s.add("process.sigma_min", &o.sigma_min, "smallest noise level; auto = √0.05 × the data's noise floor (half the median nearest-neighbour distance where none can be read)")
      .positive()
      .or_auto(&o.sigma_min_auto);
  s.add("process.sigma_max", &o.sigma_max, "largest noise level; auto = the largest pairwise distance of the data")
      .positive()
      .or_auto(&o.sigma_max_auto);
  s.add("process.levels", &o.levels,
        "number of ladder levels L (also the bins of per-level logs); auto = from the dimension and the data's scales")
      .in_range(2, 100000)
      .or_auto(&o.levels_auto);
  s.add("process.beta_min", &o.beta_min, "vp, subvp: beta(0)").positive();
  s.add("process.beta_max", &o.beta_max, "vp, subvp: beta(1)").positive();
  s.add("process.t_min", &o.t_min, "ve, vp, subvp, flow: smallest time (0 = default: ve 1e-5, vp/subvp/flow 1e-3)")
      .in_range(0, 1);
  s.add("process.t_max", &o.t_max, "flow: largest time, below 1 (0 = default 0.99, sigma 99)").in_range(0, 1);
}

void validate(const ProcessOptions& o) {
  require(o.sigma_min_auto || o.sigma_max_auto || o.sigma_min < o.sigma_max, "process.sigma_min ({}) must be smaller than process.sigma_max ({})", o.sigma_min,
          o.sigma_max);
  require(o.beta_min < o.beta_max, "process.beta_min ({}) must be smaller than process.beta_max ({})", o.beta_min,
          o.beta_max);
  require(o.t_min < 1, "process.t_min must be < 1, got {}", o.t_min);
  require(o.t_max < 1, "process.t_max must be < 1 (sigma is infinite at t = 1), got {}", o.t_max);
  require(o.t_max == 0 || o.name == "flow", "process.t_max applies to process 'flow' only, not '{}'", o.name);
}

std::shared_ptr<const NoiseProcess> make_process(const ProcessOptions& options) {
  require(!options.sigma_min_auto && !options.sigma_max_auto && !options.levels_auto,
          "process.sigma_min, sigma_max and levels = \"auto\" are resolved from the data when a run is prepared");
  validate(options);
  return processes().get(options.name)(options);
}

}  // namespace scorediff
