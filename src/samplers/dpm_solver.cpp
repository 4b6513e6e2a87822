#include "scorediff/samplers/dpm_solver.hpp"

#include <torch/torch.h>

#include <cmath>

#include "samplers/grid_run.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {

SampleResult sample_dpm_solver(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                               const GridOptions& o, const StepCallback& callback) {
  torch::InferenceMode guard;
  grid::GridRun run(process, x, o, callback);
  torch::Tensor x_hat = x / grid::at(process, run.grid.front()).m;
  torch::Tensor previous;  // D at the previous grid time
  double h_previous = 0;
  const bool lower_order_final = run.steps() < 15;
  for (int64_t i = 0; i < run.steps(); ++i) {
    double sigma = process.sigma_at(run.time_at(i));
    double sigma_next = process.sigma_at(run.time_at(i + 1));
    torch::Tensor d = grid::denoise_scaled(score, process, x_hat, sigma, run.t);
    run.result.nfe += 1;
    double h = std::log(sigma / sigma_next);  // λ_next − λ, λ = −log σ
    torch::Tensor d_bar = d;
    bool first_order = !previous.defined() || (lower_order_final && i == run.steps() - 1);
    if (!first_order) {
      double r = h_previous / h;
      d_bar = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * previous;
    }
    x_hat = (sigma_next / sigma) * x_hat + (1 - sigma_next / sigma) * d_bar;
    previous = d;
    h_previous = h;
    run.after_step(i, x_hat * grid::at(process, run.time_at(i + 1)).m);
  }
  return run.finish(score, x_hat * grid::at(process, run.grid.back()).m);
}

// Lu et al.: 15-20 NFE for guided sampling.
SamplerSpec dpm_solver_spec() {
  return ode_grid_spec("dpm-solver++", "DPM-Solver++(2M) in sigma, for vp, ve, subvp, edm", sample_dpm_solver, 20,
                       GridKind::LogSnr);
}

}  // namespace scorediff
