// Seed 001 exercise 3: multi-scale DSM with λ(σ) = 1 (uniform), σ² and 1/(1+σ²) (SNR). Each model
// trains for the same steps; then, at each of the ladder's levels, the unweighted DSM loss in
// σ-normalised form ½E‖σ s(x̃, σ) + ε‖² on the same held-out points and noise for every model, the
// relative Fisher divergence to the reference score at that level, and annealed-Langevin sample SWD.
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/experiments/toolkit.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/plot/figure.hpp"

namespace scorediff {
namespace {

// ½E‖σ s(x + σε, σ) + ε‖² over fixed x, ε: the DSM loss at σ with the σ² normalisation that makes
// levels comparable (its minimum over s is ½(D − σ² E‖∇log p_σ‖²), not 0).
double level_loss(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0, const torch::Tensor& eps,
                  double sigma) {
  torch::NoGradGuard no_grad;
  torch::Tensor noisy = x0 + sigma * eps;
  torch::Tensor t = torch::full({x0.size(0)}, process.t_at_sigma(sigma), torch::kFloat32);
  torch::Tensor s = score(noisy, t).to(torch::kCPU);
  return 0.5 * (sigma * s + eps).pow(2).sum(1).mean().item<double>();
}

}  // namespace

nlohmann::json run_weighting(const ExperimentContext& ctx) {
  const std::vector<std::pair<std::string, std::string>> weightings = {
      {"uniform", "uniform λ = 1"}, {"sigma2", "λ = σ²"}, {"snr", "λ = 1/(1+σ²)"}};
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<Curve> loss_curves, fisher_curves;
  std::vector<std::vector<std::string>> sample_rows;
  std::vector<double> sigmas;
  std::vector<std::vector<double>> losses;
  Figure samples_fig(ctx.out / "samples.png", 420 * 4, 420, 4, 1);
  Config shown;
  for (size_t w = 0; w < weightings.size(); ++w) {
    const auto& [key, label] = weightings[w];
    Config c = experiment_config("swiss-roll", ctx, {}, {"objective.weighting=" + key});
    shown = c;
    TrainedRun run = train_run(c, ctx.out / "runs" / key, {false, ctx.quiet});
    const Prepared& p = run.prepared;
    const auto seed = static_cast<uint64_t>(c.run.seed);
    ScoreFn score = model_score_fn(run.ema_model, p.process);
    sigmas = p.process->levels();
    at::Generator gen = make_generator(derive_seed(seed, "weighting-held-out"));
    torch::Tensor x0 = p.dataset->sample(5000, gen);
    torch::Tensor eps = torch::randn(x0.sizes(), gen, x0.options());
    std::vector<double> per_level, fisher;
    for (double sigma : sigmas) {
      per_level.push_back(level_loss(score, *p.process, x0, eps, sigma));
      Fisher f = fisher_divergence(score, p.reference, *p.process, *p.dataset, sigma, 2000, seed);
      fisher.push_back(f.divergence / f.scale);
    }
    losses.push_back(per_level);
    Sampled s = sample_and_measure(run.config, p, run.ema_model, ctx.quiet);
    metrics[key] = {{"sigmas", sigmas},
                    {"loss_per_level", per_level},
                    {"relative_fisher_per_level", fisher},
                    {"swd", s.metrics.swd},
                    {"swd_data_vs_data", s.metrics.swd_data_vs_data},
                    {"max_radius_ratio", s.metrics.max_radius_ratio},
                    {"nan_count", s.metrics.nan_count},
                    {"train_seconds", run.seconds}};
    loss_curves.push_back({label, sigmas, per_level, palette(static_cast<int>(w))});
    fisher_curves.push_back({label, sigmas, fisher, palette(static_cast<int>(w))});
    sample_rows.push_back({label, num(s.metrics.swd), num(s.metrics.swd / s.metrics.swd_data_vs_data),
                           num(s.metrics.max_radius_ratio), std::to_string(s.metrics.nan_count)});
    Range range = bounding_range({p.train_data.to(torch::kCPU)});
    if (w == 0) samples_fig.scatter(1, "data", {{p.train_data.to(torch::kCPU), "", palette(0)}}, range);
    samples_fig.scatter(static_cast<int>(w) + 2, fmt::format("{}: SWD {:.3f}", label, s.metrics.swd),
                        {{s.result.samples, "", palette(3)}}, range);
  }
  samples_fig.save();
  Figure fig(ctx.out / "loss_per_scale.png", 1300, 560, 2, 1);
  fig.curves(1, "final DSM loss per scale", "#gs", "½E‖#gs s + #ge‖²", loss_curves, true, false);
  fig.curves(2, "relative Fisher divergence per scale", "#gs", "E‖s - ∇log p‖² / E‖∇log p‖²", fisher_curves,
             true, true);
  fig.save();

  Report report("Loss weighting in multi-scale DSM (seed 001, exercise 3)");
  report.paragraph(fmt::format(
      "Three models, identical except for λ(σ), trained by DSM with σ log-uniform in [{}, {}] for {} steps each. After "
      "training, each is evaluated at the {} levels of the ladder on the same 5 000 held-out points and the same "
      "noise: the DSM loss ½E‖σ s(x̃, σ) + ε‖² (σ-normalised so levels can be compared; its floor is "
      "½(D − σ²E‖∇log p_σ‖²), the same for every model) and the relative Fisher divergence to the reference score. "
      "Lower is better in both. (The Fisher divergence uses 2 000 noisy held-out points per level.)",
      num(shown.process.sigma_min), num(shown.process.sigma_max), shown.train.steps, sigmas.size()));
  std::vector<std::vector<std::string>> rows;
  for (size_t l = 0; l < sigmas.size(); ++l) {
    std::vector<std::string> row = {num(sigmas[l])};
    for (size_t w = 0; w < weightings.size(); ++w) row.push_back(num(losses[w][l]));
    rows.push_back(row);
  }
  report.table({"σ", "loss, uniform", "loss, σ²", "loss, SNR"}, rows);
  report.image("loss_per_scale.png", "Final loss (left) and relative Fisher divergence (right) per noise level");
  report.table({"weighting", "SWD", "SWD / floor", "max radius ratio", "NaN"}, sample_rows);
  report.image("samples.png", "Annealed-Langevin samples of each model");
  report.paragraph(
      "Why it matters: the unweighted DSM target −ε/σ has magnitude ~1/σ, so with λ = 1 the smallest levels dominate "
      "the gradient and the large ones are learned last; λ = σ² makes every level's loss O(1) (NCSN's choice); "
      "1/(1+σ²) is close to uniform below σ = 1 and down-weights large σ further. A loss close to ½E‖ε‖² = D/2 at "
      "a level means the score there is ≈ 0: nothing was learned. With λ = 1 the per-sample losses of one batch "
      "span five orders of magnitude (1/σ² from σ = 5 to 0.01), so each gradient is dominated by the batch's "
      "smallest σ, and Adam's second-moment estimate, inflated by those spikes, shrinks every other step.");
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
