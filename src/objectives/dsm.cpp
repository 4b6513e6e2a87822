// Denoising score matching (Vincent 2011; seed 001 §2–§5).
#include <torch/torch.h>

#include <cmath>

#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"

namespace scorediff {

torch::Tensor dsm_target(const torch::Tensor& x_noisy, const torch::Tensor& x0, const torch::Tensor& sigma) {
  torch::Tensor s = per_sample(sigma.to(x_noisy.dtype()), x_noisy);
  return -(x_noisy - x0) / (s * s);
}

int64_t level_count(const ObjectiveOptions& o, const NoiseProcess& process) {
  if (o.sigma_sampling == "single") return 1;
  auto levels = process.levels();
  return levels.empty() ? 10 : static_cast<int64_t>(levels.size());
}

void sample_sigmas(const ObjectiveOptions& o, const NoiseProcess& process, int64_t batch, at::Generator& gen,
                   torch::Tensor& sigma, torch::Tensor& level) {
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  if (o.sigma_sampling == "single") {
    sigma = torch::full({batch}, o.sigma, f64);
    level = torch::zeros({batch}, torch::kInt64);
    return;
  }
  double lo = std::log(process.sigma_min()), hi = std::log(process.sigma_max());
  int64_t bins = level_count(o, process);
  if (o.sigma_sampling == "ladder") {
    auto levels = process.levels();
    level = torch::randint(0, bins, {batch}, gen, torch::kInt64);
    sigma = torch::tensor(levels, f64).index_select(0, level);
    return;
  }
  // log-uniform; bins run from the largest σ (level 0) down, as ladder levels do.
  torch::Tensor u = torch::rand({batch}, gen, f64);
  sigma = torch::exp(lo + u * (hi - lo));
  level = ((1.0 - u) * bins).floor().clamp(0, bins - 1).to(torch::kInt64);
}

void validate(const ObjectiveOptions& o, const NoiseProcess& process) {
  objectives().get(o.name);
  if (o.sigma_sampling == "ladder")
    require(!process.levels().empty(), "objective.sigma_sampling = 'ladder' needs a process with levels (process.name = 'ladder'), not '{}'",
            process.name());
}

namespace {

// x̃ = m x₀ + s ε; the target score of q(x̃|x₀) is −ε/s, and ½ λ ‖s_θ(x̃) + ε/s‖² per sample.
Objective make_dsm(const ObjectiveOptions& o) {
  return [o](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0, at::Generator& gen) {
    LossTerms out;
    sample_sigmas(o, process, x0.size(0), gen, out.sigma, out.level);
    torch::Tensor t = process.t_of_sigma(out.sigma);
    torch::Tensor m = process.mean_coef(t).to(x0.dtype()), s = process.std(t).to(x0.dtype());
    torch::Tensor eps = torch::randn(x0.sizes(), gen, x0.options());
    torch::Tensor s_b = per_sample(s, x0);
    torch::Tensor x_noisy = per_sample(m, x0) * x0 + s_b * eps;
    torch::Tensor predicted = score(x_noisy, t.to(x0.dtype()));
    if (o.weighting == "sigma2") {
      // σ² ½‖s_θ + ε/σ‖² = ½‖σ s_θ + ε‖²: the ε-prediction loss (seed 001 §5.1).
      out.loss = 0.5 * (s_b * predicted + eps).pow(2).flatten(1).sum(1);
    } else {
      out.loss = 0.5 * (predicted + eps / s_b).pow(2).flatten(1).sum(1);
    }
    return out;
  };
}

}  // namespace

void register_builtins(Registry<ObjectiveFactory>& r) {
  r.add("dsm", make_dsm, "denoising score matching, Gaussian kernel");
}

const Registry<ObjectiveFactory>& objectives() { return builtin_registry<ObjectiveFactory>("objective"); }

void bind(Schema& s, ObjectiveOptions& o) {
  s.add("objective.name", &o.name, "training objective").one_of(objectives().names());
  s.add("objective.sigma_sampling", &o.sigma_sampling, "how noise levels are drawn").one_of({"ladder", "log-uniform", "single"});
  s.add("objective.weighting", &o.weighting, "loss weight per noise level").one_of({"sigma2", "uniform"});
  s.add("objective.sigma", &o.sigma, "noise level when sigma_sampling = single").positive();
}

Objective make_objective(const ObjectiveOptions& options) { return objectives().get(options.name)(options); }

}  // namespace scorediff
