// Levers for the quality of the fashion-mnist preset at a fixed wall time (issue 26), measured where they
// cannot flatter the reported figures: each variant is the preset with some keys changed, trained on the
// selection seed (the context's seed + 1), sampled without guidance from the same noise with the EMA weights,
// and measured against the first half of the held-out images. Each variant trains in OUT/<name>; --resume
// reuses the finished ones and continues an interrupted one, so the table can be built over several
// sittings; --variants picks some. Steps are given as a multiple of train.steps, so that a short test run
// (--set train.steps=N) keeps the variants' proportions.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "coverage.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/pipeline/sampling_score.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

struct Lever {
  std::string name, change;
  double steps_factor = 1;          // train.steps = round(factor · the configured train.steps)
  std::vector<std::string> sets;  // the keys it changes, applied after the user's --set
};

// 1.5 × the preset's 8 000 steps: the training speed gained since the preset was set (2.44 steps/s over its
// 55-minute run, 3.9 in bench --unet at 2 threads now; docs/performance.md), spent on steps.
const std::vector<Lever>& levers() {
  static const std::vector<Lever> all = {
      {"preset", "the preset as it is", 1.0, {}},
      {"steps-1.5x", "1.5 × the steps", 1.5, {}},
      {"steps-1.5x-dropout-0", "1.5 × the steps, dropout 0", 1.5, {"model.dropout=0"}},
      {"steps-1.5x-cosine-lr", "1.5 × the steps, learning rate 2e-3 with a cosine decay", 1.5,
       {"train.lr=2e-3", "train.schedule=cosine"}},
      {"steps-1.5x-ema-0.9995", "1.5 × the steps, EMA decay 0.9995", 1.5, {"train.ema_decay=0.9995"}},
  };
  return all;
}

std::vector<const Lever*> chosen_levers(const std::vector<std::string>& names) {
  std::vector<const Lever*> out;
  std::vector<std::string> valid;
  for (const Lever& l : levers()) valid.push_back(l.name);
  for (const Lever& l : levers())
    if (names.empty() || std::find(names.begin(), names.end(), l.name) != names.end()) out.push_back(&l);
  for (const std::string& n : names)
    require(std::find(valid.begin(), valid.end(), n) != valid.end(), "fashion-ablation: unknown variant '{}'; valid: {}",
            n, join_names(valid));
  return out;
}

}  // namespace

nlohmann::json run_fashion_ablation(const ExperimentContext& ctx) {
  ExperimentContext selection = ctx;
  selection.seed = ctx.seed + 1;
  const std::vector<const Lever*> chosen = chosen_levers(ctx.variants);
  const std::vector<std::string> defaults = {"sample.n=1000"};  // the preset samples without guidance
  Config base = experiment_config("fashion-mnist", selection, defaults);
  require(base.sample.guide.empty(), "fashion-ablation measures the model without guidance; drop sample.guide");
  set_threads(static_cast<int>(ctx.threads), Workload::Convolution);  // the classifier, if it must be trained
  LoadedClassifier classifier = ensure_classifier(*make_dataset(base.data), base.data, ctx.quiet);

  nlohmann::json rows_json = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  Progress progress("fashion-ablation", static_cast<int64_t>(chosen.size()), "variant", ctx.quiet);
  for (const Lever* lever : chosen) {
    std::vector<std::string> forced = lever->sets;
    const auto steps = static_cast<int64_t>(std::llround(lever->steps_factor * static_cast<double>(base.train.steps)));
    forced.push_back(fmt::format("train.steps={}", steps));
    Config config = experiment_config("fashion-mnist", selection, defaults, forced);
    TrainedRun run = train_experiment_run(config, ctx, lever->name);
    const Prepared& p = run.prepared;
    const auto seed = static_cast<uint64_t>(config.run.seed);
    at::Generator gen = make_generator(derive_seed(seed, "sample"), p.train_data.device());  // the same noise for all
    ScoreFn score = sampling_score_fn(run.config, run.ema_model, p, ctx.out / lever->name);
    torch::Tensor samples =
        run_sampler(run.config.sample, score, *p.process, p.train_data.size(1), gen, true).samples.to(torch::kCPU);
    save_image_grid(ctx.out / lever->name / "samples.png", *p.dataset, samples.slice(0, 0, 100), 10);
    ImageEvaluation e = evaluate_images(*p.dataset, samples, classifier, seed, HeldOut::FirstHalf);
    const Coverage c = coverage_of(e);
    rows_json.push_back({{"variant", lever->name},
                         {"change", lever->change},
                         {"steps", run.steps},
                         {"train_seconds", run.seconds},
                         {"train_steps_per_s", run.steps_per_second()},
                         {"fd_cls", e.samples.fd_cls},
                         {"fd_cls_real", e.real.fd_cls},
                         {"kid_cls", e.samples.kid_cls},
                         {"confident_fraction", e.samples.confident_fraction},
                         {"confident_fraction_over_held_out", c.confident_ratio},
                         {"smallest_class_share", c.smallest},
                         {"largest_class_share", c.largest}});
    rows.push_back({lever->name, lever->change, std::to_string(run.steps), format_duration(run.seconds),
                    num(run.steps_per_second()), num(e.samples.fd_cls), num(e.samples.kid_cls),
                    num(c.confident_ratio), num(c.smallest), num(c.largest)});
    progress.update(static_cast<int64_t>(rows.size()));
  }
  progress.finish();

  nlohmann::json metrics = {{"selection_seed", ctx.seed + 1}, {"held_out_part", "first half"}, {"variants", rows_json}};
  Report report("Fashion-MNIST preset: levers at a fixed wall time, on a selection seed");
  report.paragraph(fmt::format(
      "Each variant is the `fashion-mnist` preset with the keys it names changed, trained on seed {} (a selection "
      "seed: reported figures use seed {}) with {} thread(s), then sampled without guidance ({} samples, the `{}` "
      "sampler, the same noise for every variant) with its EMA weights. FD-cls, KID-cls and the coverage "
      "figures use the dataset's classifier against the first half of the held-out images; the confident fraction "
      "is over the held-out images' own. Training time is the optimisation's wall time (a resumed run counts its "
      "earlier steps at their logged speed).",
      ctx.seed + 1, ctx.seed, ctx.threads, base.sample.n, base.sample.sampler));
  report.table({"variant", "change", "steps", "training time", "steps/s", "FD-cls", "KID-cls", "confident / held-out",
                "smallest share", "largest share"},
               rows);
  for (const Lever* lever : chosen) report.image(lever->name + "/samples.png", lever->name + ": 100 samples");
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
