// Why diffusion generalises (seed 000, future work): the MNIST U-Net trained on training subsets of
// growing size, each for the same number of steps. Each sample is compared with its nearest and second
// nearest training image and with its nearest held-out image; a sample is a near-copy when the nearest
// training image is less than a third as far as the second nearest (the criterion of Yoon et al. 2023,
// "Diffusion probabilistic models generalize when they fail to memorize", and Gu et al. 2023, "On
// memorization in diffusion models"). Memorisation shows as a copy fraction that falls as the set grows.
#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

constexpr double kCopyRatio = 1.0 / 3.0;  // d(nearest) / d(second nearest) below this: a near-copy
constexpr int64_t kShown = 8;             // sample / nearest-neighbour pairs shown per size

// The training-set sizes: 32 · 8^k below the configured data.n_train, then data.n_train itself.
std::vector<int64_t> subset_sizes(int64_t largest) {
  std::vector<int64_t> sizes;
  for (int64_t n = 32; n < largest; n *= 8) sizes.push_back(n);
  sizes.push_back(largest);
  return sizes;
}

struct Neighbours {
  torch::Tensor nearest, second, held_out;  // distances [N]
  torch::Tensor index;                      // the nearest training image of each sample [N]
};

// Euclidean distances of samples [N, D] to the training images [M ≥ 2, D] and the held-out images [K, D].
Neighbours neighbours(const torch::Tensor& samples, const torch::Tensor& train, const torch::Tensor& held_out) {
  torch::Tensor x = samples.to(torch::kFloat64);
  auto [d, index] = torch::cdist(x, train.to(torch::kFloat64)).topk(2, 1, /*largest=*/false, /*sorted=*/true);
  torch::Tensor held = std::get<0>(torch::cdist(x, held_out.to(torch::kFloat64)).min(1));
  return {d.select(1, 0), d.select(1, 1), held, index.select(1, 0)};
}

}  // namespace

nlohmann::json run_memorisation(const ExperimentContext& ctx) {
  const Config base = experiment_config("mnist", ctx, documented_preset("mnist", {"train.steps=1000", "sample.n=256"}));
  const std::vector<int64_t> sizes = subset_sizes(base.data.n_train);
  const auto seed = static_cast<uint64_t>(base.run.seed);
  auto dataset = make_dataset(base.data);
  const ImageData* images = dataset->images();
  require(images != nullptr, "memorisation needs an image dataset, not '{}'", base.data.name);
  // Distances are taken between images in [0, 1] pixels.
  auto unit = [&](const torch::Tensor& x) { return to_unit_images(*dataset, x).reshape({x.size(0), -1}); };
  torch::Tensor held_out = images->test.images.reshape({images->test.size(), -1}).to(torch::kFloat32);

  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  std::vector<double> xs, fractions;
  std::vector<torch::Tensor> pairs;  // per size: a row of samples and a row of their nearest training images
  Checks checks;
  std::string cost;
  for (int64_t size : sizes) {
    Config config = base;
    config.data.n_train = size;
    TrainedRun run = train_experiment_run(config, ctx, fmt::format("n{}", size));
    const Prepared& p = run.prepared;
    // The same noise for every size: the models differ, the sampler's draws do not.
    at::Generator gen = make_generator(derive_seed(seed, "memorisation"), p.train_data.device());
    auto start = std::chrono::steady_clock::now();
    torch::Tensor samples = run_sampler(run.config.sample, model_score_fn(run.ema_model, p.process), *p.process,
                                        p.train_data.size(1), gen, ctx.quiet)
                                .samples.to(torch::kCPU);
    const double sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    torch::Tensor train = p.train_data.cpu();
    Neighbours nn = neighbours(unit(samples).clamp(0, 1), unit(train), held_out);
    torch::Tensor ratio = nn.nearest / nn.second;
    const double copies = (ratio < kCopyRatio).to(torch::kFloat64).mean().item<double>();
    const double median_ratio = ratio.median().item<double>();
    const double train_over_held = (nn.nearest / nn.held_out).median().item<double>();
    // Root-mean-square pixel distance on [0, 1] pixels.
    const double rms_nearest = (nn.nearest / std::sqrt(static_cast<double>(train.size(1)))).median().item<double>();
    metrics[std::to_string(size)] = {{"copy_fraction", copies},
                                     {"median_nearest_over_second", median_ratio},
                                     {"median_nearest_train_over_nearest_held_out", train_over_held},
                                     {"median_rms_pixel_distance_to_nearest", rms_nearest},
                                     {"train_seconds", run.seconds},
                                     {"sample_seconds", sample_seconds},
                                     {"samples", samples.size(0)}};
    rows.push_back({std::to_string(size), num(copies), num(median_ratio), num(train_over_held), num(rms_nearest),
                    num(run.seconds), num(sample_seconds)});
    xs.push_back(static_cast<double>(size));
    fractions.push_back(copies);
    pairs.push_back(samples.slice(0, 0, kShown));
    pairs.push_back(train.index_select(0, nn.index.slice(0, 0, kShown)));
    cost = fmt::format("{} parameters, {:.2f} steps/s on {} thread(s)", run.parameters, run.steps_per_second(),
                       config.run.threads);
  }
  save_image_grid(ctx.out / "pairs.png", *dataset, torch::cat(pairs), kShown);
  {
    Figure figure(ctx.out / "copy_fraction.png", 640, 420);
    figure.curves(1, "Near-copies of training images", "training images", "fraction of samples",
                  {{"d1/d2 < 1/3", xs, fractions, palette(1)}}, true, false);
    figure.save();
  }
  int64_t rises = 0;
  for (size_t i = 1; i < fractions.size(); ++i) rises += fractions[i] > fractions[i - 1] ? 1 : 0;
  checks.equal("sizes_where_the_copy_fraction_rises", static_cast<double>(rises), 0)
      .above("copy_fraction_smallest_minus_largest_set", fractions.front() - fractions.back(), 0);

  Report report("Memorisation: near-copies against training-set size (seed 000, future work)");
  report.paragraph(fmt::format(
      "The `mnist` preset's U-Net ({}) is trained from scratch on random subsets of {} training digits, each for {} "
      "steps of batch {} (so the smallest set is seen {} times per image, the largest {:.1f}). From each model's EMA "
      "weights, {} samples with the `{}` sampler ({} NFE) and the same noise. For each sample: d1 and d2, the "
      "Euclidean distances to its nearest and second-nearest image of the model's own training set, and the distance "
      "to the nearest of the {} held-out digits. A near-copy has d1/d2 < 1/3 (Yoon et al. 2023; Gu et al. 2023).",
      cost, fmt::join(sizes, ", "), base.train.steps, base.train.batch,
      base.train.steps * base.train.batch / sizes.front(),
      static_cast<double>(base.train.steps * base.train.batch) / static_cast<double>(sizes.back()), base.sample.n,
      base.sample.sampler, base.sample.nfe, held_out.size(0)));
  report.table({"training images", "near-copy fraction", "median d1/d2", "median d1 / d(held-out)",
                "median RMS pixel distance to d1", "train s", "sample s"},
               rows);
  report.paragraph(
      "A model that copies puts d1 far below d2 and below the nearest held-out digit; one that generalises puts its "
      "samples about as far from its own training images as from digits it never saw.");
  report.image("copy_fraction.png", "Fraction of near-copies against the number of training images");
  report.image("pairs.png", fmt::format("Per training-set size (top to bottom: {}), a row of samples above a row of "
                                        "their nearest training images",
                                        fmt::join(sizes, ", ")));
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, std::move(metrics), ctx);
}

}  // namespace scorediff
