// Seed 001 §8.4: DSM on the Swiss roll and annealed Langevin sampling, without overshooting samples.
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/run_report.hpp"

namespace scorediff {

nlohmann::json run_swiss_roll(const ExperimentContext& ctx) {
  Config config = experiment_config("swiss-roll", ctx);
  TrainedRun run = train_run(config, ctx.out, {false, ctx.quiet});
  Report report("Swiss roll: denoising score matching + annealed Langevin (seed 001)");
  report.paragraph(
      "Seed 001 trains its ScoreNet with random-σ DSM (σ log-uniform in [0.01, 5], σ² weighting) on the standardised "
      "Swiss roll and samples with annealed Langevin dynamics. Samples that overshoot the data (seed 000's \"snow "
      "noise\") show as a large `max_radius_ratio`; the final Tweedie step x + σ_L² s(x, σ_L) removes the last "
      "level's noise.");
  RunSummary summary = finish_run(run, ctx.out, ctx.quiet, report);
  const SampleMetrics& m = summary.metrics;
  nlohmann::json metrics = {{"swd", m.swd},
                            {"swd_data_vs_data", m.swd_data_vs_data},
                            {"swd_ratio", m.swd / m.swd_data_vs_data},
                            {"nan_count", m.nan_count},
                            {"max_radius_ratio", m.max_radius_ratio},
                            {"train_seconds", run.seconds},
                            {"sample_seconds", summary.sample_seconds},
                            {"nfe", summary.nfe},
                            {"n", m.n}};
  Checks checks;
  checks.at_most("swd_ratio", m.swd / m.swd_data_vs_data, 2.0)
      .equal("nan_count", static_cast<double>(m.nan_count), 0)
      .at_most("max_radius_ratio", m.max_radius_ratio, 1.5);
  metrics["checks"] = checks.to_json();
  report.heading("Acceptance");
  checks.add_to(report);
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
