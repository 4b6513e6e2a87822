#include "scorediff/samplers/edm.hpp"

#include <torch/torch.h>

#include <cmath>

#include "samplers/grid_run.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {

SampleResult sample_edm(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const EdmOptions& o,
                        at::Generator& gen, const StepCallback& callback) {
  require(o.s_churn >= 0, "s_churn must be >= 0, got {}", o.s_churn);
  require(o.s_noise > 0, "s_noise must be > 0, got {}", o.s_noise);
  torch::InferenceMode guard;
  grid::GridRun run(process, x, o, callback);
  const double sigma_top = process.sigma_max();
  const double gamma_max = std::min(o.s_churn / static_cast<double>(run.steps()), std::sqrt(2.0) - 1);
  torch::Tensor x_hat = x / grid::at(process, run.grid.front()).m;
  for (int64_t i = 0; i < run.steps(); ++i) {
    double sigma = process.sigma_at(run.time_at(i));
    double sigma_next = process.sigma_at(run.time_at(i + 1));
    double gamma = (sigma >= o.s_tmin && sigma <= o.s_tmax) ? gamma_max : 0.0;
    double sigma_hat = std::min(sigma * (1 + gamma), sigma_top);
    if (sigma_hat > sigma)
      x_hat = x_hat + std::sqrt(sigma_hat * sigma_hat - sigma * sigma) * o.s_noise *
                          torch::randn(x_hat.sizes(), gen, x_hat.options());
    torch::Tensor d = (x_hat - grid::denoise_scaled(score, process, x_hat, sigma_hat, run.t)) / sigma_hat;
    torch::Tensor x_next = x_hat + (sigma_next - sigma_hat) * d;
    torch::Tensor d_next = (x_next - grid::denoise_scaled(score, process, x_next, sigma_next, run.t)) / sigma_next;
    x_hat = x_hat + (0.5 * (sigma_next - sigma_hat)) * (d + d_next);
    run.result.nfe += 2;
    run.after_step(i, x_hat * grid::at(process, run.time_at(i + 1)).m);
  }
  return run.finish(score, x_hat * grid::at(process, run.grid.back()).m);
}

SamplerSpec edm_spec() {
  // Karras et al.: 18 Heun steps on CIFAR-10.
  SamplerSpec s = sde_grid_spec("edm", "EDM 2nd-order Heun with churn, Karras grid", nullptr, 35);
  s.nfe_per_step = [](const SampleOptions&) { return int64_t{2}; };
  s.default_grid = GridKind::Karras;
  s.keys.insert(s.keys.end(), {"s_churn", "s_tmin", "s_tmax", "s_noise"});
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) {
    EdmOptions e;
    static_cast<GridOptions&>(e) = call.grid;
    e.s_churn = o.s_churn;
    e.s_tmin = o.s_tmin;
    e.s_tmax = o.s_tmax;
    e.s_noise = o.s_noise;
    return sample_edm(score, process, std::move(x), e, *call.gen, call.callback);
  };
  return s;
}

}  // namespace scorediff
