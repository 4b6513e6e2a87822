// iPNDM (Zhang & Chen 2023, "Fast sampling of diffusion models with exponential integrator", §4 and App. B;
// the fourth-order form used by Zhou et al. 2024, "Fast ODE-based sampling for diffusion models in around 5
// steps"): the probability-flow ODE in x̂ = x/m and σ, dx̂/dσ = (x̂ − D(x̂; σ))/σ, integrated by
// Adams–Bashforth steps of rising order on the derivatives of the last four grid points, one score evaluation
// per step. Deterministic.
#include <torch/torch.h>

#include <deque>

#include "samplers/grid_run.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

SampleResult sample_ipndm(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                          const StepCallback& callback) {
  torch::InferenceMode guard;
  grid::GridRun run(process, x, o, callback);
  torch::Tensor x_hat = x / grid::at(process, run.grid.front()).m;
  std::deque<torch::Tensor> d;  // dx̂/dσ at the latest grid points, newest first
  for (int64_t i = 0; i < run.steps(); ++i) {
    const double sigma = process.sigma_at(run.time_at(i)), sigma_next = process.sigma_at(run.time_at(i + 1));
    d.push_front((x_hat - grid::denoise_scaled(score, process, x_hat, sigma, run.t)) / sigma);
    if (d.size() > 4) d.pop_back();
    run.result.nfe += 1;
    // Adams–Bashforth with the step count so far: orders 1, 2, 3, then 4 (the lower orders warm it up).
    torch::Tensor slope;
    switch (d.size()) {
      case 1: slope = d[0]; break;
      case 2: slope = (3 * d[0] - d[1]) / 2; break;
      case 3: slope = (23 * d[0] - 16 * d[1] + 5 * d[2]) / 12; break;
      default: slope = (55 * d[0] - 59 * d[1] + 37 * d[2] - 9 * d[3]) / 24; break;
    }
    x_hat = x_hat + (sigma_next - sigma) * slope;
    run.after_step(i, x_hat * grid::at(process, run.time_at(i + 1)).m);
  }
  return run.finish(score, x_hat * grid::at(process, run.grid.back()).m);
}

}  // namespace

SamplerSpec ipndm_spec() {
  return ode_grid_spec("ipndm", "iPNDM: 4th-order Adams-Bashforth on the PF-ODE in sigma, Karras grid", sample_ipndm,
                       20, GridKind::Karras);
}

}  // namespace scorediff
