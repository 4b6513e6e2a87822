// Samplers are free functions over a ScoreFn and a NoiseProcess (DESIGN §2): no model types here.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"
#include "scorediff/process/time_grid.hpp"

namespace scorediff {

struct SampleResult {
  torch::Tensor samples;  // like x_init
  int64_t nfe = 0;        // score evaluations
  std::vector<torch::Tensor> trajectory;  // snapshots, when asked for
  std::vector<double> trajectory_sigma;   // the noise level of each snapshot
};

// Called after each step with (steps done, total steps); for progress bars.
using StepCallback = std::function<void(int64_t done, int64_t total)>;

// Langevin dynamics at one noise level (seed 002 eq. 3.2.3): x ← x + η s(x) + √(2η) z.
struct LangevinOptions {
  double step_size = 0.01;  // η
  int64_t steps = 1000;
  double sigma = 0.0;       // noise level the score is evaluated at; 0 = the process' σ_min
  bool denoise = false;     // finish with the Tweedie step x + σ² s(x)
  int64_t snapshots = 0;    // record this many evenly spaced states
};
SampleResult sample_langevin(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                             const LangevinOptions& options, at::Generator& gen, const StepCallback& callback = {});

// Annealed Langevin dynamics (seed 002 Algorithm 1): T steps at each level σ_1 > … > σ_L with
// η_l = ε σ_l² / σ_L², then the Tweedie denoising step x + σ_L² s(x, σ_L) (on by default).
struct AnnealedLangevinOptions {
  double eps = 2e-5;              // ε: the step at the smallest level
  int64_t steps_per_level = 100;  // T
  std::vector<double> sigmas;     // levels, largest first; empty = the process' ladder
  bool denoise = true;
  bool snapshots = false;         // record the state at the end of each level
};
SampleResult sample_annealed_langevin(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                      const AnnealedLangevinOptions& options, at::Generator& gen,
                                      const StepCallback& callback = {});

// Reverse-time samplers of a score SDE (seed 003; Song et al. 2021). Each integrates from t_max down to
// t_end on a time grid of `steps` intervals, then (denoise, on by default) returns the Tweedie mean
// E[x₀ | x_t_end] = (x + s² ∇log p)/m, one more score evaluation. Fields apply where their comment says.
struct DiffusionOptions {
  int64_t steps = 1000;                // grid intervals
  GridKind grid = GridKind::Uniform;   // spacing of the grid
  double rho = 7.0;                    // karras grid: ρ
  double t_end = 0.0;                  // last grid time; 0 = the process' t_min
  bool denoise = true;                 // finish with the Tweedie denoised mean
  int64_t snapshots = 0;               // record this many evenly spaced states
  // pc: the predictor (em, reverse-diffusion, ancestral, ode-euler, ddim, none) and corrector
  // (langevin, none); langevin-corrector is pc with no predictor.
  std::string predictor = "reverse-diffusion";
  std::string corrector = "langevin";
  double snr = 0.16;                   // Langevin corrector: step = 2α (snr ‖z‖ / ‖s‖)² (score_sde)
  int64_t corrector_steps = 1;         // Langevin corrector steps per grid time
  double eta = 0.0;                    // ddim: 0 deterministic, 1 = DDPM's posterior noise
  double s_churn = 0.0;                // edm: total churn (Karras et al. 2022, Alg. 2)
  double s_tmin = 0.0, s_tmax = 1e30;  // edm: σ range where churn applies
  double s_noise = 1.0;                // edm: noise inflation
  double rtol = 1e-5, atol = 1e-5;     // ode-rk45 tolerances
};

// Euler–Maruyama on the reverse SDE dx = [f − g² s] dt + g dw̄.
SampleResult sample_em(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                       const DiffusionOptions& options, at::Generator& gen, const StepCallback& callback = {});
// Reverse-diffusion predictor (Song et al. 2021, eq. 46) from the process' own transition
// x_t = a x_t' + b z: x' = (2 − a) x + b² s + b z.
SampleResult sample_reverse_diffusion(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                      const DiffusionOptions& options, at::Generator& gen,
                                      const StepCallback& callback = {});
// DDPM ancestral sampling (VP only): x' = (x + b² s)/a + (b s'/s) z, the exact Gaussian posterior.
SampleResult sample_ancestral(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                              const DiffusionOptions& options, at::Generator& gen, const StepCallback& callback = {});
// Corrector-only sampling: `corrector_steps` Langevin steps at each grid time.
SampleResult sample_langevin_corrector(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                       const DiffusionOptions& options, at::Generator& gen,
                                       const StepCallback& callback = {});
// Predictor–corrector (Song et al. 2021, Alg. 1): at each grid time the corrector, then the predictor.
SampleResult sample_pc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                       const DiffusionOptions& options, at::Generator& gen, const StepCallback& callback = {});
// Inpainting with the predictor–corrector sampler (Song et al. 2021, App. I.2): after every corrector
// and predictor step the known coordinates are replaced by a fresh forward sample of the originals at
// the new time, x ← mask·(m x₀ + s z) + (1 − mask)·x, and exactly x₀ at the end.
// known [N, D] holds the originals; mask [N, D] (or [1, D]) is 1 where a coordinate is known.
struct Inpainting {
  torch::Tensor known, mask;
};
SampleResult sample_pc_inpaint(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                               const Inpainting& inpainting, const DiffusionOptions& options, at::Generator& gen,
                               const StepCallback& callback = {});
// Probability-flow ODE dx/dt = f − ½ g² s with Euler, Heun, or adaptive Dormand–Prince 5(4).
SampleResult sample_ode_euler(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                              const DiffusionOptions& options, const StepCallback& callback = {});
SampleResult sample_ode_heun(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                             const DiffusionOptions& options, const StepCallback& callback = {});
SampleResult sample_ode_rk45(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                             const DiffusionOptions& options, const StepCallback& callback = {});
// DDIM (Song, Meng & Ermon 2021) for any process x = m(x₀ + σε): x' = m' D + √(s'² − c²) ε̂ + c z,
// c = η b s'/s.
SampleResult sample_ddim(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                         const DiffusionOptions& options, at::Generator& gen, const StepCallback& callback = {});
// EDM's second-order Heun sampler with churn (Karras et al. 2022, Alg. 2), in x̂ = x/m and σ.
SampleResult sample_edm(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                        const DiffusionOptions& options, at::Generator& gen, const StepCallback& callback = {});
// DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in x̂ = x/m and λ = −log σ, so VE, VP, sub-VP and EDM all
// use the same update x̂' = (σ'/σ) x̂ + (1 − σ'/σ) D̄; first order on the first (and, under 15 steps, the
// last) step.
SampleResult sample_dpm_solver(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                               const DiffusionOptions& options, const StepCallback& callback = {});

// Geometric levels from σ_max down to σ_min (seed 001 §4.3).
std::vector<double> geometric_sigmas(double sigma_max, double sigma_min, int64_t count);

}  // namespace scorediff
