#include "scorediff/experiments/toolkit.hpp"

#include <torch/torch.h>

#include <chrono>

#include "scorediff/core/rng.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {

double measure_steps_per_second(Config config, double target_seconds) {
  Prepared p = prepare(config);
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "init"));
  ScoreModel model = make_model(config.model, p.train_data.size(1), gen);
  model->to(p.train_data.device());
  Objective objective = make_objective(config.objective, p.reference ? &p.reference : nullptr);
  Trainer trainer(model, p.process, objective, level_count(config.objective, *p.process), p.train_data, config.train,
                  static_cast<uint64_t>(config.run.seed));
  using Clock = std::chrono::steady_clock;
  trainer.step();
  auto first = Clock::now();
  trainer.step();
  double one = std::chrono::duration<double>(Clock::now() - first).count();
  const auto steps = static_cast<int64_t>(std::clamp(target_seconds / std::max(one, 1e-6), 2.0, 200.0));
  auto start = Clock::now();
  for (int64_t i = 0; i < steps; ++i) trainer.step();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(steps) / seconds;
}

Sampled sample_and_measure(const Config& config, const Prepared& p, const ScoreModel& model, bool quiet,
                           const std::string& stream, int reference_sets, int64_t projections) {
  Sampled out;
  ScoreFn score = model_score_fn(model, p.process);
  const auto seed = static_cast<uint64_t>(config.run.seed);
  at::Generator gen = make_generator(derive_seed(seed, stream), p.train_data.device());
  auto start = std::chrono::steady_clock::now();
  out.result = run_sampler(config.sample, score, *p.process, p.train_data.size(1), gen, quiet);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.result.samples = out.result.samples.to(torch::kCPU);
  out.metrics = evaluate_samples(*p.dataset, out.result.samples, seed, projections, reference_sets);
  return out;
}

Fisher fisher_divergence(const ScoreFn& model, const ScoreFn& truth, const NoiseProcess& process,
                         const ToyDataset& dataset, double sigma, int64_t n, uint64_t seed) {
  at::Generator gen = make_generator(derive_seed(seed, "fisher"));
  torch::Tensor x0 = dataset.sample(n, gen).to(torch::kFloat64);
  torch::Tensor t = torch::full({n}, process.t_at_sigma(sigma), torch::kFloat64);
  // x_t = m(t) (x₀ + σ ε): the process' own marginal at the time where σ(t) = sigma (m = 1 for VE and the ladder).
  const double m = process.mean_coef(t.narrow(0, 0, 1)).item<double>();
  torch::Tensor noisy = m * (x0 + sigma * torch::randn(x0.sizes(), gen, x0.options()));
  torch::Tensor exact = truth(noisy, t).to(torch::kFloat64);
  torch::Tensor learned;
  {
    // No graph: energy models turn autograd on for their own −∇E.
    torch::NoGradGuard no_grad;
    torch::Tensor x = noisy.to(torch::kFloat32);
    learned = model(x, t.to(torch::kFloat32)).detach().to(torch::kCPU, torch::kFloat64);
  }
  Fisher f;
  f.divergence = (learned - exact).pow(2).sum(1).mean().item<double>();
  f.scale = exact.pow(2).sum(1).mean().item<double>();
  return f;
}

}  // namespace scorediff
