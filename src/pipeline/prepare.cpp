#include "scorediff/pipeline/prepared.hpp"

#include <torch/torch.h>

#include <cmath>
#include <utility>

#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/process/auto_noise.hpp"
#include "scorediff/process/noise_process.hpp"

namespace scorediff {

std::vector<std::string> resolve_auto_noise(Config& config, const torch::Tensor& train_data, at::Generator& gen) {
  ProcessOptions& o = config.process;
  SampleOptions& sample = config.sample;
  std::vector<std::string> notes;
  if (!o.sigma_min_auto && !o.sigma_max_auto && !o.levels_auto && !sample.eps_auto) return notes;
  torch::Tensor points = train_data.to(torch::kCPU, torch::kFloat64);
  const int64_t n = points.size(0), dim = points.size(1);
  torch::Tensor subset =
      n > kAutoNoisePoints ? points.index_select(0, torch::randperm(n, gen, torch::kInt64).slice(0, 0, kAutoNoisePoints)) : points;
  const std::string from = fmt::format("{} of the {} training points", subset.size(0), n);
  if (o.sigma_max_auto) {
    o.sigma_max = largest_pairwise_distance(subset);
    o.sigma_max_auto = false;
    notes.push_back(fmt::format("process.sigma_max = {:.6g}: auto, the largest distance between two of {} (Song & "
                                "Ermon 2020, technique 1; seed 001 §9.2)", o.sigma_max, from));
  }
  if (o.sigma_min_auto) {
    // The data's noise floor h (seed 001 §4.3: "σ_min ≈ noise floor"), scaled so that noise σ_min changes
    // the variance of its thinnest direction by at most the tolerance the levels keep: (h² + σ²)/h² ≤ 1 + tol
    // (samples not denoised) and h²/(h² + σ²) ≥ 1 − tol (Tweedie-denoised) both hold at σ = √tol · h.
    const NoiseFloor floor = noise_floor(subset, points);
    if (floor.found) {
      o.sigma_min = std::sqrt(kAutoVarianceTolerance) * floor.std;
      notes.push_back(fmt::format(
          "process.sigma_min = {:.6g}: auto, √{} times the data's noise floor {:.6g} (the std of its thinnest local "
          "direction, read at {} nearest neighbours of {}; seed 001 §4.3), so that this noise changes that "
          "direction's variance by at most {}%",
          o.sigma_min, kAutoVarianceTolerance, floor.std, floor.k, from, 100 * kAutoVarianceTolerance));
    } else {
      const double nn = median_nearest_neighbour(subset, points);
      o.sigma_min = 0.5 * nn;
      notes.push_back(fmt::format("process.sigma_min = {:.6g}: auto, half the median distance ({:.6g}) from {} to their "
                                  "nearest training neighbour (seed 001 §9.2; no noise floor to read: {} points in {} "
                                  "dimensions are too few for local directions, or the data has no thickness)",
                                  o.sigma_min, nn, from, n, dim));
    }
    o.sigma_min_auto = false;
  }
  require(o.sigma_min < o.sigma_max, "process.sigma_min ({}) must be smaller than process.sigma_max ({})", o.sigma_min,
          o.sigma_max);
  if (!o.levels_auto && !sample.eps_auto) return notes;
  const double tau_max = largest_principal_std(subset);
  const int64_t T = sample.steps_per_level;
  LangevinStep step;
  if (o.levels_auto) {
    const double gamma = level_ratio(dim);
    const int64_t shell = std::max<int64_t>(2, ladder_levels(o.sigma_max, o.sigma_min, gamma));
    const AutoLevels chosen = variance_levels(o.sigma_max, o.sigma_min, shell, T, tau_max);
    o.levels = chosen.levels;
    o.levels_auto = false;
    step = chosen.step;
    notes.push_back(fmt::format(
        "process.levels = {}: auto, the fewest levels, and at least the {} of ratio {:.6g} for D = {} (a sample of one "
        "level in the next level's typical shell with probability 1/2: Song & Ermon 2020, technique 2, exact chi "
        "distribution), at which annealed Langevin with {} steps per level ends within {}% of the variance of Gaussian "
        "data of every scale from 0 to the data's largest principal std {:.6g} ({}: {:.3g}% at scale {:.3g}; with "
        "the {} levels alone, {:.3g}%)",
        o.levels, shell, gamma, dim, T, 100 * kAutoVarianceTolerance, tau_max,
        chosen.reached ? "reached" : fmt::format("NOT reached at the cap of {} levels", kAutoMaxLevels),
        100 * step.worst_error, step.worst_tau, shell, 100 * chosen.at_least_error));
  }
  if (sample.eps_auto) {
    if (step.eps == 0) step = langevin_step(SigmaLadder(o.sigma_min, o.sigma_max, o.levels).levels(), T, tau_max);
    sample.eps = step.eps;
    sample.eps_auto = false;
    notes.push_back(fmt::format(
        "sample.eps = {:.6g}: auto, for {} levels from {:.6g} to {:.6g} and {} steps per level, the step whose annealed "
        "Langevin run on Gaussian data of every scale from 0 to {:.6g} ends closest to the right variance (worst "
        "{:.3g}% at scale {:.3g}; Song & Ermon 2020, technique 4, over the whole ladder and the data's scales)",
        sample.eps, o.levels, o.sigma_max, o.sigma_min, T, tau_max, 100 * step.worst_error, step.worst_tau));
  }
  return notes;
}

Prepared prepare(Config& config) {
  set_threads(static_cast<int>(config.run.threads), workload_of(config.model));
  c10::Device device = parse_device(config.run.device);
  static bool warned = false;
  if (config.model.name == "unet" && config.model.conv_precision == "bfloat16" && device.is_cpu() &&
      !cpu_has_bfloat16_arithmetic() && !std::exchange(warned, true))
    fmt::print(stderr,
               "scorediff: warning: model.conv_precision = bfloat16, but this CPU has no bfloat16 arithmetic (AVX-512 "
               "BF16, AMX); --set model.conv_precision=float32 is likely faster here\n");
  Prepared p;
  p.dataset = make_dataset(config.data);
  p.dataset->record(config.data);
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "data"));
  LabelledPoints drawn = p.dataset->sample_labelled(config.data.n_train, gen);
  p.train_data = drawn.points;
  at::Generator auto_gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "auto-noise"));
  p.notes = resolve_auto_noise(config, p.train_data, auto_gen);
  p.process = make_process(config.process);
  config.model.image_shape = p.dataset->image_shape();
  if (config.model.sigma_data == 0.0) {
    torch::Tensor centred = p.train_data - p.train_data.mean(0, true);
    config.model.sigma_data = std::sqrt(centred.pow(2).mean().item<double>());
  }
  p.train_data = p.train_data.to(device);
  if (drawn.labels.defined()) p.train_labels = drawn.labels.to(device);
  if (const GaussianMixture* mixture = p.dataset->mixture())
    p.reference = mixture_score_fn(std::shared_ptr<const GaussianMixture>(p.dataset, mixture), p.process);
  return p;
}

}  // namespace scorediff
