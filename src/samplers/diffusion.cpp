// Reverse-time SDE and probability-flow ODE samplers (seed 003; Song et al. 2021; Karras et al. 2022;
// Lu et al. 2022). Every sampler walks the same time grid and finishes with the Tweedie mean.
#include <torch/torch.h>

#include <cmath>

#include "scorediff/process/ode_solver.hpp"
#include "scorediff/process/tweedie.hpp"
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {
namespace {

// The scalar coefficients of one process at one time.
struct At {
  double t, m, s, sigma, g;
};
At at(const NoiseProcess& p, double t) {
  torch::Tensor tt = torch::full({1}, t, torch::kFloat64);
  return {t, p.mean_coef(tt).item<double>(), p.std(tt).item<double>(), p.sigma(tt).item<double>(),
          p.diffusion(tt).item<double>()};
}

// The forward transition from t' < t to t: x_t = a x_t' + b z, a = m/m', b² = s² − a² s'².
struct Transition {
  double a, b;
};
Transition transition(const At& now, const At& next) {
  double a = now.m / next.m;
  double b2 = now.s * now.s - a * a * next.s * next.s;
  return {a, std::sqrt(std::max(b2, 0.0))};
}

// Shared bookkeeping of the grid samplers: the grid, the time tensor, snapshots, the final denoising.
class GridRun {
 public:
  GridRun(const NoiseProcess& process, const torch::Tensor& x, const DiffusionOptions& o, StepCallback callback)
      : process_(process), o_(o), callback_(std::move(callback)) {
    require(o.steps >= 1, "a diffusion sampler needs at least 1 step, got {}", o.steps);
    grid = time_grid(process, o.steps, o.grid, o.rho, o.t_end);
    t = torch::empty({x.size(0)}, x.options());
    every_ = o.snapshots > 0 ? std::max<int64_t>(1, o.steps / o.snapshots) : 0;
  }
  int64_t steps() const { return static_cast<int64_t>(grid.size()) - 1; }
  const torch::Tensor& time(double value) {
    t.fill_(value);
    return t;
  }
  void after_step(int64_t i, const torch::Tensor& x) {
    if (every_ > 0 && (i + 1) % every_ == 0) {
      result.trajectory.push_back(x.clone());
      result.trajectory_sigma.push_back(process_.sigma_at(grid[static_cast<size_t>(i + 1)]));
    }
    if (callback_) callback_(i + 1, steps());
  }
  SampleResult finish(const ScoreFn& score, torch::Tensor x) {
    if (o_.denoise) {
      x = tweedie_at(score, process_, x, grid.back());
      result.nfe += 1;
    }
    result.samples = x;
    return std::move(result);
  }
  std::vector<double> grid;
  torch::Tensor t;
  SampleResult result;

 private:
  const NoiseProcess& process_;
  const DiffusionOptions& o_;
  StepCallback callback_;
  int64_t every_ = 0;
};

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
int64_t predict(Predictor kind, const ScoreFn& score, const NoiseProcess& process, torch::Tensor& x,
                const torch::Tensor& t, const At& now, const At& next, double eta, at::Generator& gen) {
  if (kind == Predictor::None) return 0;
  torch::Tensor s = score(x, t);
  const double dt = now.t - next.t;
  switch (kind) {
    case Predictor::EulerMaruyama: {
      torch::Tensor drift = process.drift(x, t) - (now.g * now.g) * s;
      x = x - dt * drift + (now.g * std::sqrt(dt)) * torch::randn(x.sizes(), gen, x.options());
      break;
    }
    case Predictor::ReverseDiffusion: {
      Transition tr = transition(now, next);
      x = (2 - tr.a) * x + (tr.b * tr.b) * s + tr.b * torch::randn(x.sizes(), gen, x.options());
      break;
    }
    case Predictor::Ancestral: {
      Transition tr = transition(now, next);
      double noise = tr.b * next.s / now.s;
      x = (x + (tr.b * tr.b) * s) / tr.a + noise * torch::randn(x.sizes(), gen, x.options());
      break;
    }
    case Predictor::OdeEuler: x = x - dt * (process.drift(x, t) - (0.5 * now.g * now.g) * s); break;
    case Predictor::Ddim: {
      Transition tr = transition(now, next);
      torch::Tensor denoised = (x + (now.s * now.s) * s) / now.m;
      torch::Tensor eps = -now.s * s;
      double c = eta * tr.b * next.s / now.s;
      x = next.m * denoised + std::sqrt(std::max(next.s * next.s - c * c, 0.0)) * eps;
      if (c > 0) x = x + c * torch::randn(x.sizes(), gen, x.options());
      break;
    }
    case Predictor::None: break;
  }
  return 1;
}

// Langevin corrector at time `now` (Song et al. 2021, Alg. 4): step 2α(snr ‖z‖/‖s‖)², norms averaged
// over the batch, α = a² of the coming transition (1 − β_i for VP, 1 for VE).
int64_t correct(const ScoreFn& score, torch::Tensor& x, const torch::Tensor& t, const At& now, const At& next,
                double snr, int64_t steps, at::Generator& gen) {
  const double alpha = std::pow(now.m / next.m, 2);
  for (int64_t k = 0; k < steps; ++k) {
    torch::Tensor s = score(x, t);
    torch::Tensor z = torch::randn(x.sizes(), gen, x.options());
    double grad_norm = s.flatten(1).norm(2, 1).mean().item<double>();
    double noise_norm = z.flatten(1).norm(2, 1).mean().item<double>();
    double step = grad_norm > 0 ? 2 * alpha * std::pow(snr * noise_norm / grad_norm, 2) : 0.0;
    x = x + step * s + std::sqrt(2 * step) * z;
  }
  return steps;
}

// Replaces the known coordinates by a forward sample of the originals at `now`.
void project(torch::Tensor& x, const Inpainting* inpainting, const At& now, at::Generator& gen) {
  if (!inpainting) return;
  const torch::Tensor& x0 = inpainting->known;
  torch::Tensor noised = now.m * x0 + now.s * torch::randn(x0.sizes(), gen, x0.options());
  x = torch::lerp(x, noised, inpainting->mask);
}

SampleResult run_pc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const DiffusionOptions& o,
                    Predictor predictor, bool corrector, at::Generator& gen, const StepCallback& callback,
                    const Inpainting* inpainting = nullptr) {
  require(o.snr >= 0, "snr must be >= 0, got {}", o.snr);
  require(!corrector || o.corrector_steps >= 1, "corrector_steps must be >= 1, got {}", o.corrector_steps);
  require(o.eta >= 0 && o.eta <= 1, "eta must be in [0, 1], got {}", o.eta);
  if (predictor == Predictor::Ancestral) require_vp(process, "ancestral");
  torch::InferenceMode guard;
  GridRun run(process, x, o, callback);
  x = x.clone();
  for (int64_t i = 0; i < run.steps(); ++i) {
    At now = at(process, run.grid[static_cast<size_t>(i)]), next = at(process, run.grid[static_cast<size_t>(i + 1)]);
    const torch::Tensor& t = run.time(now.t);
    if (corrector) {
      run.result.nfe += correct(score, x, t, now, next, o.snr, o.corrector_steps, gen);
      project(x, inpainting, now, gen);
    }
    run.result.nfe += predict(predictor, score, process, x, t, now, next, o.eta, gen);
    project(x, inpainting, next, gen);
    run.after_step(i, x);
  }
  SampleResult result = run.finish(score, x);
  if (inpainting) result.samples = torch::lerp(result.samples, inpainting->known, inpainting->mask);
  return result;
}

// D(x̂; σ) = x̂ + σ² m s(m x̂, t(σ)): the denoiser in scaled coordinates x̂ = x/m.
torch::Tensor denoise_scaled(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x_hat,
                             double sigma, torch::Tensor& t) {
  double time = process.t_at_sigma(sigma);
  At c = at(process, time);
  t.fill_(time);
  return x_hat + (c.sigma * c.sigma * c.m) * score(c.m * x_hat, t);
}

}  // namespace

SampleResult sample_em(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const DiffusionOptions& o,
                       at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, Predictor::EulerMaruyama, false, gen, callback);
}

SampleResult sample_reverse_diffusion(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                                      const DiffusionOptions& o, at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, Predictor::ReverseDiffusion, false, gen, callback);
}

SampleResult sample_ancestral(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                              const DiffusionOptions& o, at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, Predictor::Ancestral, false, gen, callback);
}

SampleResult sample_langevin_corrector(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                                       const DiffusionOptions& o, at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, Predictor::None, true, gen, callback);
}

SampleResult sample_pc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const DiffusionOptions& o,
                       at::Generator& gen, const StepCallback& callback) {
  require(o.corrector == "langevin" || o.corrector == "none", "unknown corrector '{}'; valid: langevin, none",
          o.corrector);
  return run_pc(score, process, std::move(x), o, parse_predictor(o.predictor), o.corrector == "langevin", gen,
                callback);
}

SampleResult sample_pc_inpaint(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                               const Inpainting& inpainting, const DiffusionOptions& o, at::Generator& gen,
                               const StepCallback& callback) {
  require(inpainting.known.sizes() == x.sizes(), "inpainting: known images have shape [{}], the samples [{}]",
          fmt::join(inpainting.known.sizes(), ", "), fmt::join(x.sizes(), ", "));
  require(inpainting.mask.dim() == 2 && inpainting.mask.size(1) == x.size(1) &&
              (inpainting.mask.size(0) == 1 || inpainting.mask.size(0) == x.size(0)),
          "inpainting: the mask has shape [{}], expected [1 or {}, {}]", fmt::join(inpainting.mask.sizes(), ", "),
          x.size(0), x.size(1));
  require(o.corrector == "langevin" || o.corrector == "none", "unknown corrector '{}'; valid: langevin, none",
          o.corrector);
  Inpainting on_device{inpainting.known.to(x.options()), inpainting.mask.to(x.options())};
  return run_pc(score, process, std::move(x), o, parse_predictor(o.predictor), o.corrector == "langevin", gen,
                callback, &on_device);
}

SampleResult sample_ode_euler(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                              const DiffusionOptions& o, const StepCallback& callback) {
  at::Generator unused;
  return run_pc(score, process, std::move(x), o, Predictor::OdeEuler, false, unused, callback);
}

SampleResult sample_ddim(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const DiffusionOptions& o,
                         at::Generator& gen, const StepCallback& callback) {
  return run_pc(score, process, std::move(x), o, Predictor::Ddim, false, gen, callback);
}

SampleResult sample_ode_heun(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                             const DiffusionOptions& o, const StepCallback& callback) {
  torch::InferenceMode guard;
  GridRun run(process, x, o, callback);
  torch::Tensor t_next = run.t.clone();
  for (int64_t i = 0; i < run.steps(); ++i) {
    double t0 = run.grid[static_cast<size_t>(i)], t1 = run.grid[static_cast<size_t>(i + 1)];
    torch::Tensor d0 = probability_flow_drift(score, process, x, run.time(t0));
    torch::Tensor x_euler = x + (t1 - t0) * d0;
    t_next.fill_(t1);
    torch::Tensor d1 = probability_flow_drift(score, process, x_euler, t_next);
    x = x + (0.5 * (t1 - t0)) * (d0 + d1);
    run.result.nfe += 2;
    run.after_step(i, x);
  }
  return run.finish(score, x);
}

SampleResult sample_ode_rk45(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                             const DiffusionOptions& o, const StepCallback& callback) {
  require(o.rtol > 0, "rtol must be > 0, got {}", o.rtol);
  require(o.atol > 0, "atol must be > 0, got {}", o.atol);
  torch::InferenceMode guard;
  DiffusionOptions one = o;
  one.steps = 1;  // the grid gives the two ends; the solver picks its own steps
  GridRun run(process, x, one, {});
  const double t0 = run.grid.front(), t1 = run.grid.back();
  torch::Tensor t = run.t.clone();
  OdeFn f = [&](const torch::Tensor& y, double time) {
    t.fill_(time);
    return probability_flow_drift(score, process, y, t);
  };
  Rk45Options ro;
  ro.rtol = o.rtol;
  ro.atol = o.atol;
  // Progress in time, as a fraction in thousandths.
  auto on_step = [&](double time) {
    if (callback) callback(static_cast<int64_t>(std::lround(1000 * (t0 - time) / (t0 - t1))), 1000);
  };
  Rk45Result r = integrate_rk45(f, x, t0, t1, ro, on_step);
  run.result.nfe = r.nfe;
  return run.finish(score, r.y);
}

SampleResult sample_edm(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const DiffusionOptions& o,
                        at::Generator& gen, const StepCallback& callback) {
  require(o.s_churn >= 0, "s_churn must be >= 0, got {}", o.s_churn);
  require(o.s_noise > 0, "s_noise must be > 0, got {}", o.s_noise);
  torch::InferenceMode guard;
  GridRun run(process, x, o, callback);
  const double sigma_top = process.sigma_max();
  const double gamma_max = std::min(o.s_churn / static_cast<double>(run.steps()), std::sqrt(2.0) - 1);
  torch::Tensor x_hat = x / at(process, run.grid.front()).m;
  for (int64_t i = 0; i < run.steps(); ++i) {
    double sigma = process.sigma_at(run.grid[static_cast<size_t>(i)]);
    double sigma_next = process.sigma_at(run.grid[static_cast<size_t>(i + 1)]);
    double gamma = (sigma >= o.s_tmin && sigma <= o.s_tmax) ? gamma_max : 0.0;
    double sigma_hat = std::min(sigma * (1 + gamma), sigma_top);
    if (sigma_hat > sigma)
      x_hat = x_hat + std::sqrt(sigma_hat * sigma_hat - sigma * sigma) * o.s_noise *
                          torch::randn(x_hat.sizes(), gen, x_hat.options());
    torch::Tensor d = (x_hat - denoise_scaled(score, process, x_hat, sigma_hat, run.t)) / sigma_hat;
    torch::Tensor x_next = x_hat + (sigma_next - sigma_hat) * d;
    torch::Tensor d_next = (x_next - denoise_scaled(score, process, x_next, sigma_next, run.t)) / sigma_next;
    x_hat = x_hat + (0.5 * (sigma_next - sigma_hat)) * (d + d_next);
    run.result.nfe += 2;
    run.after_step(i, x_hat * at(process, run.grid[static_cast<size_t>(i + 1)]).m);
  }
  return run.finish(score, x_hat * at(process, run.grid.back()).m);
}

SampleResult sample_dpm_solver(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                               const DiffusionOptions& o, const StepCallback& callback) {
  torch::InferenceMode guard;
  GridRun run(process, x, o, callback);
  torch::Tensor x_hat = x / at(process, run.grid.front()).m;
  torch::Tensor previous;  // D at the previous grid time
  double h_previous = 0;
  const bool lower_order_final = run.steps() < 15;
  for (int64_t i = 0; i < run.steps(); ++i) {
    double sigma = process.sigma_at(run.grid[static_cast<size_t>(i)]);
    double sigma_next = process.sigma_at(run.grid[static_cast<size_t>(i + 1)]);
    torch::Tensor d = denoise_scaled(score, process, x_hat, sigma, run.t);
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
    run.after_step(i, x_hat * at(process, run.grid[static_cast<size_t>(i + 1)]).m);
  }
  return run.finish(score, x_hat * at(process, run.grid.back()).m);
}

}  // namespace scorediff
