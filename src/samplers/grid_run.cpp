#include "samplers/grid_run.hpp"

#include <torch/torch.h>

#include <cmath>

#include "scorediff/process/tweedie.hpp"

namespace scorediff::grid {

At at(const NoiseProcess& p, double t) {
  torch::Tensor tt = torch::full({1}, t, torch::kFloat64);
  return {t, p.mean_coef(tt).item<double>(), p.std(tt).item<double>(), p.sigma(tt).item<double>(),
          p.diffusion(tt).item<double>()};
}

Transition transition(const At& now, const At& next) {
  double a = now.m / next.m;
  double b2 = now.s * now.s - a * a * next.s * next.s;
  return {a, std::sqrt(std::max(b2, 0.0))};
}

torch::Tensor noise_like(const torch::Tensor& x, at::Generator* gen, const char* sampler) {
  require(gen != nullptr, "sampler '{}' draws noise but was given no generator", sampler);
  return torch::randn(x.sizes(), *gen, x.options());
}

GridRun::GridRun(const NoiseProcess& process, const torch::Tensor& x, const GridOptions& o, StepCallback callback)
    : process_(process), options_(o), callback_(std::move(callback)) {
  require(o.steps >= 1, "a diffusion sampler needs at least 1 step, got {}", o.steps);
  grid = time_grid(process, o.steps, o.grid, o.rho, o.t_end, o.t_start);
  t = torch::empty({x.size(0)}, x.options());
  every_ = o.snapshots > 0 ? std::max<int64_t>(1, o.steps / o.snapshots) : 0;
}

const torch::Tensor& GridRun::time(double value) {
  t.fill_(value);
  return t;
}

void GridRun::after_step(int64_t i, const torch::Tensor& x) {
  if (every_ > 0 && (i + 1) % every_ == 0) {
    result.trajectory.push_back(x.clone());
    result.trajectory_sigma.push_back(process_.sigma_at(grid[static_cast<size_t>(i + 1)]));
  }
  if (callback_) callback_(i + 1, steps());
}

SampleResult GridRun::finish(const ScoreFn& score, torch::Tensor x) {
  if (options_.denoise) {
    x = tweedie_at(score, process_, x, grid.back());
    result.nfe += 1;
  }
  result.samples = x;
  return std::move(result);
}

torch::Tensor denoise_scaled(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x_hat,
                             double sigma, torch::Tensor& t) {
  double time = process.t_at_sigma(sigma);
  At c = at(process, time);
  t.fill_(time);
  return x_hat + (c.sigma * c.sigma * c.m) * score(c.m * x_hat, t);
}

}  // namespace scorediff::grid
