// Seed 001 exercise 2: DSM at a single noise level σ ∈ {0.1, 0.3, 0.5, 1} on the Swiss roll. A small
// σ gives a sharp score near the data but no signal away from it; a large σ gives a smooth field
// everywhere that points at a blurred roll. Each model is drawn as its score field and sampled by
// Langevin dynamics at its own σ (with and without the final Tweedie step).
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/experiments/toolkit.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/samplers/langevin.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/plot/figures.hpp"
#include "scorediff/process/tweedie.hpp"

namespace scorediff {

nlohmann::json run_noise_levels(const ExperimentContext& ctx) {
  const std::vector<double> sigmas = {0.1, 0.3, 0.5, 1.0};
  const int cols = static_cast<int>(sigmas.size());
  Figure fig(ctx.out / "noise_levels.png", 420 * cols, 3 * 420, cols, 3);
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  Config shown;
  for (int i = 0; i < cols; ++i) {
    const double sigma = sigmas[static_cast<size_t>(i)];
    Config c = experiment_config("swiss-roll", ctx, {"train.steps=4000", "sample.steps=2000"},
                                 {"objective.sigma_sampling=single", fmt::format("objective.sigma={}", sigma),
                                  fmt::format("process.sigma_min={}", sigma), "process.sigma_max=5.0",
                                  "sample.sampler=langevin", "sample.init=uniform", "sample.init_low=-3",
                                  "sample.init_high=3", fmt::format("sample.step_size={}", 0.1 * sigma * sigma)});
    shown = c;
    TrainedRun run = train_run(c, ctx.out / "runs" / fmt::format("sigma-{}", sigma), {false, ctx.quiet});
    const Prepared& p = run.prepared;
    const auto seed = static_cast<uint64_t>(c.run.seed);
    ScoreFn score = model_score_fn(run.ema_model, p.process);

    // Langevin at σ from the same uniform start for every σ, then the Tweedie step x + σ² s(x, σ).
    at::Generator gen = make_generator(derive_seed(seed, "noise-levels-sample"), p.train_data.device());
    SampleOptions& s = run.config.sample;
    torch::Tensor start = initial_state(s, *p.process, s.n, 2, gen);
    LangevinOptions langevin;
    langevin.step_size = s.step_size;
    langevin.steps = s.steps;
    langevin.denoise = false;
    SampleResult result = sample_langevin(score, *p.process, start, langevin, gen);
    torch::Tensor noisy = result.samples.to(torch::kCPU);
    torch::Tensor t = torch::full({noisy.size(0)}, p.process->t_at_sigma(sigma), torch::kFloat32);
    torch::Tensor denoised;
    {
      torch::NoGradGuard no_grad;
      denoised = tweedie_denoise(score, *p.process, noisy, t).to(torch::kCPU);
    }
    SampleMetrics raw = evaluate_samples(*p.dataset, noisy, seed);
    SampleMetrics clean = evaluate_samples(*p.dataset, denoised, seed);
    Fisher f = fisher_divergence(score, p.reference, *p.process, *p.dataset, sigma, 5000, seed);
    metrics[fmt::format("{}", sigma)] = {{"swd", clean.swd},
                                         {"swd_without_tweedie", raw.swd},
                                         {"swd_data_vs_data", clean.swd_data_vs_data},
                                         {"fisher", f.divergence},
                                         {"relative_fisher", f.divergence / f.scale},
                                         {"nan_count", clean.nan_count},
                                         {"train_seconds", run.seconds}};
    rows.push_back({num(sigma), num(clean.swd), num(raw.swd), num(clean.swd_data_vs_data), num(f.divergence / f.scale)});

    torch::Tensor data = p.train_data.to(torch::kCPU);
    Range range{-3, 3, -3, 3};
    FieldPanel panel;
    panel.title = fmt::format("learned score, #gs = {}", num(sigma));
    panel.range = range;
    panel.nx = panel.ny = 21;
    torch::Tensor grid = grid_points(range, 21, 21);
    {
      torch::NoGradGuard no_grad;
      panel.field = score(grid, torch::full({grid.size(0)}, p.process->t_at_sigma(sigma), torch::kFloat32));
    }
    panel.density = kernel_density(data)(grid_points(range, 120, 120));
    panel.density_n = 120;
    fig.field(i + 1, panel);
    fig.scatter(cols + i + 1, fmt::format("Langevin at #gs = {}, SWD {:.3f}", num(sigma), raw.swd),
                {{noisy, "", palette(3)}}, range);
    fig.scatter(2 * cols + i + 1, fmt::format("+ Tweedie step, SWD {:.3f}", clean.swd), {{denoised, "", palette(2)}},
                range);
  }
  fig.save();

  Report report("Single noise levels on the Swiss roll (seed 001, exercise 2)");
  report.paragraph(fmt::format(
      "One model per σ, each trained by DSM at that σ only ({} steps, batch {}); then {} steps of Langevin dynamics "
      "at the same σ with η = 0.1 σ², from {} points uniform in [−3, 3]², and the Tweedie step x + σ² s(x, σ). SWD is "
      "measured against clean data (the floor, data vs data, is {}). The relative Fisher divergence E‖s_θ − ∇log p_σ‖² "
      "/ E‖∇log p_σ‖² is measured on noisy held-out points at the model's own σ, against the reference mixture.",
      shown.train.steps, shown.train.batch, shown.sample.steps, shown.sample.n,
      num(metrics[fmt::format("{}", sigmas[0])]["swd_data_vs_data"].get<double>())));
  report.table({"σ", "SWD after Tweedie", "SWD of Langevin samples", "SWD floor", "relative Fisher at σ"}, rows);
  report.paragraph(
      "Two failures pull in opposite directions. At small σ the samples sit on the roll (the Tweedie step makes them "
      "sharp) but Langevin steps of η = 0.1 σ² move too little to redistribute mass along it, so the proportions "
      "along the roll inherit the uniform start, and away from the data the score is only extrapolated (top row). "
      "At large σ the chains mix but follow p_σ, the roll blurred by σ; the Tweedie step maps each point to "
      "E[x | x̃], which pulls points into the inside of the curved roll. Annealing through the levels (seed 002) gets "
      "both: mixing at large σ, sharpness at small σ.");
  report.image("noise_levels.png", "Score fields (top), Langevin samples (middle) and after the Tweedie step (bottom)");
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
