#include "scorediff/pipeline/sampling.hpp"

#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/pipeline/config.hpp"

namespace scorediff {

namespace {

using DiffusionFn = SampleResult (*)(const ScoreFn&, const NoiseProcess&, torch::Tensor, const DiffusionOptions&,
                                     at::Generator&, const StepCallback&);
using OdeSamplerFn = SampleResult (*)(const ScoreFn&, const NoiseProcess&, torch::Tensor, const DiffusionOptions&,
                                      const StepCallback&);

SamplerEntry diffusion_entry(DiffusionFn fn) {
  return [fn](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
              bool snapshots, at::Generator& gen, const StepCallback& callback) {
    DiffusionOptions d = diffusion_options(o, process);
    d.snapshots = snapshots ? 10 : 0;
    return fn(score, process, std::move(x), d, gen, callback);
  };
}

SamplerEntry ode_entry(OdeSamplerFn fn) {
  return [fn](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
              bool snapshots, at::Generator&, const StepCallback& callback) {
    DiffusionOptions d = diffusion_options(o, process);
    d.snapshots = snapshots ? 10 : 0;
    return fn(score, process, std::move(x), d, callback);
  };
}

// Score evaluations per grid interval (the final Tweedie step adds one).
int64_t nfe_per_step(const SampleOptions& o) {
  const std::string& s = o.sampler;
  if (s == "ode-heun" || s == "edm") return 2;
  if (s == "langevin-corrector") return o.corrector_steps;
  if (s == "pc") return (o.predictor == "none" ? 0 : 1) + (o.corrector == "none" ? 0 : o.corrector_steps);
  return 1;
}

}  // namespace

int64_t default_nfe(const std::string& sampler) {
  if (sampler == "edm") return 35;           // Karras et al.: 18 Heun steps on CIFAR-10
  if (sampler == "dpm-solver++") return 20;  // Lu et al.: 15–20 for guided sampling
  if (sampler == "ddim") return 100;
  if (sampler == "ode-heun") return 201;
  if (sampler == "ald" || sampler == "langevin" || sampler == "ode-rk45") return 0;
  return 1000;  // score_sde's N = 1000
}

DiffusionOptions diffusion_options(const SampleOptions& o, const NoiseProcess& process) {
  DiffusionOptions d;
  const int64_t nfe = o.nfe > 0 ? o.nfe : default_nfe(o.sampler);
  const int64_t per_step = std::max<int64_t>(1, nfe_per_step(o));
  const int64_t final_step = o.denoise ? 1 : 0;
  d.steps = o.sampler == "ode-rk45" ? 1 : (nfe - final_step) / per_step;
  require(d.steps >= 1, "sample.nfe = {} is too small for sampler '{}': it needs at least {}", nfe, o.sampler,
          per_step + final_step);
  std::string grid = o.grid;
  if (grid == "default") {
    if (o.sampler == "edm" || process.name() == "edm") grid = "karras";
    else if (o.sampler == "dpm-solver++") grid = "log-snr";
    else grid = "uniform";
  }
  d.grid = parse_grid(grid);
  d.rho = o.rho;
  d.t_end = o.t_end;
  d.denoise = o.denoise;
  d.predictor = o.predictor;
  d.corrector = o.corrector;
  d.snr = o.snr;
  d.corrector_steps = o.corrector_steps;
  d.eta = o.eta;
  d.s_churn = o.s_churn;
  d.s_tmin = o.s_tmin;
  d.s_tmax = o.s_tmax;
  d.s_noise = o.s_noise;
  d.rtol = o.rtol;
  d.atol = o.atol;
  return d;
}

std::vector<std::string> samplers_for(const NoiseProcess& process) {
  std::vector<std::string> out;
  for (const auto& name : samplers().names()) {
    if (name == "ald" && process.levels().empty()) continue;
    if (name == "ancestral" && process.name() != "vp") continue;
    out.push_back(name);
  }
  return out;
}

void check_sampler(const SampleOptions& o, const NoiseProcess& process) {
  auto fits = samplers_for(process);
  require(std::find(fits.begin(), fits.end(), o.sampler) != fits.end(),
          "sample.sampler = '{}' does not fit process '{}'; samplers for '{}': {}", o.sampler, process.name(),
          process.name(), join_names(fits));
  if (o.sampler == "pc")
    require(o.predictor != "ancestral" || process.name() == "vp",
            "sample.predictor = 'ancestral' needs process 'vp', not '{}'; predictors for '{}': ddim, em, none, ode-euler, "
            "reverse-diffusion", process.name(), process.name());
  if (o.t_end > 0) process.check_time(o.t_end, "sample.t_end");
  if (default_nfe(o.sampler) > 0 || o.sampler == "ode-rk45") diffusion_options(o, process);
}

void register_builtins(Registry<SamplerEntry>& r) {
  r.add("ald", [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
                  bool snapshots, at::Generator& gen, const StepCallback& callback) {
    AnnealedLangevinOptions options;
    options.eps = o.eps;
    options.steps_per_level = o.steps_per_level;
    options.denoise = o.denoise;
    options.snapshots = snapshots;
    return sample_annealed_langevin(score, process, std::move(x), options, gen, callback);
  }, "annealed Langevin dynamics over the process' levels (seed 002 Alg. 1)");
  r.add("langevin", [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
                       bool snapshots, at::Generator& gen, const StepCallback& callback) {
    LangevinOptions options;
    options.step_size = o.step_size;
    options.steps = o.steps;
    options.denoise = o.denoise;
    options.snapshots = snapshots ? 10 : 0;
    return sample_langevin(score, process, std::move(x), options, gen, callback);
  }, "Langevin dynamics at the smallest noise level");
  r.add("em", diffusion_entry(sample_em), "Euler-Maruyama on the reverse SDE");
  r.add("reverse-diffusion", diffusion_entry(sample_reverse_diffusion), "reverse-diffusion predictor (score_sde)");
  r.add("ancestral", diffusion_entry(sample_ancestral), "DDPM ancestral sampling (vp only)");
  r.add("langevin-corrector", diffusion_entry(sample_langevin_corrector), "Langevin corrector alone, snr-scaled steps");
  r.add("pc", diffusion_entry(sample_pc), "predictor-corrector: sample.predictor + sample.corrector");
  r.add("ode-euler", ode_entry(sample_ode_euler), "probability-flow ODE, Euler");
  r.add("ode-heun", ode_entry(sample_ode_heun), "probability-flow ODE, Heun (2nd order)");
  r.add("ode-rk45", ode_entry(sample_ode_rk45), "probability-flow ODE, adaptive Dormand-Prince (sample.rtol, atol)");
  r.add("ddim", diffusion_entry(sample_ddim), "DDIM with sample.eta, any process");
  r.add("edm", diffusion_entry(sample_edm), "EDM 2nd-order Heun with churn, Karras grid");
  r.add("dpm-solver++", ode_entry(sample_dpm_solver), "DPM-Solver++(2M) in sigma, for vp, ve, subvp, edm");
}

const Registry<SamplerEntry>& samplers() { return builtin_registry<SamplerEntry>("sampler"); }

torch::Tensor initial_state(const SampleOptions& o, const NoiseProcess& process, int64_t n, int64_t dim,
                            at::Generator& gen, const torch::TensorOptions& tensor_options) {
  if (o.init == "uniform") return o.init_low + (o.init_high - o.init_low) * torch::rand({n, dim}, gen, tensor_options);
  return process.prior_sample(n, dim, gen, tensor_options);
}

SampleResult run_sampler(const SampleOptions& o, const ScoreFn& score, const NoiseProcess& process, int64_t dim,
                         at::Generator& gen, bool quiet, bool snapshots) {
  const SamplerEntry& sampler = samplers().get(o.sampler);
  torch::Tensor x = initial_state(o, process, o.n, dim, gen);
  Progress progress("sample " + o.sampler, 0, "step", quiet);
  SampleResult result = sampler(score, process, x, o, snapshots, gen, [&progress](int64_t done, int64_t total) {
    progress.set_total(total);
    progress.update(done);
  });
  progress.finish(fmt::format("{} NFE", result.nfe));
  return result;
}

}  // namespace scorediff
