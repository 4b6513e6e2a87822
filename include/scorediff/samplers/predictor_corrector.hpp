// Reverse-time samplers of a score SDE built from one predictor step and one corrector step (Song et al.
// 2021, Alg. 1): Euler–Maruyama, reverse diffusion, DDPM ancestral, DDIM, the probability-flow Euler step,
// the Langevin corrector, their combination and inpainting with it.
#pragma once
#include <ATen/core/Generator.h>

#include <string>

#include "scorediff/samplers/sample_options.hpp"
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

// The Langevin corrector: `steps` steps of size 2α (snr ‖z‖ / ‖s‖)² at each grid time (score_sde).
struct CorrectorOptions : GridOptions {
  double snr = 0.16;
  int64_t corrector_steps = 1;
};

// Predictor–corrector: predictor em, reverse-diffusion, ancestral, ode-euler, ddim or none; corrector
// langevin or none.
struct PcOptions : CorrectorOptions {
  std::string predictor = "reverse-diffusion";
  std::string corrector = "langevin";
  double eta = 0.0;  // the ddim predictor's η
};

// DDIM's η: 0 deterministic, 1 = DDPM's posterior noise.
struct DdimOptions : GridOptions {
  double eta = 0.0;
};

// Euler–Maruyama on the reverse SDE dx = [f − g² s] dt + g dw̄.
SampleResult sample_em(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                       const GridOptions& options, at::Generator& gen, const StepCallback& callback = {});
// Reverse-diffusion predictor (Song et al. 2021, eq. 46) from the process' own transition
// x_t = a x_t' + b z: x' = (2 − a) x + b² s + b z.
SampleResult sample_reverse_diffusion(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                      const GridOptions& options, at::Generator& gen,
                                      const StepCallback& callback = {});
// DDPM ancestral sampling (VP only): x' = (x + b² s)/a + (b s'/s) z, the exact Gaussian posterior.
SampleResult sample_ancestral(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                              const GridOptions& options, at::Generator& gen, const StepCallback& callback = {});
// Corrector-only sampling: `corrector_steps` Langevin steps at each grid time.
SampleResult sample_langevin_corrector(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                       const CorrectorOptions& options, at::Generator& gen,
                                       const StepCallback& callback = {});
// Predictor–corrector (Song et al. 2021, Alg. 1): at each grid time the corrector, then the predictor.
SampleResult sample_pc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                       const PcOptions& options, at::Generator& gen, const StepCallback& callback = {});
// DDIM (Song, Meng & Ermon 2021) for any process x = m(x₀ + σε): x' = m' D + √(s'² − c²) ε̂ + c z,
// c = η b s'/s.
SampleResult sample_ddim(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                         const DdimOptions& options, at::Generator& gen, const StepCallback& callback = {});
// The probability-flow ODE dx/dt = f − ½ g² s with Euler steps; deterministic.
SampleResult sample_ode_euler(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                              const GridOptions& options, const StepCallback& callback = {});

// Inpainting with the predictor–corrector sampler (Song et al. 2021, App. I.2): after every corrector
// and predictor step the known coordinates are replaced by a fresh forward sample of the originals at
// the new time, x ← mask·(m x₀ + s z) + (1 − mask)·x, and exactly x₀ at the end.
// known [N, D] holds the originals; mask [N, D] (or [1, D]) is 1 where a coordinate is known.
// The pc sampler's options from the [sample] section on a given grid (inpainting runs pc directly).
PcOptions pc_options(const SampleOptions& options, const GridOptions& grid);

struct Inpainting {
  torch::Tensor known, mask;
};
SampleResult sample_pc_inpaint(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                               const Inpainting& inpainting, const PcOptions& options, at::Generator& gen,
                               const StepCallback& callback = {});

}  // namespace scorediff
