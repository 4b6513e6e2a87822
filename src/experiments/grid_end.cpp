#include "grid_end.hpp"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {


// Where a 10-NFE log-SNR grid should end, with the exact score of the 8-Gaussians mixture (modes of std 0.5) under
// VP, VE and EDM: SWD over the floor of DPM-Solver++(3M) and UniPC for each last σ, the mean over three sample
// seeds (the run's seed + 5, 6, 7: a selection apart from the seed-11 check of the test
// SdeSamplers.HigherOrderSolversAtTenNfeWithAFewStepGrid). Each solver's end is the one whose worst process is best.
const std::vector<double> kSigmaEnds = {0.0, 0.015, 0.02, 0.03, 0.05, 0.07};  // 0: the process' own σ_min
const std::vector<std::string> kEndSolvers = {"dpm-solver++3m", "unipc"};
struct EndProcess {
  std::string name, preset, setting;  // setting: forced on top of the preset ("" = none)
};
const std::vector<EndProcess> kEndProcesses = {
    {"vp", "swiss-roll-vp", ""}, {"ve", "swiss-roll-ve", "process.sigma_max=40"}, {"edm", "swiss-roll-edm", "process.sigma_max=80"}};

// The share of the log-SNR range [ln σ_min, ln σ_max] that lies below σ.
double share_below(double sigma, double sigma_min, double sigma_max) {
  return std::log(sigma / sigma_min) / std::log(sigma_max / sigma_min);
}

}  // namespace

void few_step_grid_end(const ExperimentContext& ctx, Report& report, Checks& checks, nlohmann::json& metrics) {
  const std::vector<int64_t> seeds = {ctx.seed + 5, ctx.seed + 6, ctx.seed + 7};
  std::map<std::string, std::map<std::string, std::vector<double>>> mean;  // solver → process → per end
  std::map<std::string, double> sigma_min, sigma_max;
  int64_t samples = 0, steps = 0;
  Progress progress("grid end at 10 NFE", static_cast<int64_t>(kEndProcesses.size() * kEndSolvers.size()), "sweep",
                    ctx.quiet);
  int64_t done = 0;
  for (const auto& [name, preset, setting] : kEndProcesses) {
    std::vector<std::string> forced = {"data.name=8gaussians", "sample.n=5000", "sample.nfe=10", "sample.grid=log-snr"};
    if (!setting.empty()) forced.push_back(setting);
    Config c = experiment_config(preset, ctx, {}, forced);
    Prepared p = prepare(c);
    sigma_min[name] = p.process->sigma_min();
    sigma_max[name] = p.process->sigma_max();
    samples = c.sample.n;
    for (const auto& solver : kEndSolvers) {
      c.sample.sampler = solver;
      steps = grid_options(c.sample, *p.process).steps;
      for (double end : kSigmaEnds) {
        c.sample.t_end = end > 0 ? p.process->t_at_sigma(end) : 0.0;
        double sum = 0;
        for (int64_t seed : seeds) {
          at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(seed), "grid-end"));
          SampleResult r = run_sampler(c.sample, p.reference, *p.process, p.train_data.size(1), gen, true);
          SampleMetrics m = evaluate_samples(*p.dataset, r.samples, static_cast<uint64_t>(seed), kSweepProjections);
          sum += m.swd / m.swd_data_vs_data;
        }
        mean[solver][name].push_back(sum / static_cast<double>(seeds.size()));
      }
      progress.update(++done);
    }
  }
  progress.finish();

  std::vector<std::string> head = {"solver · process"};
  for (double end : kSigmaEnds) head.push_back(end > 0 ? "σ_end " + num(end) : "process σ_min");
  std::vector<std::vector<std::string>> rows;
  std::vector<Curve> curves;
  std::vector<std::string> below;  // per solver: the share of each process' log-SNR range below its selected end
  int colour = 0;
  for (const auto& solver : kEndSolvers) {
    size_t best = 0;
    double best_worst = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < kSigmaEnds.size(); ++i) {
      double worst = 0;
      for (const auto& e : kEndProcesses) worst = std::max(worst, mean[solver][e.name][i]);
      if (worst < best_worst) best_worst = worst, best = i;
    }
    metrics["grid_end"]["selected"][solver] = kSigmaEnds[best];
    std::vector<std::string> shares;
    for (const auto& [name, preset, setting] : kEndProcesses) {
      if (kSigmaEnds[best] > 0)
        shares.push_back(fmt::format("{} {} %", name, num(100 * share_below(kSigmaEnds[best], sigma_min[name], sigma_max[name]))));
      const auto& values = mean[solver][name];
      std::vector<std::string> row = {solver + " · " + name + " (σ_min " + num(sigma_min[name]) + ")"};
      Curve curve{solver + " " + name, {}, {}, palette(colour++)};
      for (size_t i = 0; i < values.size(); ++i) {
        row.push_back(i == best ? "**" + num(values[i]) + "**" : num(values[i]));
        curve.x.push_back(kSigmaEnds[i] > 0 ? kSigmaEnds[i] : sigma_min[name]);
        curve.y.push_back(values[i]);
        metrics["grid_end"][solver][name][kSigmaEnds[i] > 0 ? num(kSigmaEnds[i]) : "sigma_min"] = values[i];
      }
      checks.at_most("exact_score_10_nfe_" + solver + "_" + name + "_swd_over_floor_at_selected_end", values[best], 1.3);
      rows.push_back(row);
      curves.push_back(curve);
    }
    if (!shares.empty())
      below.push_back(fmt::format("{}'s end σ = {}: {}", solver, num(kSigmaEnds[best]), join_names(shares)));
  }
  Figure fig(ctx.out / "grid_end.png", 800, 600);
  fig.curves(1, "10 NFE, exact score: where the log-SNR grid ends", "last σ of the grid", "SWD / floor", curves, true);
  fig.save();
  report.heading("Ten evaluations with the exact score: where the grid ends");
  std::vector<std::string> ranges;
  for (const auto& e : kEndProcesses)
    ranges.push_back(fmt::format("{} from {} to {}", e.name, num(sigma_max[e.name]), num(sigma_min[e.name])));
  report.paragraph(fmt::format(
      "DPM-Solver++(3M) and UniPC at 10 NFE ({} steps and the final Tweedie step) on a log-SNR grid from the process' "
      "largest σ to σ_end (`sample.grid = \"log-snr\"`, `sample.t_end` = t(σ_end)), with the 8-Gaussians mixture's "
      "exact score: SWD of {} samples over the floor, the mean over sample seeds {}, {} and {} (each with its own "
      "reference sets). σ of the processes: {}. Bold: each solver's end whose worst process is best.",
      steps, samples, seeds[0], seeds[1], seeds[2], join_names(ranges)));
  report.table(head, rows);
  report.paragraph("The share of each process' log-SNR range that a grid to σ_min spends below the selected end: " +
                   join_names(below) + ".");
  report.image("grid_end.png", "SWD over the floor against the grid's last σ, log x");
}

}  // namespace scorediff
