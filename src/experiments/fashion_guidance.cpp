// The choice of fashion-coverage's autoguidance until stop 53 (since then chosen for the 12 000-step
// preset by bench/sampler_sweep.sh on a selection-seed run, docs/images.md), made where it cannot flatter the
// reported figures: the fashion-mnist preset trained on the selection seed (the context's seed + 1), sampled
// at every guidance weight w and guide checkpoint of a small grid, and measured against the first half of the held-out
// images. The chosen setting is, among those that meet fashion-coverage's three coverage bounds, the one
// with the lowest FD-cls (without any that meets them, the one with the largest smallest-class share).
// fashion-coverage then reports on its own seed and the second half of the held-out images. It trains the preset
// as it was for its documented run (8 000 steps, no churn: documented_preset); the choice was checked under the
// later preset's churn on a selection-seed checkpoint with bench/sampler_sweep.sh (docs/images.md).
#include <torch/torch.h>

#include "coverage.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

const std::vector<double> kWeights = {1.25, 1.5, 2.0};
const std::vector<std::string> kGuides = {"step-1000", "step-2000", "step-4000"};

struct Candidate {
  std::string guide;  // "" for w = 1: the model alone
  double w = 1.0;
  ImageEvaluation e;
  Coverage coverage;
};

}  // namespace

nlohmann::json run_fashion_guidance(const ExperimentContext& ctx) {
  ExperimentContext selection = ctx;
  selection.seed = ctx.seed + 1;
  Config config = experiment_config("fashion-mnist", selection,
                                    documented_preset("fashion-mnist", {"sample.n=1000", "train.sample_every=1000"}));
  auto [classifier, run] = train_image_run(config, selection);
  const Prepared& p = run.prepared;
  const auto seed = static_cast<uint64_t>(config.run.seed);

  std::vector<Candidate> candidates{{"", 1.0, {}, {}}};
  for (const auto& guide : kGuides)
    for (double w : kWeights) candidates.push_back({guide, w, {}, {}});
  Progress progress("fashion-guidance", static_cast<int64_t>(candidates.size()), "setting", ctx.quiet);
  for (Candidate& c : candidates) {
    Config cc = run.config;
    cc.sample.guide = c.guide;
    cc.sample.guidance = c.w;
    // Every setting starts from the same noise.
    at::Generator gen = make_generator(derive_seed(seed, "sample"), p.train_data.device());
    ScoreFn score = sampling_score_fn(cc, run.ema_model, p, ctx.out / "train");
    torch::Tensor samples = run_sampler(cc.sample, score, *p.process, p.train_data.size(1), gen, true).samples;
    c.e = evaluate_images(*p.dataset, samples.to(torch::kCPU), classifier, seed, HeldOut::FirstHalf);
    c.coverage = coverage_of(c.e);
    progress.update(&c - candidates.data() + 1);
  }
  progress.finish();

  const Candidate* chosen = nullptr;
  for (const Candidate& c : candidates)
    if (c.coverage.holds() && (chosen == nullptr || c.e.samples.fd_cls < chosen->e.samples.fd_cls)) chosen = &c;
  if (chosen == nullptr)
    for (const Candidate& c : candidates)
      if (chosen == nullptr || c.coverage.smallest > chosen->coverage.smallest) chosen = &c;

  nlohmann::json settings = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const Candidate& c : candidates) {
    settings.push_back({{"guide", c.guide},
                        {"guidance", c.w},
                        {"fd_cls", c.e.samples.fd_cls},
                        {"fd_cls_real", c.e.real.fd_cls},
                        {"smallest_class_share", c.coverage.smallest},
                        {"largest_class_share", c.coverage.largest},
                        {"confident_fraction_over_held_out", c.coverage.confident_ratio},
                        {"meets_coverage_bounds", c.coverage.holds()}});
    rows.push_back({c.guide.empty() ? "none" : c.guide, num(c.w), num(c.e.samples.fd_cls), num(c.coverage.smallest),
                    num(c.coverage.largest), num(c.coverage.confident_ratio), c.coverage.holds() ? "yes" : "no",
                    &c == chosen ? "chosen" : ""});
  }
  nlohmann::json metrics = {{"selection_seed", config.run.seed},
                            {"held_out_part", "first half"},
                            {"settings", settings},
                            {"chosen", {{"guide", chosen->guide}, {"guidance", chosen->w}}},
                            {"train_seconds", run.seconds}};

  Report report("Choosing fashion-coverage's autoguidance on a selection seed");
  report.paragraph(fmt::format(
      "The `fashion-mnist` preset trained on seed {} (the selection seed: fashion-coverage reports on seed {}) for {} "
      "steps ({}). Each setting draws {} samples from the same noise with the `{}` sampler; the score is "
      "s_guide + w (s_model − s_guide) with the EMA weights of the run's checkpoint `guide` as s_guide (Karras et al. "
      "2024). The held-out figures use the first half of the held-out images; fashion-coverage uses the second. "
      "Chosen: among the settings that meet the three coverage bounds (smallest class share ≥ 0.05, largest ≤ 0.20, "
      "confident fraction ≥ 0.8 of the held-out images'), the lowest FD-cls.",
      config.run.seed, ctx.seed, config.train.steps, format_duration(run.seconds), config.sample.n,
      config.sample.sampler));
  report.table({"guide", "w", "FD-cls", "smallest share", "largest share", "confident / held-out", "bounds met", ""},
               rows);
  report.paragraph(fmt::format("Chosen: guide `{}`, w = {}.", chosen->guide.empty() ? "none" : chosen->guide,
                               num(chosen->w)));
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
