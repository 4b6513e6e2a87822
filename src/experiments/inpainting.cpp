// Inpainting (Song et al. 2021, score_sde's PC inpainting): held-out digits with half of the image (or
// a centred square, or every other pixel at random) unknown are completed by the predictor–corrector
// sampler, which keeps the known pixels on the forward process' marginal at every step. Shown next to
// the originals; measured by the error on the unknown pixels against filling them with the mean digit.
#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/image_tasks.hpp"

namespace scorediff {

nlohmann::json run_inpainting(const ExperimentContext& ctx) {
  Config config =
      experiment_config("mnist", ctx, documented_preset("mnist", {"train.steps=2000", "sample.sampler=pc"}));
  const std::vector<std::string> kinds = {"right", "bottom", "center", "random"};
  const int64_t per_kind = 8, draws = 5, diverse = 6;
  TrainedRun run = train_experiment_run(config, ctx);
  const Prepared& p = run.prepared;
  ScoreFn score = model_score_fn(run.ema_model, p.process);
  const auto seed = static_cast<uint64_t>(config.run.seed);
  const std::string& range = p.dataset->pixel_range();
  const double grey = mid_grey(range);
  const std::vector<int64_t> shape = p.dataset->image_shape();

  // One batch: per_kind held-out images under each mask kind, then `diverse` images under the right-half
  // mask repeated `draws` times, to show that the completions differ where the known half leaves room.
  torch::Tensor originals = held_out_images(*p.dataset, per_kind, seed);
  at::Generator mask_gen = make_generator(derive_seed(seed, "mask"));
  std::vector<torch::Tensor> batch_images, batch_masks;
  for (const auto& kind : kinds) {
    batch_images.push_back(originals);
    batch_masks.push_back(image_mask(kind, shape, per_kind, mask_gen));
  }
  torch::Tensor few = originals.slice(0, 0, diverse);
  for (int64_t d = 0; d < draws; ++d) {
    batch_images.push_back(few);
    batch_masks.push_back(image_mask("right", shape, diverse, mask_gen));
  }
  torch::Tensor images = torch::cat(batch_images), masks = torch::cat(batch_masks);
  at::Generator gen = make_generator(derive_seed(seed, "inpaint"), p.train_data.device());
  auto start = std::chrono::steady_clock::now();
  InpaintResult r = inpaint_images(config, p, score, images, masks, gen, ctx.quiet);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // The baseline fills the unknown pixels with the mean training image.
  torch::Tensor mean_image = range_to_unit(p.train_data.to(torch::kCPU), range).mean(0);
  torch::Tensor completed_unit = range_to_unit(r.completed, range).clamp(0, 1);
  torch::Tensor original_unit = range_to_unit(images, range);
  nlohmann::json per_mask = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  Checks checks;
  for (size_t k = 0; k < kinds.size(); ++k) {
    const int64_t lo = static_cast<int64_t>(k) * per_kind, hi = lo + per_kind;
    torch::Tensor unknown = 1 - masks.slice(0, lo, hi);
    const double count = std::max(1.0, unknown.sum().item<double>());
    const double mse = ((completed_unit.slice(0, lo, hi) - original_unit.slice(0, lo, hi)).pow(2) * unknown).sum().item<double>() / count;
    const double mse_mean = ((mean_image.unsqueeze(0) - original_unit.slice(0, lo, hi)).pow(2) * unknown).sum().item<double>() / count;
    per_mask[kinds[k]] = {{"mse_unknown", mse}, {"mse_unknown_mean_image", mse_mean}};
    checks.below(kinds[k] + "_mse_over_mean_image", mse / mse_mean, 1.0);
    rows.push_back({kinds[k], num(mse), num(mse_mean), num(mse / mse_mean)});
    torch::Tensor masked = images.slice(0, lo, hi) * masks.slice(0, lo, hi) + grey * unknown;
    save_comparison_grid(ctx.out / fmt::format("inpaint_{}.png", kinds[k]), *p.dataset,
                         {images.slice(0, lo, hi), masked, r.completed.slice(0, lo, hi)});
  }
  {
    // One row per image: masked, then each draw's completion, then the original.
    const int64_t base = static_cast<int64_t>(kinds.size()) * per_kind;
    torch::Tensor right = batch_masks.back();
    std::vector<torch::Tensor> columns = {few * right + grey * (1 - right)};
    for (int64_t d = 0; d < draws; ++d)
      columns.push_back(r.completed.slice(0, base + d * diverse, base + (d + 1) * diverse));
    columns.push_back(few);
    save_comparison_grid(ctx.out / "inpaint_draws.png", *p.dataset, columns);
  }

  Report report("Inpainting held-out digits with the predictor–corrector sampler");
  report.paragraph(fmt::format(
      "The `mnist` preset (U-Net, {} parameters, EDM process) trains for {} steps in {} ({:.2f} steps/s on {} "
      "thread(s)). Held-out digits with part of the image unknown are completed with its EMA weights by the PC "
      "sampler (`{}` predictor, `{}` corrector at snr {}; {} score evaluations; {} images in {}): at every step the "
      "known pixels are replaced by a draw of the forward process at that time (Song et al. 2021, appendix I.2), "
      "so only the unknown ones are generated.",
      run.parameters, config.train.steps, format_duration(run.seconds),
      run.steps_per_second(), config.run.threads, config.sample.predictor,
      config.sample.corrector, num(config.sample.snr), r.nfe, images.size(0), format_duration(seconds)));
  report.paragraph("Mean squared error on the unknown pixels (pixels in [0, 1]) against filling them with the mean "
                   "training image:");
  report.table({"mask", "MSE (model)", "MSE (mean image)", "ratio"}, rows);
  for (const auto& kind : kinds)
    report.image(fmt::format("inpaint_{}.png", kind),
                 fmt::format("Mask `{}`: original | masked (unknown in grey) | completed, one digit per row", kind));
  report.heading("Acceptance");
  report.paragraph("The model must fill the unknown pixels better than the mean training image does.");
  checks.add_to(report);
  report.image("inpaint_draws.png", fmt::format("Right half unknown: the masked digit, {} independent completions, "
                                                "and the original (right)", draws));
  report.save(ctx.out / "report.md");

  nlohmann::json metrics = {{"masks", per_mask},
                            {"nfe", r.nfe},
                            {"inpaint_seconds", seconds},
                            {"train_seconds", run.seconds},
                            {"train_steps_per_s", run.steps_per_second()},
                            {"parameters", run.parameters},
                            {"checks", checks.to_json()}};
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
