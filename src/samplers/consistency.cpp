// Multistep consistency sampling (Song et al. 2023, "Consistency models", Algorithm 1): denoise with the
// model's consistency function f (the Tweedie mean of a `consistency`-parametrised model), add fresh noise
// back to the next, lower level of the grid, denoise again; NFE = sample.nfe, the grid's first NFE times.
#include <torch/torch.h>

#include <cmath>

#include "grid_run.hpp"
#include "scorediff/samplers/consistency.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {

SampleResult sample_consistency(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                                at::Generator& gen, const StepCallback& callback) {
  torch::InferenceMode guard;
  GridOptions options = o;
  options.denoise = false;  // the last evaluation is the answer
  grid::GridRun run(process, x, options, callback);
  const double sigma_end = process.sigma_at(run.grid.back());
  for (int64_t i = 0; i < run.steps(); ++i) {
    const grid::At now = grid::at(process, run.time_at(i));
    torch::Tensor x0 = grid::denoise_scaled(score, process, x / now.m, now.sigma, run.t);
    run.result.nfe += 1;
    if (i + 1 < run.steps()) {
      // x at the next level: x₀ + √(σ² − σ_end²) z (Algorithm 1: the model's x₀ carries σ_end's noise already).
      const grid::At next = grid::at(process, run.time_at(i + 1));
      const double spread = std::sqrt(std::max(0.0, next.sigma * next.sigma - sigma_end * sigma_end));
      x = next.m * (x0 + spread * grid::noise_like(x0, &gen, "consistency"));
    } else {
      x = x0;
    }
    run.after_step(i, x);
  }
  return run.finish(score, x);
}

SamplerSpec consistency_spec() {
  SamplerSpec s = sde_grid_spec("consistency",
                                "multistep consistency sampling: denoise, re-noise to the next level (consistency models)",
                                sample_consistency, 2);
  s.default_grid = GridKind::Karras;
  s.final_denoise = false;
  return s;
}

}  // namespace scorediff
