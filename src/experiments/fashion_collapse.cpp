// Seed 000's Fashion-MNIST failure, reproduced: the seed's NCSN set-up (the `fashion-ncsn` preset: noise
// ladder, annealed Langevin, no EMA, a small U-Net without dropout) and the fix it tried (a bigger U-Net
// with dropout), each trained while the class histogram of its samples is measured at regular steps, so
// that a collapse to few classes shows when it happens. The measure of collapse is the effective number
// of classes, exp(entropy) of the predicted-class shares: 10 for a balanced set, 1 for a single class.
#include <torch/torch.h>

#include "coverage.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

// A-priori definition, fixed before any run: a model has collapsed at an evaluation when its samples
// spread over fewer than 5 effective classes or one class takes more than half of them.
constexpr double kCollapsedClasses = 5.0;
constexpr double kCollapsedShare = 0.5;

double effective_classes(const std::vector<double>& shares) {
  double h = 0;
  for (double p : shares)
    if (p > 0) h -= p * std::log(p);
  return std::exp(h);
}

struct Variant {
  std::string key, label;
  std::vector<std::string> sets;
};

struct Evaluation {
  int64_t step = 0;
  ImageEvaluation e;
  double classes = 0;
  bool collapsed() const {
    return classes < kCollapsedClasses ||
           *std::max_element(e.samples.class_fractions.begin(), e.samples.class_fractions.end()) > kCollapsedShare;
  }
};

}  // namespace

nlohmann::json run_fashion_collapse(const ExperimentContext& ctx) {
  const std::vector<Variant> variants = {
      {"seed", "the seed's set-up: small U-Net, no dropout", {}},
      {"bigger-dropout", "bigger U-Net with dropout (the seed's fix)", {"model.channels=32", "model.dropout=0.1"}}};
  constexpr int64_t kEvaluations = 6;
  const std::vector<std::string>& names = fashion_class_names();
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  Checks checks;
  Config shown;
  double floor_classes = 0;
  Figure curves(ctx.out / "classes.png", 1000, 420, 2, 1);
  std::vector<Curve> effective, largest;
  for (size_t v = 0; v < variants.size(); ++v) {
    const Variant& variant = variants[v];
    Config config = experiment_config("fashion-ncsn", ctx, {}, variant.sets);
    shown = config;
    auto dataset = make_dataset(config.data);
    set_threads(static_cast<int>(ctx.threads), Workload::Convolution);
    LoadedClassifier classifier = ensure_classifier(*dataset, config.data, ctx.quiet);
    const auto seed = static_cast<uint64_t>(config.run.seed);
    auto process = make_process(config.process);
    std::vector<Evaluation> evaluations;
    torch::Tensor last;
    TrainRunOptions options;
    options.quiet = ctx.quiet;
    options.hook_every = std::max<int64_t>(1, config.train.steps / kEvaluations);
    // The seed samples the raw weights (it had no EMA); every evaluation starts from the same noise.
    options.hook = [&](int64_t step, ScoreModel& raw, ScoreModel&) {
      at::Generator gen = make_generator(derive_seed(seed, "fashion-collapse"), raw->parameters().front().device());
      last = run_sampler(config.sample, model_score_fn(raw, process), *process, dataset->dim(), gen, true)
                 .samples.to(torch::kCPU);
      Evaluation ev{step, evaluate_images(*dataset, last, classifier, seed), 0};
      ev.classes = effective_classes(ev.e.samples.class_fractions);
      if (!ctx.quiet)
        fmt::print(stderr, "fashion-collapse {}: step {}: {:.2f} effective classes, FD-cls {:.3g}\n", variant.key, step,
                   ev.classes, ev.e.samples.fd_cls);
      evaluations.push_back(std::move(ev));
    };
    TrainedRun run = train_run(config, ctx.out / variant.key, options);
    floor_classes = effective_classes(evaluations.back().e.real.class_fractions);

    nlohmann::json m = nlohmann::json::object();
    std::vector<double> xs, ys_classes, ys_largest;
    bool ever = false;
    for (const Evaluation& ev : evaluations) {
      const auto& f = ev.e.samples.class_fractions;
      const auto top = std::max_element(f.begin(), f.end());
      m[std::to_string(ev.step)] = {{"effective_classes", ev.classes},
                                    {"largest_share", *top},
                                    {"largest_class", names[static_cast<size_t>(top - f.begin())]},
                                    {"fd_cls", ev.e.samples.fd_cls},
                                    {"class_fractions", f}};
      rows.push_back({variant.label, std::to_string(ev.step), num(ev.classes), num(*top),
                      names[static_cast<size_t>(top - f.begin())], num(ev.e.samples.fd_cls), ev.collapsed() ? "yes" : "no"});
      xs.push_back(static_cast<double>(ev.step));
      ys_classes.push_back(ev.classes);
      ys_largest.push_back(*top);
      ever = ever || ev.collapsed();
    }
    m["collapsed_at_some_evaluation"] = ever;
    m["train_seconds"] = run.seconds;
    m["parameters"] = run.parameters;
    metrics[variant.key] = m;
    effective.push_back({variant.key, xs, ys_classes, palette(static_cast<int>(v))});
    largest.push_back({variant.key, xs, ys_largest, palette(static_cast<int>(v))});
    save_image_grid(ctx.out / (variant.key + "_samples.png"), *dataset, last.slice(0, 0, 100), 10);
    checks.equal("evaluations_" + variant.key, static_cast<double>(evaluations.size()), kEvaluations);
    checks.equal("non_finite_" + variant.key, static_cast<double>(evaluations.back().e.samples.non_finite), 0);
  }
  metrics["held_out_effective_classes"] = floor_classes;
  curves.curves(1, "Effective number of classes", "step", "exp(entropy)", effective);
  curves.curves(2, "Share of the most frequent class", "step", "share", largest);
  curves.save();

  Report report("Fashion-MNIST with seed 000's NCSN set-up: does it collapse?");
  report.paragraph(fmt::format(
      "Seed 000 trained NCSN on Fashion-MNIST and saw its samples collapse to one class (\"shirt\"). The "
      "`fashion-ncsn` preset follows the seed's description: {} noise levels from σ = {} to {}, σ²-weighted DSM, "
      "annealed Langevin (ε = {}, T = {}) from uniform noise, no EMA. Each variant trains {} steps of batch {}; "
      "every {} steps, {} samples from the raw weights (the same noise each time) are labelled by the "
      "Fashion-MNIST classifier. Collapse (defined before any run): fewer than {} effective classes "
      "(exp of the entropy of the class shares) or one class above {} of the samples. Held-out images: {} "
      "effective classes.",
      shown.process.levels, num(shown.process.sigma_max), num(shown.process.sigma_min), num(shown.sample.eps),
      shown.sample.steps_per_level, shown.train.steps, shown.train.batch,
      std::max<int64_t>(1, shown.train.steps / kEvaluations), shown.sample.n, num(kCollapsedClasses),
      num(kCollapsedShare), num(floor_classes)));
  report.table({"variant", "step", "effective classes", "largest share", "largest class", "FD-cls", "collapsed"}, rows);
  report.image("classes.png", "Effective number of classes and the largest class share along training");
  for (const Variant& variant : variants)
    report.image(variant.key + "_samples.png", variant.label + ": samples at the last evaluation");
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, std::move(metrics), ctx);
}

}  // namespace scorediff
