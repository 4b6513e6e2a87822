// The [sample] section of a configuration: which sampler, how many samples and every sampler's keys.
// Each sampler's spec (samplers/registry.hpp) names the keys it reads; the rest are read by the
// pipeline for every sampler (n, denoise, use_ema, guide, guidance, class, cfg, classifier*, precision, init*).
#pragma once
#include <cstdint>
#include <string>

#include <torch/types.h>

#include "scorediff/core/schema.hpp"

namespace scorediff {

struct SampleOptions {
  std::string sampler = "ald";
  int64_t n = 2000;
  double eps = 2e-5;              // ald: step at the smallest level
  bool eps_auto = false;          // "auto": Song & Ermon 2020's technique 4, when the run is prepared
  int64_t steps_per_level = 100;  // ald: T
  double step_size = 0.01;        // langevin: η
  int64_t steps = 1000;           // langevin: steps
  // Grid samplers (em, pc, ode-*, ddim, edm, dpm-solver++, ...): score evaluations to spend, 0 = the
  // sampler's default (its spec's default_nfe); the grid intervals follow from it (grid_options).
  int64_t nfe = 0;
  std::string grid = "default";   // default (per sampler and process), uniform, karras, log-snr
  double rho = 7.0;               // karras grid
  double t_end = 0.0;             // last grid time; 0 = the process' t_min
  std::string predictor = "reverse-diffusion";  // pc
  std::string corrector = "langevin";           // pc
  double snr = 0.16;              // Langevin corrector signal-to-noise ratio
  int64_t corrector_steps = 1;    // Langevin corrector steps per grid time
  double eta = 0.0;               // ddim
  int64_t order = 3;              // unipc: predictor order
  double s_churn = 0.0;           // edm
  double s_tmin = 0.0;            // edm
  double s_tmax = 1e30;           // edm
  double s_noise = 1.0;           // edm
  double rtol = 1e-5;             // ode-rk45
  double atol = 1e-5;             // ode-rk45
  bool denoise = true;            // final Tweedie step
  bool use_ema = true;
  // Autoguidance (sampling_score_fn): a weaker checkpoint, "step-N" of the run or a path; "" = none.
  std::string guide;
  double guidance = 1.0;          // w: s_guide + w (s_model − s_guide); 1 = the model alone
  // Class-conditional models: which labels the samples get. auto: all for a class-conditional model, none
  // otherwise; all: an equal share of each class, in blocks; none: the null class (unconditional); "k" or
  // "k1,k2,...": those classes, an equal share of each, in blocks.
  std::string label = "auto";
  // Classifier-free guidance (Ho & Salimans 2022): s(x|y) + w (s(x|y) − s(x|∅)); 0 = the conditional score.
  double cfg = 0.0;
  // Classifier guidance (Dhariwal & Nichol 2021): a noise-conditional classifier (train-classifier --noisy) of
  // the run's process and data; the score gains classifier_scale ∇ₓ log p(y|x, σ). "" = none.
  std::string classifier;
  double classifier_scale = 1.0;
  std::string precision = "float32";  // bfloat16: the MLP's hidden products while sampling (BFloat16Inference)
  // Editing given points (SDEdit, Meng et al. 2022): they are noised to this time (or σ; 0 = neither) and the
  // sampler runs down from there. Needs the points (run_sampler's start, `sample --init`).
  double t_start = 0.0;
  double sigma_start = 0.0;
  std::string init = "prior";     // prior: N(0, σ_max² I); uniform: U[init_low, init_high]^D
  double init_low = -8.0;
  double init_high = 8.0;
};

// Binds every sample.* key; sample.sampler's choices are the registered samplers.
void bind(Schema& schema, SampleOptions& options);

// The labels [n] int64 of n samples under sample.class for a model with `classes` classes (K; 0 for an
// unconditional model), or an undefined tensor for unconditional sampling of an unconditional model. The
// null class is K. One line (exit 2) for a class outside [0, K), an unreadable list, or any class asked of an
// unconditional model.
torch::Tensor sample_labels(const std::string& spec, int64_t classes, int64_t n);

}  // namespace scorediff
