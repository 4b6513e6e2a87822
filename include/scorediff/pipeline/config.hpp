// The configuration of a run: one options struct per module, bound into one Schema. Read from a TOML
// preset, changed by --set, validated in one place, printed whole by --dry-run, stored in checkpoints.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "scorediff/core/schema.hpp"
#include "scorediff/data/toy.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/train/trainer.hpp"

namespace scorediff {

struct RunOptions {
  std::string name = "run";
  int64_t seed = 0;
  int64_t threads = 1;
  std::string device = "cpu";
};

struct SampleOptions {
  std::string sampler = "ald";
  int64_t n = 2000;
  double eps = 2e-5;              // ald: step at the smallest level
  int64_t steps_per_level = 100;  // ald: T
  double step_size = 0.01;        // langevin: η
  int64_t steps = 1000;           // langevin: steps
  // Reverse-time samplers (em, pc, ode-*, ddim, edm, dpm-solver++, ...): score evaluations to spend,
  // 0 = the sampler's default (default_nfe); the grid intervals follow from it (sampler_steps).
  int64_t nfe = 0;
  std::string grid = "default";   // default (per sampler and process), uniform, karras, log-snr
  double rho = 7.0;               // karras grid
  double t_end = 0.0;             // last grid time; 0 = the process' t_min
  std::string predictor = "reverse-diffusion";  // pc
  std::string corrector = "langevin";           // pc
  double snr = 0.16;              // Langevin corrector signal-to-noise ratio
  int64_t corrector_steps = 1;    // Langevin corrector steps per grid time
  double eta = 0.0;               // ddim
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
  std::string precision = "float32";  // bfloat16: the MLP's hidden products while sampling (BFloat16Inference)
  std::string init = "prior";     // prior: N(0, σ_max² I); uniform: U[init_low, init_high]^D
  double init_low = -8.0;
  double init_high = 8.0;
};

struct Config {
  RunOptions run;
  DataOptions data;
  ProcessOptions process;
  ModelOptions model;
  ObjectiveOptions objective;
  TrainOptions train;
  SampleOptions sample;

  // A schema whose fields point into *this (rebuild it after copying a Config).
  Schema schema();
  // Fills presets (mixture parameters), checks every range, choice and cross-field rule.
  void validate();
  std::string to_toml();
};

// N when sample.guide names a step of the run ("step-N"), nothing when it is a path (or empty).
std::optional<int64_t> guide_step(const std::string& guide);

// Loads a preset by name (configs/<name>.toml, embedded in the binary) or a TOML file by path, then
// applies the --set assignments in order and validates.

Config load_config(const std::string& name_or_path, const std::vector<std::string>& assignments = {});
Config config_from_toml(const std::string& text, const std::string& origin,
                        const std::vector<std::string>& assignments = {});
std::vector<std::string> preset_names();
const std::string& preset_text(const std::string& name);

}  // namespace scorediff
