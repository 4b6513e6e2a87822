// Seeds 001-004 side by side: every objective of the score-matching family trains the same model on
// mog2 and on the Swiss roll for about the same wall time (the time DSM needs for train.steps steps), then
// is measured three ways: the Fisher divergence to the exact score at σ_min, the SWD of its annealed
// Langevin samples, and its training speed. The step counts come from fixed relative costs (below), so a
// seed fixes the whole run on any machine.
#include <torch/torch.h>

#include "scorediff/experiments/experiment.hpp"
#include "scorediff/experiments/toolkit.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/plot/figure.hpp"

namespace scorediff {
namespace {

// cost: seconds per step relative to DSM with the Gaussian kernel on each dataset's preset (mog2, Swiss roll),
// measured on the project's machine (2 cores, AVX-512; 1 thread, the other core training a U-Net) on 2026-12-02
// at commit d5c4cee: DSM's steps/s ÷ the objective's steps/s over the training runs of `scorediff experiment
// objectives` (seed 0), one run. An objective trains for train.steps / cost steps: about DSM's wall time, but the same steps on
// every machine.
struct ObjectiveVariant {
  std::string key, label;
  std::vector<std::string> sets;
  double cost_mog2, cost_swiss_roll;
};

const std::vector<ObjectiveVariant>& variants() {
  static const std::vector<ObjectiveVariant> all = {
      {"dsm-gaussian", "DSM, Gaussian", {"objective.name=dsm", "objective.kernel=gaussian"}, 1.0, 1.0},
      {"dsm-laplace", "DSM, Laplace", {"objective.name=dsm", "objective.kernel=laplace"}, 1.2, 1.358},
      {"dsm-student-t", "DSM, Student-t", {"objective.name=dsm", "objective.kernel=student-t"}, 1.225, 1.424},
      {"esm", "ESM", {"objective.name=esm"}, 1.41, 102.9},
      {"ism", "ISM", {"objective.name=ism"}, 8.848, 8.943},
      {"ssm", "SSM", {"objective.name=ssm"}, 5.795, 5.762},
      {"ssm-vr", "SSM-VR", {"objective.name=ssm-vr"}, 5.668, 5.868},
      {"sure", "SURE", {"objective.name=sure"}, 9.361, 12.3},
  };
  return all;
}

}  // namespace

nlohmann::json run_objectives(const ExperimentContext& ctx) {
  const std::vector<std::string> datasets = {"mog2", "swiss-roll"};
  const auto& all = variants();
  const int cols = static_cast<int>(all.size()) + 1;
  Figure fig(ctx.out / "samples.png", 360 * cols, 360 * static_cast<int>(datasets.size()), cols,
             static_cast<int>(datasets.size()));
  nlohmann::json metrics = nlohmann::json::object();
  Report report("Objectives of the score-matching family compared (seeds 001-004)");
  report.paragraph(
      "Each objective trains the dataset's preset model (noise-conditional MLP, σ² weighting, the preset's noise "
      "levels) for about the same wall time: the time DSM with the Gaussian kernel needs for the preset's "
      "`train.steps`. Its step count is `train.steps` divided by its cost per step relative to DSM, a fixed number "
      "measured once on the project's machine (column 'cost'), so that a seed fixes the run on any machine; the "
      "steps/s column is this run's own measurement. Then, with the "
      "EMA weights: the Fisher divergence E‖s_θ(x̃, σ_min) − ∇log p_σmin(x̃)‖² on 5 000 held-out noisy points "
      "(exact for mog2; for the Swiss roll the reference is its 4 000-component fine mixture), and the sliced "
      "Wasserstein distance of annealed-Langevin samples to fresh data next to the data-vs-data floor.");
  report.paragraph(
      "What differs between them. ESM regresses on the true score and needs it (only synthetic data has one). ISM "
      "needs tr ∇s: D extra backward passes. SSM and SSM-VR replace the trace by one random projection (one extra "
      "backward pass). DSM and SURE need no derivative of the model in x at all; SURE is DSM's denoiser form "
      "plus a divergence term, computed exactly here. The Laplace and Student-t kernels learn the score of data "
      "smoothed by their kernel rather than by a Gaussian, so their Fisher divergence to the Gaussian-smoothed "
      "reference, and their samples from the Gaussian annealing schedule, include that mismatch.");

  int row = 0;
  for (const std::string& dataset : datasets) {
    const ObjectiveVariant& reference_variant = all.front();
    Config dsm = experiment_config(dataset, ctx, {}, reference_variant.sets);
    report.heading(fmt::format("{}: {} DSM steps' worth of training each", dataset, dsm.train.steps));
    std::vector<std::vector<std::string>> rows;
    torch::Tensor data;
    Range range{};
    for (size_t v = 0; v < all.size(); ++v) {
      const ObjectiveVariant& variant = all[v];
      Config c = experiment_config(dataset, ctx, {}, variant.sets);
      const double cost = dataset == "mog2" ? variant.cost_mog2 : variant.cost_swiss_roll;
      c.train.steps = std::max<int64_t>(1, std::llround(static_cast<double>(dsm.train.steps) / cost));
      c.train.warmup = std::min(c.train.warmup, c.train.steps / 10);
      if (!ctx.quiet) fmt::print(stderr, "objectives: {} / {}: {} steps\n", dataset, variant.key, c.train.steps);
      TrainedRun run = train_run(c, ctx.out / "runs" / dataset / variant.key, {false, ctx.quiet});
      const Prepared& p = run.prepared;
      const auto seed = static_cast<uint64_t>(run.config.run.seed);
      const double sigma_min = p.process->sigma_min();
      Fisher f = fisher_divergence(model_score_fn(run.ema_model, p.process), p.reference, *p.process, *p.dataset,
                                   sigma_min, 5000, seed);
      Sampled s = sample_and_measure(run.config, p, run.ema_model, ctx.quiet);
      const double steps_per_s = static_cast<double>(run.config.train.steps) / run.seconds;
      nlohmann::json& m = metrics[variant.key];
      m["fisher"][dataset] = f.divergence;
      m["relative_fisher"][dataset] = f.divergence / f.scale;
      m["swd"][dataset] = s.metrics.swd;
      m["swd_data_vs_data"][dataset] = s.metrics.swd_data_vs_data;
      m["steps_per_s"][dataset] = steps_per_s;
      m["steps"][dataset] = run.config.train.steps;
      m["cost"][dataset] = cost;
      m["train_seconds"][dataset] = run.seconds;
      m["nan_count"][dataset] = s.metrics.nan_count;
      m["max_radius_ratio"][dataset] = s.metrics.max_radius_ratio;
      if (!s.metrics.mode_weights.empty()) m["mode_weights"][dataset] = s.metrics.mode_weights;
      rows.push_back({variant.label, num(cost), std::to_string(run.config.train.steps), fmt::format("{:.0f}", steps_per_s),
                      num(f.divergence), num(f.divergence / f.scale), num(s.metrics.swd),
                      num(s.metrics.swd / s.metrics.swd_data_vs_data), num(s.metrics.max_radius_ratio)});
      if (!s.metrics.mode_weights.empty()) rows.back().push_back(fmt::format("{:.3f}", s.metrics.mode_weights.front()));
      if (v == 0) {
        data = p.train_data.to(torch::kCPU);
        range = dataset == "mog2" ? Range{-10, 10, -10, 10} : bounding_range({data});
        fig.scatter(row * cols + 1, fmt::format("{}: data", dataset), {{data, "", palette(0)}}, range);
      }
      fig.scatter(row * cols + static_cast<int>(v) + 2, fmt::format("{}: {:.2f}", variant.key, s.metrics.swd),
                  {{s.result.samples, "", palette(3)}}, range);
    }
    std::vector<std::string> header = {"objective", "cost", "steps", "steps/s", "Fisher at σ_min", "relative", "SWD", "SWD / floor",
                                       "max radius ratio"};
    if (rows.front().size() > header.size()) header.push_back("weight of (5,5), true 0.2");
    report.table(header, rows);
    ++row;
  }
  fig.save();
  report.image("samples.png", "Annealed-Langevin samples of each objective's model after equal training time (titles: "
                              "objective and SWD; points outside the window are not drawn)");
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
