// Seed 000's Fashion-MNIST failure, reproduced: the seed's NCSN set-up (the `fashion-ncsn` preset: noise
// ladder, annealed Langevin, no EMA, a small U-Net without dropout) and the fix it tried (a bigger U-Net
// with dropout), each trained while the class histogram of its samples is measured at regular steps, so
// that a collapse to few classes shows when it happens. Only samples the classifier recognises (largest
// softmax probability >= 0.9) are counted: an untrained model's noise-like samples say nothing about
// which classes it has learnt, and the classifier files them under one or two arbitrary classes.
#include <torch/torch.h>

#include <array>

#include "coverage.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

// A-priori definitions, fixed before any full run (the seed gives no number for its collapse):
//  - unrecognisable: the samples are nearer noise than images, FD-cls above the geometric mean of uniform
//    noise's and the held-out images' (FD spans orders of magnitude; the classifier confidently files a
//    quarter of an untrained model's noise under "Bag" and "Shirt", so recognition alone does not tell),
//    or under 10 % of them are recognised; there is no class histogram to read yet;
//  - collapsed: the recognised samples spread over fewer than 5 effective classes (exp of the entropy of
//    their class shares; 10 for a balanced set, 1 for one class) or one class takes more than half of them.
constexpr double kRecognisedAtLeast = 0.1;
constexpr double kCollapsedClasses = 5.0;
constexpr double kCollapsedShare = 0.5;

double effective_classes(const std::vector<double>& shares) {
  double h = 0;
  for (double p : shares)
    if (p > 0) h -= p * std::log(p);
  return std::exp(h);
}

std::string state_of(double recognised, double classes, double largest, double fd, double fd_limit) {
  if (recognised < kRecognisedAtLeast || fd > fd_limit) return "unrecognisable";
  return classes < kCollapsedClasses || largest > kCollapsedShare ? "collapsed" : "covers";
}

struct Evaluation {
  int64_t step = 0;
  ImageEvaluation e;
  double classes = 0, largest = 0;
  size_t largest_class = 0;
  std::string state;
};

Evaluation evaluation_at(int64_t step, ImageEvaluation e, double fd_limit) {
  Evaluation ev;
  ev.step = step;
  ev.e = std::move(e);
  const auto& f = ev.e.samples.confident_class_fractions;
  const auto top = std::max_element(f.begin(), f.end());
  ev.classes = effective_classes(f);
  ev.largest = *top;
  ev.largest_class = static_cast<size_t>(top - f.begin());
  ev.state = state_of(ev.e.samples.confident_fraction, ev.classes, ev.largest, ev.e.samples.fd_cls, fd_limit);
  return ev;
}

}  // namespace

nlohmann::json run_fashion_collapse(const ExperimentContext& ctx) {
  // The bigger variant doubles the preset's channels (whatever --set made them) and adds dropout 0.1.
  const Config base = experiment_config("fashion-ncsn", ctx);
  const std::vector<std::array<std::string, 2>> variants = {
      {"seed", "the seed's set-up: small U-Net, no dropout"},
      {"bigger-dropout", "twice the channels, dropout 0.1 (the seed's fix)"}};
  const std::vector<std::vector<std::string>> forced = {
      {}, {fmt::format("model.channels={}", 2 * base.model.channels), "model.dropout=0.1"}};
  constexpr int64_t kEvaluations = 4;
  const std::vector<std::string>& names = fashion_class_names();
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  Checks checks;
  Figure curves(ctx.out / "classes.png", 1000, 420, 2, 1);
  std::vector<Curve> effective, largest;
  auto dataset = make_dataset(base.data);
  set_threads(static_cast<int>(ctx.threads), Workload::Convolution);
  LoadedClassifier classifier = ensure_classifier(*dataset, base.data, ctx.quiet);
  // The two ends every evaluation is read between: uniform noise over the pixel range and held-out images.
  const auto base_seed = static_cast<uint64_t>(base.run.seed);
  at::Generator noise_gen = make_generator(derive_seed(base_seed, "fashion-collapse-noise"));
  torch::Tensor noise = torch::rand({base.sample.n, dataset->dim()}, noise_gen);
  if (base.data.pixels != "zero-one") noise = 2 * noise - 1;
  const ImageEvaluation ends = evaluate_images(*dataset, noise, classifier, base_seed);
  const double fd_limit = std::sqrt(ends.samples.fd_cls * ends.real.fd_cls);
  ImageEvaluation real_only, noise_only;
  real_only.samples = ends.real;
  noise_only.samples = ends.samples;
  const Evaluation held_out = evaluation_at(0, real_only, fd_limit), uniform = evaluation_at(0, noise_only, fd_limit);
  for (size_t v = 0; v < variants.size(); ++v) {
    const std::string& key = variants[v][0];
    Config config = experiment_config("fashion-ncsn", ctx, {}, forced[v]);
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
      evaluations.push_back(evaluation_at(step, evaluate_images(*dataset, last, classifier, seed), fd_limit));
      const Evaluation& ev = evaluations.back();
      if (!ctx.quiet)
        fmt::print(stderr, "fashion-collapse {}: step {}: {:.0f} % recognised, {:.2f} effective classes, {} {:.2f}, "
                   "FD-cls {:.3g}: {}\n", key, step, 100 * ev.e.samples.confident_fraction, ev.classes,
                   names[ev.largest_class], ev.largest, ev.e.samples.fd_cls, ev.state);
    };
    TrainedRun run = train_run(config, ctx.out / key, options);
    checks.equal("evaluations_" + key, static_cast<double>(evaluations.size()), kEvaluations);
    if (evaluations.empty()) continue;

    nlohmann::json m = nlohmann::json::object();
    std::vector<double> xs, ys_classes, ys_largest;
    std::vector<std::string> states;
    for (const Evaluation& ev : evaluations) {
      const ImageQuality& q = ev.e.samples;
      m["evaluations"][std::to_string(ev.step)] = {
          {"recognised_fraction", q.confident_fraction}, {"effective_classes", ev.classes},
          {"largest_share", ev.largest},                 {"largest_class", names[ev.largest_class]},
          {"fd_cls", q.fd_cls},                          {"kid_cls", q.kid_cls},
          {"recognised_class_fractions", q.confident_class_fractions},
          {"class_fractions", q.class_fractions},        {"state", ev.state}};
      rows.push_back({key, std::to_string(ev.step), num(q.confident_fraction), num(ev.classes), num(ev.largest),
                      names[ev.largest_class], num(q.fd_cls), ev.state});
      xs.push_back(static_cast<double>(ev.step));
      ys_classes.push_back(ev.classes);
      ys_largest.push_back(ev.largest);
      states.push_back(ev.state);
    }
    m["collapsed_at_some_evaluation"] = std::count(states.begin(), states.end(), "collapsed") > 0;
    m["collapsed_at_the_end"] = states.back() == "collapsed";
    m["train_seconds"] = run.seconds;
    m["parameters"] = run.parameters;
    m["channels"] = config.model.channels;
    m["dropout"] = config.model.dropout;
    metrics[key] = m;
    effective.push_back({key, xs, ys_classes, palette(static_cast<int>(v))});
    largest.push_back({key, xs, ys_largest, palette(static_cast<int>(v))});
    save_image_grid(ctx.out / (key + "_samples.png"), *dataset, last.slice(0, 0, std::min<int64_t>(100, last.size(0))),
                    10);
    checks.equal("non_finite_" + key, static_cast<double>(evaluations.back().e.samples.non_finite), 0);
  }
  const ImageQuality& real = held_out.e.samples;
  metrics["held_out"] = {{"recognised_fraction", real.confident_fraction},
                         {"effective_classes", held_out.classes},
                         {"largest_share", held_out.largest},
                         {"recognised_class_fractions", real.confident_class_fractions},
                         {"fd_cls", real.fd_cls},
                         {"state", held_out.state}};
  metrics["uniform_noise"] = {{"recognised_fraction", uniform.e.samples.confident_fraction},
                              {"effective_classes", uniform.classes},
                              {"recognised_class_fractions", uniform.e.samples.confident_class_fractions},
                              {"fd_cls", uniform.e.samples.fd_cls},
                              {"state", uniform.state}};
  metrics["fd_cls_unrecognisable_above"] = fd_limit;
  for (const Evaluation* end : {&held_out, &uniform})
    rows.push_back({end == &held_out ? "held-out images" : "uniform noise", "", num(end->e.samples.confident_fraction),
                    num(end->classes), num(end->largest), names[end->largest_class], num(end->e.samples.fd_cls),
                    end->state});
  // The measure must read real images as covering every class, or it says nothing about the models.
  checks.equal("held_out_covers", held_out.state == "covers" ? 1.0 : 0.0, 1.0)
      .equal("noise_unrecognisable", uniform.state == "unrecognisable" ? 1.0 : 0.0, 1.0);
  const std::vector<double> steps = {0.0, static_cast<double>(base.train.steps)};
  effective.push_back({"held-out", steps, {held_out.classes, held_out.classes}, palette(2)});
  largest.push_back({"held-out", steps, {held_out.largest, held_out.largest}, palette(2)});
  curves.curves(1, "Effective classes of the recognised samples", "step", "exp(entropy)", effective);
  curves.curves(2, "Share of the most frequent recognised class", "step", "share", largest);
  curves.save();

  Report report("Fashion-MNIST with seed 000's NCSN set-up: does it collapse?");
  report.paragraph(fmt::format(
      "Seed 000 trained NCSN on Fashion-MNIST and saw its samples collapse to one class (\"shirt\"); a bigger "
      "U-Net with dropout held out longer. The `fashion-ncsn` preset follows the seed's description: {} noise "
      "levels from σ = {} to {}, σ²-weighted DSM, annealed Langevin (ε = {}, T = {}) from uniform noise, no EMA, "
      "a U-Net of {} channels without dropout. Each variant trains {} steps of batch {}; every {} steps, {} samples "
      "from the raw weights (the same noise each time) are labelled by the Fashion-MNIST classifier. A sample is "
      "recognised when the classifier gives it probability ≥ 0.9. Defined before any full run: FD-cls above {} "
      "(the geometric mean of uniform noise's and the held-out images') or under {} recognised is *unrecognisable*; "
      "otherwise fewer than {} effective classes among the recognised samples (exp of the "
      "entropy of their shares) or one class above {} of them is *collapsed*, anything else *covers*.",
      base.process.levels, num(base.process.sigma_max), num(base.process.sigma_min), num(base.sample.eps),
      base.sample.steps_per_level, base.model.channels, base.train.steps, base.train.batch,
      std::max<int64_t>(1, base.train.steps / kEvaluations), base.sample.n, num(fd_limit), num(kRecognisedAtLeast),
      num(kCollapsedClasses), num(kCollapsedShare)));
  report.table({"variant", "step", "recognised", "effective classes", "largest share", "largest class", "FD-cls",
                "state"},
               rows);
  report.image("classes.png", "Effective classes and the largest class share of the recognised samples");
  for (const auto& variant : variants)
    report.image(variant[0] + "_samples.png", variant[1] + ": samples at the last evaluation");
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, std::move(metrics), ctx);
}

}  // namespace scorediff
