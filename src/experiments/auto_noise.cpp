// Seed 001 §9 and Song & Ermon 2020: the noise ladder and the Langevin step derived from the data
// ("auto") against the hand-set preset, on the Swiss roll and two moons, same training and sampling.
#include <torch/torch.h>

#include <algorithm>

#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/experiments/toolkit.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/likelihood/ode_likelihood.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/process/auto_noise.hpp"

namespace scorediff {

nlohmann::json run_auto_noise(const ExperimentContext& ctx) {
  constexpr double kBound = 1.5;
  // One seed's SWD / floor scatters by about ±0.3 on these data (training, sampling and the reference
  // sets each move it: docs/sde.md), as much as the settings differ, so each setting runs on seeds
  // seed … seed + repeats − 1 (5 unless --seeds says otherwise) and the check is on the mean.
  const int64_t repeats = ctx.seeds > 0 ? ctx.seeds : 5;
  // The SWD and its floor from 20 fresh reference sets (instead of the pipeline's 5) on 250 directions
  // (instead of 1000), for the same cost: on two moons a set's SWD follows its binomial share of each
  // moon, and 5 sets left one run's ratio scattering between 1.4 and 2.4 over evaluation seeds (docs/sde.md).
  constexpr int kSets = 20;
  constexpr int64_t kDirections = 250;
  const std::vector<std::string> auto_sets = {"process.sigma_max=auto", "process.sigma_min=auto", "process.levels=auto",
                                              "sample.eps=auto"};
  Report report("Noise levels from the data (seed 001 §9, Song & Ermon 2020)");
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows, summary;
  Checks checks;
  Figure figure(ctx.out / "samples.png", 380 * 4, 400, 4, 1);
  int panel = 1;
  std::vector<std::string> notes;
  for (const std::string data : {"swiss-roll", "two-moons"}) {
    for (const bool automatic : {false, true}) {
      const std::string name = data + (automatic ? "-auto" : "-preset");
      std::vector<double> ratios;
      int64_t nan_samples = 0;
      nlohmann::json first;
      for (int64_t r = 0; r < repeats; ++r) {
        const int64_t seed = ctx.seed + r;
        std::vector<std::string> forced = {"data.name=" + data, "run.name=" + data, fmt::format("run.seed={}", seed)};
        if (automatic) forced.insert(forced.end(), auto_sets.begin(), auto_sets.end());
        Config config = experiment_config("swiss-roll", ctx, {}, forced);
        TrainedRun run = train_run(config, ctx.out / fmt::format("{}-seed{}", name, seed), {false, ctx.quiet});
        if (automatic && r == 0)
          for (const auto& note : run.prepared.notes) notes.push_back(data + ": " + note);
        const Config& c = run.config;  // resolved: the auto values are numbers here
        Sampled s = sample_and_measure(c, run.prepared, run.ema_model, ctx.quiet, "sample", kSets, kDirections);
        const double ratio = s.metrics.swd / s.metrics.swd_data_vs_data;
        ratios.push_back(ratio);
        nan_samples += s.metrics.nan_count;
        rows.push_back({data, automatic ? "auto" : "preset", std::to_string(seed), num(c.process.sigma_max),
                        num(c.process.sigma_min), std::to_string(c.process.levels), num(c.sample.eps), num(s.metrics.swd),
                        num(s.metrics.swd_data_vs_data), num(ratio), std::to_string(s.metrics.nan_count)});
        if (r > 0) continue;
        first = {{"sigma_max", c.process.sigma_max}, {"sigma_min", c.process.sigma_min}, {"levels", c.process.levels},
                 {"eps", c.sample.eps},              {"train_seconds", run.seconds},     {"nfe", s.result.nfe}};
        torch::Tensor data_points = run.prepared.train_data.cpu();
        figure.scatter(panel++, fmt::format("{} {}, seed {}: SWD/floor {:.2f}", data, automatic ? "auto" : "preset", seed, ratio),
                       {{data_points, "data", palette(0), 0.15}, {s.result.samples, "samples", palette(1), 0.3}},
                       bounding_range({data_points}));
      }
      const MeanSe m = mean_se(torch::tensor(ratios, torch::kFloat64));
      const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
      summary.push_back({data, automatic ? "auto" : "preset", fmt::format("{:.3f} ± {:.3f}", m.mean, m.se), num(*lo), num(*hi)});
      metrics[name] = first;
      metrics[name]["swd_ratio"] = m.mean;
      metrics[name]["swd_ratio_se"] = m.se;
      metrics[name]["swd_ratios"] = ratios;
      metrics[name]["nan_samples"] = nan_samples;
      if (automatic) checks.at_most("swd_ratio_" + data + "_auto", m.mean, kBound);
    }
  }
  figure.save();
  const Config preset = experiment_config("swiss-roll", ctx);
  const ProcessOptions& pp = preset.process;
  report.paragraph(fmt::format(
      "The `swiss-roll` preset (NCSN ladder, DSM with σ² weighting, annealed Langevin, {} steps) on each data set, "
      "once with its hand-set σ_max = {}, σ_min = {}, L = {} and ε = {}, once with all four set to \"auto\": σ_max "
      "the largest distance between two training points (Song & Ermon 2020, technique 1), σ_min √{} times the "
      "data's noise floor (the std of its thinnest local direction; seed 001 §4.3), the level count and ε from how annealed Langevin treats Gaussian "
      "data of every scale from 0 to the data's largest principal standard deviation: the fewest levels (at least "
      "the shell rule's, technique 2) whose best ε leaves every scale's final variance within {} %, and that ε "
      "(technique 4 run over the whole ladder instead of one level, and over the data's scales instead of a "
      "point; docs/sde.md). Same seed, steps and sampler otherwise. In 2-D the shell rule's ratio is {}, against "
      "the preset's {}.",
      preset.train.steps, num(pp.sigma_max), num(pp.sigma_min), pp.levels, num(preset.sample.eps),
      num(kAutoVarianceTolerance), num(100 * kAutoVarianceTolerance), num(level_ratio(2)),
      num(std::pow(pp.sigma_max / pp.sigma_min, 1.0 / static_cast<double>(pp.levels - 1)))));
  report.paragraph(fmt::format("Each setting on seeds {} to {} (training data, network, sampling and the reference "
                               "sets all drawn from the seed); the check is on the mean SWD / floor. SWD and floor "
                               "are means over {} fresh reference sets of the samples' size, on {} random directions.",
                               ctx.seed, ctx.seed + repeats - 1, kSets, kDirections));
  report.table({"data", "setting", "SWD / floor, mean ± s.e.", "lowest", "highest"}, summary);
  report.table({"data", "setting", "seed", "σ_max", "σ_min", "levels", "ε", "SWD", "floor", "SWD / floor", "NaN"}, rows);
  report.heading(fmt::format("Where the auto values came from (seed {})", ctx.seed));
  std::string lines;
  for (const auto& n : notes) lines += n + "\n";
  report.code(lines);
  report.heading("Acceptance");
  checks.add_to(report);
  report.image("samples.png", fmt::format("Training data and annealed-Langevin samples, preset and auto, seed {}", ctx.seed));
  return finish_experiment(report, checks, std::move(metrics), ctx);
}

}  // namespace scorediff
