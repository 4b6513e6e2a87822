// Predictor–corrector samplers (Song et al. 2021, Alg. 1) and the samplers that are one of its predictors
// or its corrector alone. Every one walks the same time grid and finishes with the Tweedie mean.
#include "scorediff/samplers/predictor_corrector.hpp"

#include <torch/torch.h>

#include <cmath>

#include "samplers/grid_run.hpp"
#include "scorediff/process/ode_solver.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

using grid::At;

enum class Predictor { None, EulerMaruyama, ReverseDiffusion, Ancestral, OdeEuler, Ddim };

Predictor parse_predictor(const std::string& name) {
  if (name == "none") return Predictor::None;
  if (name == "em") return Predictor::EulerMaruyama;
  if (name == "reverse-diffusion") return Predictor::ReverseDiffusion;
  if (name == "ancestral") return Predictor::Ancestral;
  if (name == "ode-euler") return Predictor::OdeEuler;
  if (name == "ddim") return Predictor::Ddim;
  fail("unknown predictor '{}'; valid: ancestral, ddim, em, none, ode-euler, reverse-diffusion", name);
}

void require_vp(const NoiseProcess& process, const char* sampler) {
  require(process.name() == "vp", "sampler '{}' needs process 'vp', not '{}'", sampler, process.name());
}

// One predictor step from `now` to `next` (next.t < now.t), in place on x; returns score evaluations.
// gen may be null for the deterministic predictors (ode-euler, ddim with η = 0).
int64_t predict(Predictor kind, const ScoreFn& score, const NoiseProcess& process, torch::Tensor& x,
                const torch::Tensor& t, const At& now, const At& next, double eta, at::Generator* gen) {
  if (kind == Predictor::None) return 0;
  torch::Tensor s = score(x, t);
  const double dt = now.t - next.t;
  switch (kind) {
    case Predictor::EulerMaruyama: {
      torch::Tensor drift = process.drift(x, t) - (now.g * now.g) * s;
      x = x - dt * drift + (now.g * std::sqrt(dt)) * grid::noise_like(x, gen, "em");
      break;
    }
    case Predictor::ReverseDiffusion: {
      grid::Transition tr = grid::transition(now, next);
      x = (2 - tr.a) * x + (tr.b * tr.b) * s + tr.b * grid::noise_like(x, gen, "reverse-diffusion");
      break;
    }
    case Predictor::Ancestral: {
      grid::Transition tr = grid::transition(now, next);
      double noise = tr.b * next.s / now.s;
      x = (x + (tr.b * tr.b) * s) / tr.a + noise * grid::noise_like(x, gen, "ancestral");
      break;
    }
    case Predictor::OdeEuler: x = x - dt * (process.drift(x, t) - (0.5 * now.g * now.g) * s); break;
    case Predictor::Ddim: {
      grid::Transition tr = grid::transition(now, next);
      torch::Tensor denoised = (x + (now.s * now.s) * s) / now.m;
      torch::Tensor eps = -now.s * s;
      double c = eta * tr.b * next.s / now.s;
      x = next.m * denoised + std::sqrt(std::max(next.s * next.s - c * c, 0.0)) * eps;
      if (c > 0) x = x + c * grid::noise_like(x, gen, "ddim");
      break;
    }
    case Predictor::None: break;
  }
  return 1;
}

// Langevin corrector at time `now` (Song et al. 2021, Alg. 4): step 2α(snr ‖z‖/‖s‖)², norms averaged
// over the batch, α = a² of the coming transition (1 − β_i for VP, 1 for VE).
int64_t correct(const ScoreFn& score, torch::Tensor& x, const torch::Tensor& t, const At& now, const At& next,
                double snr, int64_t steps, at::Generator* gen) {
  const double alpha = std::pow(now.m / next.m, 2);
  for (int64_t k = 0; k < steps; ++k) {
    torch::Tensor s = score(x, t);
    torch::Tensor z = grid::noise_like(x, gen, "langevin corrector");
    double grad_norm = s.flatten(1).norm(2, 1).mean().item<double>();
    double noise_norm = z.flatten(1).norm(2, 1).mean().item<double>();
    double step = grad_norm > 0 ? 2 * alpha * std::pow(snr * noise_norm / grad_norm, 2) : 0.0;
    x = x + step * s + std::sqrt(2 * step) * z;
  }
  return steps;
}

// Replaces the known coordinates by a forward sample of the originals at `now`.
void project(torch::Tensor& x, const Inpainting* inpainting, const At& now, at::Generator* gen) {
  if (!inpainting) return;
  const torch::Tensor& x0 = inpainting->known;
  torch::Tensor noised = now.m * x0 + now.s * grid::noise_like(x0, gen, "inpainting");
  x = torch::lerp(x, noised, inpainting->mask);
}

// The corrector's options; corrector_steps = 0 means no corrector.
struct Pc {
  Predictor predictor = Predictor::None;
  int64_t corrector_steps = 0;
  double snr = 0.16, eta = 0.0;
};

SampleResult run_pc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                    const Pc& pc, at::Generator* gen, const StepCallback& callback,
                    const Inpainting* inpainting = nullptr) {
  require(pc.snr >= 0, "snr must be >= 0, got {}", pc.snr);
  require(pc.eta >= 0 && pc.eta <= 1, "eta must be in [0, 1], got {}", pc.eta);
  if (pc.predictor == Predictor::Ancestral) require_vp(process, "ancestral");
  torch::InferenceMode guard;
  grid::GridRun run(process, x, o, callback);
  x = x.clone();
  for (int64_t i = 0; i < run.steps(); ++i) {
    At now = grid::at(process, run.time_at(i)), next = grid::at(process, run.time_at(i + 1));
    const torch::Tensor& t = run.time(now.t);
    if (pc.corrector_steps > 0) {
      run.result.nfe += correct(score, x, t, now, next, pc.snr, pc.corrector_steps, gen);
      project(x, inpainting, now, gen);
    }
    run.result.nfe += predict(pc.predictor, score, process, x, t, now, next, pc.eta, gen);
    project(x, inpainting, next, gen);
    run.after_step(i, x);
  }
  SampleResult result = run.finish(score, x);
  if (inpainting) result.samples = torch::lerp(result.samples, inpainting->known, inpainting->mask);
  return result;
}

Pc pc_of(const PcOptions& o) {
  require(o.corrector == "langevin" || o.corrector == "none", "unknown corrector '{}'; valid: langevin, none",
          o.corrector);
  if (o.corrector == "langevin")
    require(o.corrector_steps >= 1, "corrector_steps must be >= 1, got {}", o.corrector_steps);
  return {parse_predictor(o.predictor), o.corrector == "langevin" ? o.corrector_steps : 0, o.snr, o.eta};
}

Pc only(Predictor predictor, double eta = 0.0) { return {predictor, 0, 0.16, eta}; }

}  // namespace

SampleResult sample_em(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                       at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, only(Predictor::EulerMaruyama), &gen, callback);
}

SampleResult sample_reverse_diffusion(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                                      const GridOptions& o, at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, only(Predictor::ReverseDiffusion), &gen, callback);
}

SampleResult sample_ancestral(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                              at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, only(Predictor::Ancestral), &gen, callback);
}

SampleResult sample_langevin_corrector(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                                       const CorrectorOptions& o, at::Generator& gen, const StepCallback& callback) {
  require(o.corrector_steps >= 1, "corrector_steps must be >= 1, got {}", o.corrector_steps);
  return run_pc(score, process, std::move(x), o, {Predictor::None, o.corrector_steps, o.snr, 0.0}, &gen, callback);
}

SampleResult sample_pc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const PcOptions& o,
                       at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, pc_of(o), &gen, callback);
}

SampleResult sample_ddim(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const DdimOptions& o,
                         at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, only(Predictor::Ddim, o.eta), &gen, callback);
}

SampleResult sample_ode_euler(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                              const GridOptions& o, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, only(Predictor::OdeEuler), nullptr, callback);
}

SampleResult sample_pc_inpaint(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                               const Inpainting& inpainting, const PcOptions& o, at::Generator& gen,
                               const StepCallback& callback) {
  require(inpainting.known.sizes() == x.sizes(), "inpainting: known images have shape [{}], the samples [{}]",
          fmt::join(inpainting.known.sizes(), ", "), fmt::join(x.sizes(), ", "));
  require(inpainting.mask.dim() == 2 && inpainting.mask.size(1) == x.size(1) &&
              (inpainting.mask.size(0) == 1 || inpainting.mask.size(0) == x.size(0)),
          "inpainting: the mask has shape [{}], expected [1 or {}, {}]", fmt::join(inpainting.mask.sizes(), ", "),
          x.size(0), x.size(1));
  Inpainting on_device{inpainting.known.to(x.options()), inpainting.mask.to(x.options())};
  return run_pc(score, process, std::move(x), o, pc_of(o), &gen, callback, &on_device);
}

// ---- Specs -------------------------------------------------------------------------------------------

namespace {

CorrectorOptions corrector_options(const SampleOptions& o, const GridOptions& grid) {
  CorrectorOptions c;
  static_cast<GridOptions&>(c) = grid;
  c.snr = o.snr;
  c.corrector_steps = o.corrector_steps;
  return c;
}

std::vector<std::string> with(std::vector<std::string> keys, std::initializer_list<const char*> more) {
  keys.insert(keys.end(), more.begin(), more.end());
  return keys;
}

}  // namespace

PcOptions pc_options(const SampleOptions& o, const GridOptions& grid) {
  PcOptions p;
  static_cast<CorrectorOptions&>(p) = corrector_options(o, grid);
  p.predictor = o.predictor;
  p.corrector = o.corrector;
  p.eta = o.eta;
  return p;
}

SamplerSpec em_spec() { return sde_grid_spec("em", "Euler-Maruyama on the reverse SDE", sample_em, 1000); }

SamplerSpec reverse_diffusion_spec() {
  return sde_grid_spec("reverse-diffusion", "reverse-diffusion predictor (score_sde)", sample_reverse_diffusion, 1000);
}

SamplerSpec ancestral_spec() {
  SamplerSpec s = sde_grid_spec("ancestral", "DDPM ancestral sampling (vp only)", sample_ancestral, 1000);
  s.fits = [](const NoiseProcess& p) { return p.name() == "vp"; };
  s.fits_text = "vp";
  return s;
}

SamplerSpec langevin_corrector_spec() {
  SamplerSpec s = sde_grid_spec("langevin-corrector", "Langevin corrector alone, snr-scaled steps", nullptr, 1000);
  s.keys = with(grid_sample_keys(), {"snr", "corrector_steps"});
  s.nfe_per_step = [](const SampleOptions& o) { return o.corrector_steps; };
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) {
    return sample_langevin_corrector(score, process, std::move(x), corrector_options(o, call.grid), *call.gen,
                                     call.callback);
  };
  return s;
}

SamplerSpec pc_spec() {
  SamplerSpec s = sde_grid_spec("pc", "predictor-corrector: sample.predictor + sample.corrector", nullptr, 1000);
  s.keys = with(grid_sample_keys(), {"predictor", "corrector", "snr", "corrector_steps", "eta"});
  s.nfe_per_step = [](const SampleOptions& o) {
    return (o.predictor == "none" ? 0 : 1) + (o.corrector == "none" ? 0 : o.corrector_steps);
  };
  s.check = [](const SampleOptions& o, const NoiseProcess& process) {
    require(o.predictor != "ancestral" || process.name() == "vp",
            "sample.predictor = 'ancestral' needs process 'vp', not '{}'; predictors for '{}': ddim, em, none, "
            "ode-euler, reverse-diffusion", process.name(), process.name());
  };
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) {
    return sample_pc(score, process, std::move(x), pc_options(o, call.grid), *call.gen, call.callback);
  };
  return s;
}

SamplerSpec ddim_spec() {
  SamplerSpec s = sde_grid_spec("ddim", "DDIM with sample.eta, any process", nullptr, 100);
  s.keys = with(grid_sample_keys(), {"eta"});
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) {
    DdimOptions d;
    static_cast<GridOptions&>(d) = call.grid;
    d.eta = o.eta;
    return sample_ddim(score, process, std::move(x), d, *call.gen, call.callback);
  };
  return s;
}

SamplerSpec ode_euler_spec() {
  return ode_grid_spec("ode-euler", "probability-flow ODE, Euler", sample_ode_euler, 1000);
}

}  // namespace scorediff
