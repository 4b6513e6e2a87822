// Seed 000 Table 1: EMA turns an unsteady sample-quality curve into a steadily falling one. Train the
// mnist preset and, at regular steps, sample with the raw and with the EMA weights (the same noise for
// both) and measure FD-cls of each against the training images.
#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/pipeline/image_tasks.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/plot/figure.hpp"

namespace scorediff {

nlohmann::json run_mnist_ema(const ExperimentContext& ctx) {
  // The preset's sampler (stochastic Heun since issue 26; until then dpm-solver++ at 20 NFE), sample.n images per
  // evaluation and weights.
  Config config = experiment_config("mnist", ctx, {"sample.n=250"});
  const int64_t evaluations = 10;
  const int64_t every = std::max<int64_t>(1, config.train.steps / evaluations);
  auto dataset = make_dataset(config.data);
  LoadedClassifier classifier = ensure_classifier(*dataset, config.data, ctx.quiet);
  const auto seed = static_cast<uint64_t>(config.run.seed);
  auto process = make_process(config.process);

  std::vector<int64_t> steps;
  std::vector<double> fd_raw, fd_ema;
  torch::Tensor last_raw, last_ema;
  double eval_seconds = 0;
  TrainRunOptions options;
  options.quiet = ctx.quiet;
  options.hook_every = every;
  options.hook = [&](int64_t step, ScoreModel& raw, ScoreModel& ema) {
    auto start = std::chrono::steady_clock::now();
    auto measure = [&](ScoreModel& model, torch::Tensor& keep) {
      at::Generator gen = make_generator(derive_seed(seed, "ema-eval"), model->parameters().front().device());
      torch::Tensor x = run_sampler(config.sample, model_score_fn(model, process), *process, dataset->dim(), gen,
                                    /*quiet=*/true)
                            .samples.to(torch::kCPU);
      keep = x;
      return evaluate_images(*dataset, x, classifier, seed).samples.fd_cls;
    };
    steps.push_back(step);
    fd_raw.push_back(measure(raw, last_raw));
    fd_ema.push_back(measure(ema, last_ema));
    eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!ctx.quiet)
      fmt::print(stderr, "mnist-ema: step {}: FD-cls raw {:.3g}, EMA {:.3g}\n", step, fd_raw.back(), fd_ema.back());
  };
  TrainedRun run = train_run(config, ctx.out / "train", options);
  const double floor = evaluate_images(*dataset, held_out_images(*dataset, config.sample.n, seed), classifier, seed).samples.fd_cls;

  // The training loss of the log window that ends at each evaluation.
  std::vector<double> loss;
  for (int64_t step : steps) {
    double value = NAN;
    for (const auto& record : run.log)
      if (record["step"].get<int64_t>() <= step) value = record["loss"].get<double>();
    loss.push_back(value);
  }

  nlohmann::json metrics = nlohmann::json::object();
  for (size_t i = 0; i < steps.size(); ++i)
    // No log record yet at an early evaluation: null, as the JSON file would hold it.
    metrics[std::to_string(steps[i])] = {{"fd_raw", fd_raw[i]},
                                         {"fd_ema", fd_ema[i]},
                                         {"loss", std::isfinite(loss[i]) ? nlohmann::json(loss[i]) : nlohmann::json()}};

  std::vector<double> x(steps.begin(), steps.end());
  {
    Figure figure(ctx.out / "fd_curve.png", 1000, 420, 2, 1);
    figure.curves(1, "FD-cls along training", "step", "FD-cls",
                  {{"raw weights", x, fd_raw, palette(1)}, {"EMA weights", x, fd_ema, palette(0)},
                   {"held-out images (floor)", x, std::vector<double>(x.size(), floor), palette(7)}},
                  false, true);
    figure.curves(2, "training loss", "step", "loss", {{"loss", x, loss, palette(0)}}, false, true);
    figure.save();
  }
  save_image_grid(ctx.out / "samples_raw.png", *dataset, last_raw.slice(0, 0, 64), 8);
  save_image_grid(ctx.out / "samples_ema.png", *dataset, last_ema.slice(0, 0, 64), 8);

  double worst_rise = 0;
  for (size_t i = 1; i < steps.size(); ++i) worst_rise = std::max(worst_rise, fd_ema[i] / fd_ema[i - 1] - 1);

  Report report("MNIST: raw vs EMA weights along training (seed 000 Table 1)");
  report.paragraph(fmt::format(
      "The `mnist` preset trains for {} steps ({} parameters, {}, {:.2f} steps/s on {} thread(s)). Every {} steps, {} "
      "samples from the raw and from the EMA weights (decay {}; the same noise for both; `{}` at {} NFE{}) are measured "
      "with the MNIST classifier (test accuracy {:.1f} %). FD-cls uses the classifier's features, not Inception; the "
      "floor is FD-cls of as many held-out digits, {}. Evaluation took {} in all.",
      config.train.steps, run.parameters, format_duration(run.seconds), run.steps_per_second(),
      config.run.threads, every, config.sample.n, num(config.train.ema_decay), config.sample.sampler, config.sample.nfe,
      config.sample.sampler == "edm" && config.sample.s_churn > 0
          ? fmt::format(", churn {}", num(config.sample.s_churn))
          : std::string(),
      100 * classifier.test_accuracy, num(floor), format_duration(eval_seconds)));
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < steps.size(); ++i)
    rows.push_back({std::to_string(steps[i]), num(loss[i]), num(fd_raw[i]), num(fd_ema[i])});
  report.table({"step", "loss", "FD-cls raw", "FD-cls EMA"}, rows);
  report.image("fd_curve.png", "FD-cls of raw and EMA samples along training (log scale), and the training loss");
  report.image("samples_raw.png", "Raw weights, last evaluation");
  report.image("samples_ema.png", "EMA weights, last evaluation (same noise)");
  int64_t ema_above_raw = 0;  // evaluations from the third where the EMA is not below the raw weights
  for (size_t i = 2; i < steps.size(); ++i) ema_above_raw += fd_ema[i] < fd_raw[i] ? 0 : 1;
  Checks checks;
  checks.at_least("evaluations", static_cast<double>(steps.size()), 8)
      .equal("evaluations_with_ema_not_below_raw_from_the_third", static_cast<double>(ema_above_raw), 0)
      .at_most("largest_rise_of_ema_fd_between_evaluations", worst_rise, 0.2);
  report.heading("Acceptance");
  checks.add_to(report);
  report.save(ctx.out / "report.md");
  // The file holds what the experiment returns: the evaluations, the floor, the timings and the checks.
  nlohmann::json out = {{"evaluations", metrics},          {"fd_cls_real", floor},
                        {"train_seconds", run.seconds},    {"eval_seconds", eval_seconds},
                        {"checks", checks.to_json()}};
  write_metrics(ctx, out);
  return out;
}

}  // namespace scorediff
