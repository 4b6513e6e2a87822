// What the grid samplers share: the process' coefficients at one time, the forward transition between two
// grid times, the grid walk's bookkeeping (time tensor, snapshots, progress, final denoising) and the
// denoiser in scaled coordinates. Internal to src/samplers.
#pragma once
#include <ATen/core/Generator.h>

#include "scorediff/samplers/sampler.hpp"

namespace scorediff::grid {

// The scalar coefficients of one process at one time.
struct At {
  double t, m, s, sigma, g;
};
At at(const NoiseProcess& process, double t);

// The forward transition from t' < t to t: x_t = a x_t' + b z, a = m/m', b² = s² − a² s'².
struct Transition {
  double a, b;
};
Transition transition(const At& now, const At& next);

// Standard normal noise like x from gen; one line naming the sampler when it was given no generator.
torch::Tensor noise_like(const torch::Tensor& x, at::Generator* gen, const char* sampler);

// The grid, the time tensor, snapshots, progress and the final Tweedie denoising of one sampler run.
class GridRun {
 public:
  GridRun(const NoiseProcess& process, const torch::Tensor& x, const GridOptions& options, StepCallback callback);
  int64_t steps() const { return static_cast<int64_t>(grid.size()) - 1; }
  double time_at(int64_t i) const { return grid[static_cast<size_t>(i)]; }
  // The [B] time tensor, filled with `value`.
  const torch::Tensor& time(double value);
  void after_step(int64_t i, const torch::Tensor& x);
  SampleResult finish(const ScoreFn& score, torch::Tensor x);

  std::vector<double> grid;
  torch::Tensor t;
  SampleResult result;

 private:
  const NoiseProcess& process_;
  GridOptions options_;
  StepCallback callback_;
  int64_t every_ = 0;
};

// D(x̂; σ) = x̂ + σ² m s(m x̂, t(σ)): the denoiser in scaled coordinates x̂ = x/m; fills t with t(σ).
torch::Tensor denoise_scaled(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x_hat,
                             double sigma, torch::Tensor& t);

}  // namespace scorediff::grid
