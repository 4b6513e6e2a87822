#include "scorediff/pipeline/run_report.hpp"

#include <torch/torch.h>

#include <chrono>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/metrics/metrics.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/plot/figures.hpp"

namespace scorediff {

std::vector<double> level_sigmas(const ObjectiveOptions& objective, const NoiseProcess& process) {
  if (objective.sigma_sampling == "single") return {objective.sigma};
  if (objective.sigma_sampling == "ladder") return process.levels();
  int64_t bins = level_count(objective, process);
  double lo = std::log(process.sigma_min()), hi = std::log(process.sigma_max());
  std::vector<double> out;
  for (int64_t b = 0; b < bins; ++b) out.push_back(std::exp(hi - (b + 0.5) * (hi - lo) / bins));
  return out;
}

namespace {

std::string describe_run(const TrainedRun& run, const RunSummary& summary) {
  const Config& c = run.config;
  return fmt::format("Dataset `{}`, process `{}` (σ {} → {}), model `{}` ({} parameters), objective `{}` ({}, λ = {}), "
                     "{} steps in {:.1f} s; sampler `{}` with {} weights, {} NFE.",
                     c.data.name, c.process.name, num(c.process.sigma_max), num(c.process.sigma_min), c.model.name,
                     run.parameters, c.objective.name, c.objective.sigma_sampling, c.objective.weighting, c.train.steps,
                     run.seconds, c.sample.sampler, c.sample.use_ema ? "EMA" : "raw", summary.nfe);
}

void finish_image_run(TrainedRun& run, const std::filesystem::path& out_dir, const torch::Tensor& samples,
                      RunSummary& summary, Report& report) {
  const Config& c = run.config;
  const Prepared& p = run.prepared;
  save_image_grid(out_dir / "samples.png", *p.dataset, samples.slice(0, 0, std::min<int64_t>(samples.size(0), 100)));
  nlohmann::json metrics = {{"non_finite", count_non_finite(samples)}};
  std::error_code ec;
  if (std::filesystem::exists(default_classifier_path(c.data), ec)) {
    LoadedClassifier classifier = classifier_for(*p.dataset, c.data, "");
    ImageEvaluation e = evaluate_images(*p.dataset, samples, classifier, static_cast<uint64_t>(c.run.seed));
    summary.image_metrics = metrics = e.to_json();
  } else {
    summary.image_metrics = metrics;
  }
  metrics["nfe"] = summary.nfe;
  metrics["train_seconds"] = run.seconds;
  metrics["sample_seconds"] = summary.sample_seconds;
  metrics["steps"] = c.train.steps;
  metrics["parameters"] = run.parameters;
  write_file_atomic(out_dir / "metrics.json", metrics.dump(2) + "\n");

  report.paragraph(describe_run(run, summary));
  if (metrics.contains("fd_cls")) {
    report.table({"metric (classifier features, not Inception)", "samples", "held-out images"},
                 {{"FD-cls", num(metrics["fd_cls"].get<double>()), num(metrics["fd_cls_real"].get<double>())},
                  {"KID-cls", num(metrics["kid_cls"].get<double>()), num(metrics["kid_cls_real"].get<double>())},
                  {"confidently classified", num(metrics["confident_fraction"].get<double>()),
                   num(metrics["confident_fraction_real"].get<double>())}});
  } else {
    report.paragraph(fmt::format("No classifier at `{}`, so no FD-cls: train one with `scorediff train-classifier --data {}`.",
                                 default_classifier_path(c.data).string(), c.data.name));
  }
  plot_loss_curves(out_dir / "loss.png", run.log, level_sigmas(c.objective, *p.process), c.run.name);
  report.image("loss.png", "Training loss, total and per noise level");
  report.image("samples.png", fmt::format("Samples ({}, {} NFE)", c.sample.sampler, summary.nfe));
}

}  // namespace

RunSummary finish_run(TrainedRun& run, const std::filesystem::path& out_dir, bool quiet, Report& report) {
  Config& c = run.config;
  const Prepared& p = run.prepared;
  RunSummary summary;
  ScoreModel& model = c.sample.use_ema ? run.ema_model : run.model;
  ScoreFn score = sampling_score_fn(c, model, p, out_dir);
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(c.run.seed), "sample"), p.train_data.device());
  auto start = std::chrono::steady_clock::now();
  SampleResult result = run_sampler(c.sample, score, *p.process, p.train_data.size(1), gen, quiet, true);
  summary.sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.nfe = result.nfe;
  torch::Tensor samples = result.samples.to(torch::kCPU);
  write_npy(out_dir / "samples.npy", p.dataset->to_data_units(samples));  // a table's own units
  if (!p.dataset->image_shape().empty()) {
    finish_image_run(run, out_dir, samples, summary, report);
    return summary;
  }
  summary.metrics = evaluate_samples(*p.dataset, samples, static_cast<uint64_t>(c.run.seed));

  nlohmann::json metrics = summary.metrics.to_json();
  metrics["nfe"] = summary.nfe;
  metrics["train_seconds"] = run.seconds;
  metrics["sample_seconds"] = summary.sample_seconds;
  metrics["steps"] = c.train.steps;
  write_file_atomic(out_dir / "metrics.json", metrics.dump(2) + "\n");

  report.paragraph(describe_run(run, summary));
  std::vector<std::vector<std::string>> rows = {
      {"SWD (samples vs data)", num(summary.metrics.swd)},
      {"SWD (data vs data, same n)", num(summary.metrics.swd_data_vs_data)},
      {"NaN samples", std::to_string(summary.metrics.nan_count)},
      {"max radius ratio", num(summary.metrics.max_radius_ratio)}};
  if (!summary.metrics.mode_weights.empty())
    rows.push_back({"mode weights (true)", fmt::format("{:.3f} ({:.3f})", fmt::join(summary.metrics.mode_weights, "/"),
                                                       fmt::join(summary.metrics.true_weights, "/"))});
  report.table({"metric", "value"}, rows);

  std::vector<double> sigmas = level_sigmas(c.objective, *p.process);
  plot_loss_curves(out_dir / "loss.png", run.log, sigmas, c.run.name);
  report.image("loss.png", "Training loss, total and per noise level");
  if (p.train_data.size(1) == 2) {
    torch::Tensor data = p.train_data.to(torch::kCPU);
    plot_samples_vs_data(out_dir / "samples.png", data, samples, fmt::format("samples ({}, {} NFE)", c.sample.sampler, summary.nfe));
    report.image("samples.png", "Training data (left) and samples (right)");
    if (!result.trajectory.empty()) {
      plot_snapshots(out_dir / "snapshots.png", result, data);
      report.image("snapshots.png", "Sampler state at the end of each noise level");
    }
    Range range = bounding_range({data});
    std::vector<ScoreFieldSpec> fields;
    const double lo = p.process->sigma_min(), hi = p.process->sigma_max();
    auto density = kernel_density(data);
    // A class-conditional model's field on a grid has no labels to follow: its null class (the unconditional score).
    const bool conditional = model->classes() > 0;
    const ScoreFn field = conditional ? model_score_fn(model, p.process) : score;
    for (double s : {hi / 4, std::sqrt(lo * hi), lo * 5})
      fields.push_back({fmt::format("learned score{}, #gs = {:.3g}", conditional ? " (null class)" : "", s), field, s,
                        density, {}});
    plot_score_fields(out_dir / "score_field.png", *p.process, range, fields);
    report.image("score_field.png", "Learned score field at three noise levels over the data density (kernel estimate)");
  }
  return summary;
}

}  // namespace scorediff
