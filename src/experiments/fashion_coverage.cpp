// Seed 000's Fashion-MNIST failure, done right: the default model's samples cover all ten classes.
// Train the fashion-mnist preset, draw 1 000 samples with the EMA weights, and measure them with the
// dataset's classifier next to as many held-out images.
#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "coverage.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/pipeline/run_report.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/plot/figures.hpp"

namespace scorediff {
namespace {

// The autoguidance setting, chosen on selection seeds (1 and 2 for the default run of seed 0) against other images
// than this experiment measures with: stop 58 sampled the preset's own runs on seeds 1 and 2 (data sigma 0.59) with
// guides step-1000, step-2000 and step-4000 at w = 1.25 and 1.5 (`bench/sampler_sweep.sh`, docs/images.md, "Guidance
// for the sigma_data 0.59 preset") and kept the lowest mean FD-cls among the settings meeting the coverage bounds and
// a confident fraction of 0.85 of the floor's on both seeds. Earlier choices: step-2000, w = 1.25 (stop 53, the
// 12 000-step preset with sigma_data 0.5, seed 1) and step-1000, w = 1.5 (`fashion-guidance`, the 8 000-step preset).
constexpr double kGuidance = 1.25;
constexpr const char* kGuide = "step-1000";

const std::vector<std::string>& kFashionClasses = fashion_class_names();

// Up to `per_class` samples of each predicted class, one class per grid row (blank where a class has
// fewer): [classes · per_class, D].
torch::Tensor sorted_by_class(const torch::Tensor& samples, const torch::Tensor& predicted, int64_t classes,
                              int64_t per_class, double blank) {
  std::vector<torch::Tensor> rows;
  for (int64_t c = 0; c < classes; ++c) {
    torch::Tensor index = (predicted == c).nonzero().reshape({-1}).slice(0, 0, per_class);
    torch::Tensor row = torch::full({per_class, samples.size(1)}, blank);
    if (index.numel() > 0) row.slice(0, 0, index.numel()).copy_(samples.index_select(0, index));
    rows.push_back(row);
  }
  return torch::cat(rows);
}

}  // namespace

nlohmann::json run_fashion_coverage(const ExperimentContext& ctx) {
  Config config = experiment_config("fashion-mnist", ctx,
                                    {"sample.n=1000", "train.sample_every=1000", fmt::format("sample.guide={}", kGuide),
                                     fmt::format("sample.guidance={}", kGuidance)});
  auto [classifier, run] = train_image_run(config, ctx);
  const Prepared& p = run.prepared;
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "sample"), p.train_data.device());
  auto start = std::chrono::steady_clock::now();
  SampleResult sampled = run_sampler(config.sample, sampling_score_fn(run.config, run.ema_model, p, ctx.out / "train"), *p.process,
                                     p.train_data.size(1), gen, ctx.quiet);
  const double sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  torch::Tensor samples = sampled.samples.to(torch::kCPU);
  ImageEvaluation e = evaluate_images(*p.dataset, samples, classifier, static_cast<uint64_t>(config.run.seed),
                                      HeldOut::SecondHalf);

  torch::Tensor predicted = classify(classifier.classifier, to_unit_images(*p.dataset, samples)).argmax(1);
  // Empty cells are white: 1 is the top of either pixel range.
  save_image_grid(ctx.out / "samples_by_class.png", *p.dataset, sorted_by_class(samples, predicted, 10, 12, 1.0), 12);
  save_image_grid(ctx.out / "samples.png", *p.dataset, samples.slice(0, 0, 100), 10);
  {
    Figure figure(ctx.out / "class_histogram.png", 900, 420);
    figure.bars(1, "Share of samples per predicted class", "fraction", kFashionClasses,
                {{"samples", e.samples.class_fractions}, {"held-out images", e.real.class_fractions}}, 0.3);
    figure.save();
  }

  const double steps_per_s = run.steps_per_second();
  nlohmann::json metrics = e.to_json();
  metrics["train_seconds"] = run.seconds;
  metrics["train_steps_per_s"] = steps_per_s;
  metrics["sample_seconds"] = sample_seconds;
  metrics["nfe"] = sampled.nfe;
  metrics["guide"] = config.sample.guide;
  metrics["guidance"] = config.sample.guidance;
  metrics["parameters"] = run.parameters;
  metrics["classifier_test_accuracy"] = classifier.test_accuracy;

  Report report("Fashion-MNIST coverage: every class, measured (seed 000)");
  report.paragraph(fmt::format(
      "Seed 000's NCSN on Fashion-MNIST learned only the \"shirt\" class. Here the `fashion-mnist` preset (U-Net, {} "
      "parameters, EDM process and preconditioning, EMA {}) trains for {} steps of batch {} in {} ({:.2f} steps/s on {} "
      "thread(s)); {} samples come from the `{}` sampler ({} NFE) with the EMA weights in {}. The dataset's own classifier "
      "(test accuracy {:.1f} %) labels and embeds them; FD-cls and KID-cls use its penultimate features and are not "
      "Inception FID/KID. The floor is the same figure for as many held-out images.",
      run.parameters, num(config.train.ema_decay), config.train.steps, config.train.batch, format_duration(run.seconds),
      steps_per_s, config.run.threads, samples.size(0), config.sample.sampler, sampled.nfe, format_duration(sample_seconds),
      100 * classifier.test_accuracy));
  if (!config.sample.guide.empty() && config.sample.guidance != 1.0)
    report.paragraph(fmt::format(
        "The samples use autoguidance (Karras et al. 2024, \"Guiding a diffusion model with a bad version of itself\"): "
        "the score is s_guide + w (s_model − s_guide) with w = {} and, as the guide, the EMA weights of `{}` of the same "
        "run, a weaker model of the same process; each score evaluation costs two network evaluations. {} The figures "
        "here come from seed {} and the second half of the held-out images. `--resume --set sample.guidance=1` samples "
        "the same run without guidance.",
        num(config.sample.guidance), config.sample.guide,
        config.sample.guidance == kGuidance && config.sample.guide == kGuide
            ? "This w and guide were chosen on seeds 1 and 2 (the default run's selection seeds) with the same "
              "preset, against the training images (docs/images.md)."
            : "This w and guide were set for this run (the experiment's own choice, made on a selection seed, is "
              "different).",
        config.run.seed));
  std::vector<std::vector<std::string>> rows;
  for (size_t c = 0; c < kFashionClasses.size(); ++c)
    rows.push_back({kFashionClasses[c], num(e.samples.class_fractions[c]), num(e.real.class_fractions[c])});
  report.table({"class", "samples", "held-out images"}, rows);
  report.image("class_histogram.png", "Share of samples per predicted class");
  report.image("samples_by_class.png", "Samples sorted by predicted class, one class per row (T-shirt/top at the top, "
                                       "ankle boot at the bottom; blank where a class has fewer than 12)");
  Checks checks;
  coverage_of(e).add_checks(checks);
  metrics["checks"] = checks.to_json();
  report.heading("Acceptance");
  checks.add_to(report);
  report.paragraph(fmt::format("FD-cls {} (held-out floor {}); KID-cls {} (floor {}).", num(e.samples.fd_cls),
                               num(e.real.fd_cls), num(e.samples.kid_cls), num(e.real.kid_cls)));
  plot_loss_curves(ctx.out / "loss.png", run.log, level_sigmas(config.objective, *p.process), config.run.name);
  report.image("loss.png", "Training loss, total and per noise-level bin");
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
