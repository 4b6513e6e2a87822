#include "scorediff/objectives/objective.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "families.hpp"
#include "scorediff/objectives/contrastive.hpp"

namespace scorediff {

int64_t level_count(const ObjectiveOptions& o, const NoiseProcess& process) {
  if (o.name == "consistency") return o.consistency_steps - 1;  // one bin per pair of adjacent levels
  if (o.sigma_sampling == "single") return 1;
  auto levels = process.levels();
  return levels.empty() ? 10 : static_cast<int64_t>(levels.size());
}

namespace {

// Times drawn with density ∝ g(t)²/s(t)² by inverting a tabulated CDF (2 049 points, log-spaced in t so
// the 1/t peak of VP near t = 0 is resolved); returns t and the proposal density p(t).
void importance_times(const NoiseProcess& process, const torch::Tensor& u, torch::Tensor& t, torch::Tensor& density) {
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const double t0 = process.t_min() > 0 ? process.t_min() : 1e-5, t1 = process.t_max();
  torch::Tensor grid = torch::exp(torch::linspace(std::log(t0), std::log(t1), 2049, f64));
  auto h = [&](const torch::Tensor& times) { return process.diffusion(times).pow(2) / process.std(times).pow(2); };
  torch::Tensor hg = h(grid);
  torch::Tensor cdf = torch::cat({torch::zeros({1}, f64),
                                  torch::cumsum(0.5 * (hg.slice(0, 1) + hg.slice(0, 0, -1)) * grid.diff(), 0)});
  const double total = cdf[-1].item<double>();
  torch::Tensor target = u * total;
  torch::Tensor idx = torch::searchsorted(cdf, target).clamp(1, cdf.size(0) - 1);
  torch::Tensor c0 = cdf.index_select(0, idx - 1), c1 = cdf.index_select(0, idx);
  torch::Tensor g0 = grid.index_select(0, idx - 1), g1 = grid.index_select(0, idx);
  t = g0 + (g1 - g0) * ((target - c0) / (c1 - c0).clamp_min(1e-300));
  density = h(t) / total;
}

// The per-level bin of a position in [0, 1] measured from the largest σ (bin 0) down.
torch::Tensor level_bin(const torch::Tensor& from_top, int64_t bins) {
  return (from_top * bins).floor().clamp(0, bins - 1).to(torch::kInt64);
}

}  // namespace

void sample_sigmas(const ObjectiveOptions& o, const NoiseProcess& process, int64_t batch, at::Generator& gen,
                   torch::Tensor& sigma, torch::Tensor& level, torch::Tensor* importance) {
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  if (importance != nullptr) *importance = torch::ones({batch}, f64);
  if (o.sigma_sampling == "single") {
    sigma = torch::full({batch}, o.sigma, f64);
    level = torch::zeros({batch}, torch::kInt64);
    return;
  }
  int64_t bins = level_count(o, process);
  if (o.sigma_sampling == "time" || o.sigma_sampling == "importance") {
    const double t0 = process.t_min(), t1 = process.t_max();
    torch::Tensor u = torch::rand({batch}, gen, f64), t;
    if (o.sigma_sampling == "time") {
      t = t0 + u * (t1 - t0);
    } else {
      torch::Tensor density;
      importance_times(process, u, t, density);
      if (importance != nullptr) *importance = 1.0 / (density * (t1 - t0));
    }
    sigma = process.sigma(t);
    level = level_bin((t1 - t) / (t1 - t0), bins);
    return;
  }
  if (o.sigma_sampling == "ladder") {
    auto levels = process.levels();
    level = torch::randint(0, bins, {batch}, gen, torch::kInt64);
    sigma = torch::tensor(levels, f64).index_select(0, level);
    return;
  }
  // log σ at t_min and t_max, from one evaluation of the process (sigma_min() and sigma_max() take one each).
  const torch::Tensor ends = process.sigma(torch::tensor({process.t_min(), process.t_max()}, f64)).contiguous();
  const double lo = std::log(ends.data_ptr<double>()[0]), hi = std::log(ends.data_ptr<double>()[1]);
  if (o.sigma_sampling == "log-normal") {
    torch::Tensor log_sigma = (o.p_mean + o.p_std * torch::randn({batch}, gen, f64)).clamp(lo, hi);
    sigma = torch::exp(log_sigma);
    level = level_bin((hi - log_sigma) / (hi - lo), bins);
    return;
  }
  // log-uniform; bins run from the largest σ (level 0) down, as ladder levels do. One loop rather than eight
  // ATen operations: a toy model's whole training step is a few hundred microseconds.
  const torch::Tensor u = torch::rand({batch}, gen, f64);
  sigma = torch::empty({batch}, f64);
  level = torch::empty({batch}, torch::kInt64);
  const double* up = u.data_ptr<double>();
  double* sp = sigma.data_ptr<double>();
  int64_t* lp = level.data_ptr<int64_t>();
  for (int64_t i = 0; i < batch; ++i) {
    sp[i] = std::exp(lo + up[i] * (hi - lo));
    lp[i] = std::clamp(static_cast<int64_t>(std::floor((1.0 - up[i]) * static_cast<double>(bins))), int64_t{0}, bins - 1);
  }
}

torch::Tensor loss_weight(const std::string& weighting, const torch::Tensor& sigma) {
  torch::Tensor s2 = sigma * sigma;
  if (weighting == "uniform") return torch::ones_like(sigma);
  if (weighting == "sigma2") return s2;
  if (weighting == "snr") return 1.0 / (1.0 + s2);
  if (weighting == "ddpm") return s2 / (1.0 + s2);  // 1 − ᾱ with σ² = (1 − ᾱ)/ᾱ (seed 001 §6.1)
  fail("unknown weighting '{}'; valid: ddpm, sigma2, snr, uniform", weighting);
}

torch::Tensor loss_weight(const ObjectiveOptions& o, const NoiseProcess& process, const torch::Tensor& t,
                          const torch::Tensor& std) {
  if (o.weighting == "likelihood") return process.diffusion(t.to(torch::kFloat64)).pow(2).to(std.dtype());
  if (o.weighting == "flow") {  // (s (m + s)/m)²: flow matching's velocity loss as DSM (flow_matching.cpp)
    torch::Tensor m = process.mean_coef(t.to(torch::kFloat64)).to(std.dtype());
    return (std * (m + std) / m).pow(2);
  }
  if (o.weighting == "edm") {
    torch::Tensor sigma = process.sigma(t.to(torch::kFloat64)).to(std.dtype());
    double d2 = o.sigma_data * o.sigma_data;
    return std * std * (sigma * sigma + d2) / d2;
  }
  return loss_weight(o.weighting, std);
}

torch::Tensor uncertainty_weighted(const torch::Tensor& loss, const torch::Tensor& log_variance, int64_t elements) {
  require(loss.dim() == 1 && log_variance.sizes() == loss.sizes(),
          "uncertainty_weighted: loss [{}] and u [{}] must be [B]", fmt::join(loss.sizes(), ", "),
          fmt::join(log_variance.sizes(), ", "));
  require(elements >= 1, "uncertainty_weighted: elements per sample must be >= 1, got {}", elements);
  const torch::Tensor u = log_variance.to(loss.dtype());
  return loss * torch::exp(-u) + static_cast<double>(elements) * u;
}

NoisedBatch noise_batch(const ObjectiveOptions& o, const NoiseProcess& process, const torch::Tensor& x0,
                        at::Generator& gen) {
  NoisedBatch b;
  torch::Tensor importance;
  sample_sigmas(o, process, x0.size(0), gen, b.sigma, b.level, o.sigma_sampling == "importance" ? &importance : nullptr);
  b.t = process.t_of_sigma(b.sigma);
  torch::Tensor m = process.mean_coef(b.t).to(x0.dtype());
  b.std = process.std(b.t).to(x0.dtype());
  b.eps = torch::randn(x0.sizes(), gen, x0.options());
  b.x_noisy = torch::addcmul(per_sample(m, x0) * x0, per_sample(b.std, x0), b.eps);
  b.weight = loss_weight(o, process, b.t, b.std);
  if (o.sigma_sampling == "importance") b.weight = b.weight * importance.to(x0.dtype());
  b.weight = b.weight.to(x0.dtype());
  b.t = b.t.to(x0.dtype());
  return b;
}

torch::Tensor dsm_target(const torch::Tensor& x_noisy, const torch::Tensor& x0, const torch::Tensor& sigma) {
  torch::Tensor s = per_sample(sigma.to(x_noisy.dtype()), x_noisy);
  return -(x_noisy - x0) / (s * s);
}

torch::Tensor laplace_target(const torch::Tensor& n, const torch::Tensor& b) { return -torch::sign(n) / per_sample(b, n); }

torch::Tensor student_t_target(const torch::Tensor& n, double nu, const torch::Tensor& sigma) {
  torch::Tensor s = per_sample(sigma.to(n.dtype()), n);
  return -(nu + 1) * n / (nu * s * s + n * n);
}

void validate(const ObjectiveOptions& o, const NoiseProcess& process) {
  objectives().get(o.name);
  if (o.sigma_sampling == "ladder")
    require(!process.levels().empty(),
            "objective.sigma_sampling = 'ladder' needs a process with levels (process.name = 'ladder'), not '{}'",
            process.name());
  if (o.name != "gsm")
    require(o.op == "gradient", "objective.operator = '{}' applies to gsm only", o.op);
  if (o.name == "cd")
    require(o.sigma_sampling == "single",
            "objective.name = 'cd' trains the energy at one noise level: set objective.sigma_sampling = 'single' "
            "(and objective.sigma)");
  if (o.name == "cfm" || o.name == "cfm-coupled") {
    require(o.sigma_sampling != "importance" && o.sigma_sampling != "ladder",
            "objective.name = '{}' draws times by objective.sigma_sampling = 'time' (flow matching), 'log-uniform', "
            "'log-normal' or 'single', not '{}'", o.name, o.sigma_sampling);
    require(o.weighting == ObjectiveOptions{}.weighting,
            "objective.name = '{}' has its own weighting (it is dsm with objective.weighting = 'flow'); "
            "objective.weighting = '{}' does not apply", o.name, o.weighting);
  }
  if (o.name != "consistency") {
    const ObjectiveOptions defaults;
    require(o.consistency_steps == defaults.consistency_steps && o.target_decay == defaults.target_decay &&
                o.metric == defaults.metric,
            "objective.consistency_steps, target_decay and metric apply to objective.name = 'consistency' only");
    require(o.weighting != "ict", "objective.weighting = 'ict' applies to objective.name = 'consistency' only");
  } else {
    require(process.name() == "edm" || process.name() == "ve",
            "objective.name = 'consistency' needs a process with m(t) = 1 (edm or ve), not '{}'", process.name());
    require(o.weighting == "uniform" || o.weighting == "ict",
            "objective.name = 'consistency' weights its pairs by objective.weighting = 'uniform' (1) or 'ict' "
            "(1/(sigma_n+1 - sigma_n)), not '{}'", o.weighting);
  }
  if (o.name != "dsm")
    require(o.kernel == "gaussian", "objective.kernel = '{}' applies to dsm only; '{}' noises with the Gaussian kernel",
            o.kernel, o.name);
}

void register_builtins(Registry<ObjectiveFactory>& r) {
  r.add("dsm", make_dsm, "denoising score matching (kernel: gaussian, laplace, student-t)");
  r.add("cfm", make_cfm, "conditional flow matching: the velocity loss 1/2 |v - (eps - x0)|^2 (DSM, flow weighting)");
  r.add("esm", make_esm, "explicit score matching against the data's known score");
  r.add("ism", make_ism, "implicit score matching, exact Jacobian trace (D backward passes)");
  r.add("ssm", make_ssm, "sliced score matching with random projections");
  r.add("ssm-vr", make_ssm_vr, "sliced score matching, variance reduced");
  r.add("sure", make_sure, "Stein's unbiased risk estimate of the Tweedie denoiser");
  r.add("cd", make_contrastive, "contrastive divergence for energy models: SGLD negatives from a replay buffer");
  r.add("cfm-coupled", make_coupled_cfm_placeholder,
        "flow matching on given (sample, noise) couplings, rectified flow's reflow: run `scorediff reflow`");
  r.add("consistency", make_consistency_placeholder,
        "consistency distillation (a teacher's Heun step) or training, EMA target network: run `scorediff distill`");
  r.add("gsm", make_gsm, "generalized score matching of Lp/p for a first-order operator L (objective.operator)");
}

const Registry<ObjectiveFactory>& objectives() { return builtin_registry<ObjectiveFactory>("objective"); }

void bind(Schema& s, ObjectiveOptions& o) {
  s.add("objective.name", &o.name, "training objective").one_of(objectives().names());
  s.add("objective.sigma_sampling", &o.sigma_sampling, "how noise levels are drawn")
      .one_of({"importance", "ladder", "log-normal", "log-uniform", "single", "time"});
  s.add("objective.weighting", &o.weighting, "loss weight per noise level")
      .one_of({"ddpm", "edm", "flow", "ict", "likelihood", "sigma2", "snr", "uniform"});
  s.add("objective.sigma", &o.sigma, "noise level when sigma_sampling = single").positive();
  s.add("objective.kernel", &o.kernel, "dsm noise kernel").one_of({"gaussian", "laplace", "student-t"});
  s.add("objective.laplace_b", &o.laplace_b, "dsm laplace: scale b as a fraction of sigma").positive();
  s.add("objective.nu", &o.nu, "dsm student-t: degrees of freedom").positive();
  s.add("objective.projections", &o.projections, "ssm, ssm-vr, sure and gsm (hutchinson): projections per sample").at_least(1);
  s.add("objective.projection", &o.projection, "distribution of projection vectors").one_of({"gaussian", "rademacher"});
  s.add("objective.divergence", &o.divergence, "sure, gsm: divergence estimate").one_of({"exact", "hutchinson"});
  s.add("objective.operator", &o.op, "gsm: the linear operator L").one_of({"gradient", "tweedie"});
  s.add("objective.p_mean", &o.p_mean, "log-normal sampling: mean of ln sigma");
  s.add("objective.p_std", &o.p_std, "log-normal sampling: std of ln sigma").positive();
  s.add("objective.sigma_data", &o.sigma_data, "edm weighting: data std").positive();
  s.add("objective.sgld_steps", &o.sgld_steps, "cd: Langevin steps per training step").at_least(1);
  s.add("objective.sgld_step", &o.sgld_step, "cd: Langevin step size epsilon").positive();
  s.add("objective.sgld_noise", &o.sgld_noise, "cd: Langevin noise std; auto = sqrt(2 epsilon)")
      .non_negative()
      .or_auto(&o.sgld_noise_auto);
  s.add("objective.buffer", &o.buffer, "cd: replay-buffer chains").at_least(1);
  s.add("objective.reinit", &o.reinit, "cd: fraction of drawn chains restarted from uniform noise").in_range(0, 1);
  s.add("objective.energy_reg", &o.energy_reg, "cd: weight of the energy regulariser U(x+)^2 + U(x-)^2").non_negative();
  s.add("objective.global_moves", &o.global_moves,
        "cd: Metropolis-Hastings moves per chain proposed from the restart distribution").non_negative();
  s.add("objective.consistency_steps", &o.consistency_steps, "consistency: N noise levels (karras grid, rho 7)")
      .in_range(2, 100000);
  s.add("objective.target_decay", &o.target_decay, "consistency: EMA decay of the target network (0 = the student)")
      .non_negative()
      .below(1.0);
  s.add("objective.metric", &o.metric, "consistency: distance between student and target outputs")
      .one_of({"l2", "pseudo-huber"});
}

Objective make_objective(const ObjectiveOptions& options, const ScoreFn* reference) {
  return objectives().get(options.name)(options, reference);
}

}  // namespace scorediff
