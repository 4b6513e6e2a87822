#include "scorediff/objectives/consistency.hpp"

#include <torch/torch.h>

#include <cmath>

#include "families.hpp"

namespace scorediff {

std::vector<double> consistency_levels(double sigma_min, double sigma_max, int64_t n) {
  require(n >= 2, "consistency: objective.consistency_steps must be at least 2, got {}", n);
  require(sigma_min > 0 && sigma_min < sigma_max, "consistency: needs 0 < sigma_min < sigma_max, got {} and {}", sigma_min,
          sigma_max);
  constexpr double rho = 7.0;
  const double a = std::pow(sigma_min, 1 / rho), b = std::pow(sigma_max, 1 / rho);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = std::pow(a + static_cast<double>(i) / static_cast<double>(n - 1) * (b - a), rho);
  out.front() = sigma_min;
  out.back() = sigma_max;
  return out;
}

ConsistencyObjective::ConsistencyObjective(const ObjectiveOptions& options, ScoreFn teacher,
                                           std::shared_ptr<ConsistencyTarget> target,
                                           std::shared_ptr<const NoiseProcess> process)
    : state_(std::make_shared<State>()) {
  require(process->name() == "edm" || process->name() == "ve",
          "consistency models need a process with m(t) = 1 (edm or ve), not '{}'", process->name());
  require(target != nullptr, "consistency: no target network");
  state_->options = options;
  state_->teacher = std::move(teacher);
  state_->target = std::move(target);
  state_->process = process;
  state_->levels = consistency_levels(process->sigma_min(), process->sigma_max(), options.consistency_steps);
}

torch::Tensor ConsistencyObjective::teacher_step(const torch::Tensor& x, const torch::Tensor& sigma_from,
                                                 const torch::Tensor& sigma_to) const {
  torch::NoGradGuard no_grad;
  const NoiseProcess& process = *state_->process;
  const torch::Tensor from = per_sample(sigma_from.to(x.dtype()), x), to = per_sample(sigma_to.to(x.dtype()), x);
  // dx/dσ = (x − D)/σ = −σ s(x, σ) for m = 1.
  torch::Tensor d1 = -from * state_->teacher(x, process.t_of_sigma(sigma_from).to(x.dtype()));
  torch::Tensor x_euler = x + (to - from) * d1;
  torch::Tensor d2 = -to * state_->teacher(x_euler, process.t_of_sigma(sigma_to).to(x.dtype()));
  return x + (to - from) * 0.5 * (d1 + d2);
}

LossTerms ConsistencyObjective::operator()(const ScoreFn& student, const NoiseProcess& process, const torch::Tensor& x0,
                                           at::Generator& gen) const {
  const ObjectiveOptions& o = state_->options;
  state_->target->update(o.target_decay);
  const int64_t batch = x0.size(0);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor level = torch::randint(0, o.consistency_steps - 1, {batch}, gen, torch::TensorOptions().dtype(torch::kInt64));
  torch::Tensor table = torch::tensor(state_->levels, f64);
  torch::Tensor sigma_lo = table.index_select(0, level), sigma_hi = table.index_select(0, level + 1);
  torch::Tensor z = torch::randn(x0.sizes(), gen, x0.options());
  const torch::Tensor hi = per_sample(sigma_hi.to(x0.dtype()), x0);
  torch::Tensor x_hi = x0 + hi * z;
  torch::Tensor x_lo = state_->teacher ? teacher_step(x_hi, sigma_hi, sigma_lo)
                                       : x0 + per_sample(sigma_lo.to(x0.dtype()), x0) * z;
  // f = x + σ² s: the Tweedie mean, the consistency function under the consistency parametrisation.
  auto consistency = [&](const ScoreFn& score, const torch::Tensor& x, const torch::Tensor& sigma) {
    torch::Tensor s = per_sample(sigma.to(x.dtype()), x);
    return x + s * s * score(x, process.t_of_sigma(sigma).to(x.dtype()));
  };
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    const ScoreFn target_score = state_->target->score();
    target = consistency(target_score, x_lo.to(x0.dtype()), sigma_lo);
  }
  torch::Tensor online = consistency(student, x_hi, sigma_hi);
  torch::Tensor squared = (online - target).pow(2).flatten(1).sum(1);
  LossTerms out;
  if (o.metric == "pseudo-huber") {
    const double c = 0.00054 * std::sqrt(static_cast<double>(x0[0].numel()));
    out.loss = torch::sqrt(squared + c * c) - c;
  } else {
    out.loss = squared;
  }
  // λ: 1 (Song et al. 2023), or 1/(σ_{n+1} − σ_n) (Song & Dhariwal 2023, "Improved techniques for training
  // consistency models"), which weights the short steps near σ_min that anchor the chain as much as the long ones.
  if (o.weighting == "ict") out.loss = out.loss / (sigma_hi - sigma_lo).to(out.loss.dtype());
  out.sigma = sigma_hi;
  out.level = (o.consistency_steps - 2) - level;  // bins from the largest σ (0) down, as the other objectives'
  return out;
}

void ConsistencyObjective::save(TensorFile& file) const { state_->target->save(file); }

void ConsistencyObjective::restore(const TensorFile& file, const std::string& origin) {
  state_->target->restore(file, origin);
}

Objective make_consistency_placeholder(const ObjectiveOptions&, const ScoreFn*) {
  fail("objective.name = 'consistency' needs a target network and (for distillation) a teacher: train it with "
       "`scorediff distill --ckpt TEACHER` (or `scorediff distill --config ...` for consistency training)");
}

}  // namespace scorediff
