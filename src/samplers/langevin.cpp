#include <torch/torch.h>

#include <cmath>

#include "scorediff/process/tweedie.hpp"
#include "scorediff/samplers/langevin.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {

std::vector<double> geometric_sigmas(double sigma_max, double sigma_min, int64_t count) {
  require(count >= 1, "need at least one noise level");
  std::vector<double> out;
  for (int64_t i = 0; i < count; ++i) {
    double f = count == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(count - 1);
    out.push_back(sigma_max * std::pow(sigma_min / sigma_max, f));
  }
  return out;
}

SampleResult sample_langevin(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                             const LangevinOptions& o, at::Generator& gen, const StepCallback& callback) {
  require(o.steps >= 0, "Langevin steps must be >= 0, got {}", o.steps);
  require(o.step_size > 0, "Langevin step size must be > 0, got {}", o.step_size);
  torch::InferenceMode guard;
  x = x.clone();  // updated in place below; the caller's tensor stays as it was
  double sigma = o.sigma > 0 ? o.sigma : process.sigma_min();
  torch::Tensor t = torch::full({x.size(0)}, process.t_at_sigma(sigma), x.options());
  double noise_scale = std::sqrt(2 * o.step_size);
  SampleResult result;
  int64_t every = o.snapshots > 0 ? std::max<int64_t>(1, o.steps / o.snapshots) : 0;
  torch::Tensor z = torch::empty_like(x);
  for (int64_t n = 0; n < o.steps; ++n) {
    torch::Tensor s = score(x, t);
    z.normal_(0, 1, gen);
    x.add_(s, o.step_size).add_(z, noise_scale);
    if (every > 0 && (n + 1) % every == 0) {
      result.trajectory.push_back(x.clone());
      result.trajectory_sigma.push_back(sigma);
    }
    if (callback) callback(n + 1, o.steps);
  }
  result.nfe = o.steps;
  if (o.denoise) {
    x = tweedie_denoise(score, process, x, t);
    result.nfe += 1;
  }
  result.samples = x;
  return result;
}

SampleResult sample_annealed_langevin(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                                      const AnnealedLangevinOptions& o, at::Generator& gen,
                                      const StepCallback& callback) {
  require(o.steps_per_level >= 1, "steps per level must be >= 1, got {}", o.steps_per_level);
  require(o.eps > 0, "annealed Langevin eps must be > 0, got {}", o.eps);
  std::vector<double> sigmas = o.sigmas.empty() ? process.levels() : o.sigmas;
  require(!sigmas.empty(), "annealed Langevin needs noise levels: use process 'ladder' or give sigmas");
  torch::InferenceMode guard;
  x = x.clone();  // updated in place below; the caller's tensor stays as it was
  const double sigma_last = sigmas.back();
  const int64_t total = static_cast<int64_t>(sigmas.size()) * o.steps_per_level;
  SampleResult result;
  torch::Tensor z = torch::empty_like(x);
  torch::Tensor t = torch::empty({x.size(0)}, x.options());
  int64_t done = 0;
  for (double sigma : sigmas) {
    double eta = o.eps * (sigma * sigma) / (sigma_last * sigma_last);
    double noise_scale = std::sqrt(2 * eta);
    t.fill_(process.t_at_sigma(sigma));
    for (int64_t n = 0; n < o.steps_per_level; ++n) {
      torch::Tensor s = score(x, t);
      z.normal_(0, 1, gen);
      x.add_(s, eta).add_(z, noise_scale);
      if (callback) callback(++done, total);
    }
    if (o.snapshots) {
      result.trajectory.push_back(x.clone());
      result.trajectory_sigma.push_back(sigma);
    }
  }
  result.nfe = total;
  if (o.denoise) {
    x = tweedie_at(score, process, x, process.t_at_sigma(sigma_last));
    result.nfe += 1;
  }
  result.samples = x;
  return result;
}

SamplerSpec ald_spec() {
  SamplerSpec s;
  s.name = "ald";
  s.help = "annealed Langevin dynamics over the process' levels (seed 002 Alg. 1)";
  s.kind = SamplerKind::Langevin;
  s.fits = [](const NoiseProcess& p) { return !p.levels().empty(); };
  s.fits_text = "ladder";
  s.keys = {"eps", "steps_per_level"};
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) {
    AnnealedLangevinOptions options;
    options.eps = o.eps;
    options.steps_per_level = o.steps_per_level;
    options.denoise = o.denoise;
    options.snapshots = call.snapshots;
    if (editing(o)) {  // SDEdit: the levels at and below the start
      const double sigma_start = process.sigma_at(start_time(o, process));
      for (double sigma : process.levels())
        if (sigma <= sigma_start * (1 + 1e-9)) options.sigmas.push_back(sigma);
      require(!options.sigmas.empty(), "no level of the ladder is at or below the start sigma {}", sigma_start);
    }
    return sample_annealed_langevin(score, process, std::move(x), options, *call.gen, call.callback);
  };
  return s;
}

SamplerSpec langevin_spec() {
  SamplerSpec s;
  s.name = "langevin";
  s.help = "Langevin dynamics at the smallest noise level";
  s.kind = SamplerKind::Langevin;
  s.keys = {"step_size", "steps"};
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) {
    LangevinOptions options;
    options.step_size = o.step_size;
    options.steps = o.steps;
    options.denoise = o.denoise;
    options.snapshots = call.snapshots ? 10 : 0;
    return sample_langevin(score, process, std::move(x), options, *call.gen, call.callback);
  };
  return s;
}

}  // namespace scorediff
