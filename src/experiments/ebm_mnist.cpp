// Seed 002's energy-based model on images: a convolutional energy trained by contrastive divergence on
// MNIST (preset mnist-cd), shown three ways: Langevin samples from noise, denoising by descending the
// energy, and out-of-distribution detection by −U(x) against Fashion-MNIST, uniform noise and rotated
// digits, next to a second detector, the score norm of a DSM-trained U-Net (preset mnist-ncsn).
#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/metrics/auroc.hpp"
#include "scorediff/objectives/contrastive.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/pipeline/image_tasks.hpp"
#include "scorediff/plot/figure.hpp"

namespace scorediff {
namespace {

// f over rows of x in chunks of 256, without a graph; [N] float64 on the CPU.
torch::Tensor by_chunks(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += 256) parts.push_back(f(x.slice(0, i, std::min(i + 256, x.size(0)))));
  return torch::cat(parts).to(torch::kCPU, torch::kFloat64);
}

double psnr_unit(const torch::Tensor& a, const torch::Tensor& b) {
  return 10 * std::log10(1.0 / (a - b).pow(2).mean().item<double>());
}

}  // namespace

nlohmann::json run_ebm_mnist(const ExperimentContext& ctx) {
  constexpr double kBound = 0.95, kDenoiseSigma = 0.2;
  constexpr int64_t kUnetSteps = 800;
  Config config = experiment_config("mnist-cd", ctx);
  TrainedRun run = train_experiment_run(config, ctx);
  const Prepared& p = run.prepared;
  const ToyDataset& data = *p.dataset;
  const std::string& range = data.pixel_range();
  const auto seed = static_cast<uint64_t>(config.run.seed);
  const c10::Device device = p.train_data.device();
  ContrastiveDivergence cd(run.config.objective);
  cd.restore(read_safetensors(ctx.out / "train" / "last.safetensors"), "ebm-mnist's checkpoint");
  ScoreModel& model = run.ema_model;
  const ContrastiveDivergence::ModelEnergy model_energy = [&](const torch::Tensor& x, const torch::Tensor& t) {
    return model->energy(x, p.process->mean_coef(t), p.process->std(t), t);
  };
  auto energy = [&](const torch::Tensor& x) { return cd.energy(model_energy, *p.process, x.to(device)); };
  nlohmann::json metrics = {{"train_seconds", run.seconds}, {"parameters", run.parameters}, {"steps", run.steps}};

  // Samples: Langevin chains from uniform noise, ten times the training chains' steps, and the buffer.
  at::Generator gen = make_generator(derive_seed(seed, "ebm-mnist"), device);
  ObjectiveOptions long_run = run.config.objective;
  long_run.sgld_steps *= 10;
  ContrastiveDivergence sampler(long_run);
  sampler.set_box(cd.box_low(), cd.box_high());
  const int64_t dim = p.train_data.size(1);
  torch::Tensor chains = cd.box_low() + (cd.box_high() - cd.box_low()) * torch::rand({64, dim}, gen, p.train_data.options());
  sampler.move(energy, chains, gen);
  save_image_grid(ctx.out / "sgld_samples.png", data, chains.cpu().clamp(0, 1));
  save_image_grid(ctx.out / "buffer.png", data, cd.buffer().slice(0, 0, 64).cpu().clamp(0, 1));
  // Chains that left their uniform restarts (mean pixel 0.5 of [0, 1]) for digits have the data's ink.
  metrics["buffer_mean_pixel"] = cd.buffer().mean().item<double>();
  metrics["train_mean_pixel"] = p.train_data.mean().item<double>();

  // Denoising: gradient descent on U (no noise) from held-out digits plus N(0, 0.2²) noise.
  torch::Tensor clean = held_out_images(data, 16, seed).to(device);
  torch::Tensor noisy = clean + kDenoiseSigma * torch::randn(clean.sizes(), gen, clean.options());
  ObjectiveOptions descent = run.config.objective;
  descent.sgld_noise_auto = false;
  descent.sgld_noise = 0;
  descent.global_moves = 0;
  ContrastiveDivergence denoiser(descent);
  denoiser.set_box(cd.box_low(), cd.box_high());
  torch::Tensor denoised = noisy.clone();
  denoiser.move(energy, denoised, gen);
  metrics["denoising"] = {{"sigma", kDenoiseSigma},
                          {"steps", descent.sgld_steps},
                          {"psnr_noisy", psnr_unit(noisy.clamp(0, 1), clean)},
                          {"psnr_denoised", psnr_unit(denoised.clamp(0, 1), clean)}};
  save_comparison_grid(ctx.out / "denoising.png", data, {clean.cpu(), noisy.cpu().clamp(0, 1), denoised.cpu().clamp(0, 1)});

  // Out-of-distribution sets, as many as the held-out digits.
  const ImageData* images = data.images();
  require(images != nullptr, "ebm-mnist needs an image dataset");
  torch::Tensor digits = unit_to_range(images->test.images, range);
  const int64_t n = digits.size(0);
  at::Generator pick = make_generator(derive_seed(seed, "ood"));
  ImageData fashion = load_image_data("fashion-mnist", "", 0);
  torch::Tensor clothes = unit_to_range(
      fashion.test.images.index_select(0, torch::randperm(fashion.test.size(), pick, torch::kInt64).slice(0, 0, n)), range);
  torch::Tensor noise = unit_to_range(torch::rand(digits.sizes(), pick), range);
  torch::Tensor rotated = torch::rot90(digits, 1, {2, 3});
  const std::vector<std::pair<std::string, torch::Tensor>> outliers = {
      {"fashion-mnist", clothes}, {"uniform-noise", noise}, {"rotated-90", rotated}};
  auto flat = [](const torch::Tensor& x) { return x.reshape({x.size(0), -1}).contiguous(); };

  // Detector 2: a DSM U-Net's score norm at its smallest noise level, inputs noised at that level.
  Config unet_config = experiment_config("mnist-ncsn", ctx, {fmt::format("train.steps={}", kUnetSteps)});
  TrainedRun unet = train_run(unet_config, ctx.out / "unet", {false, ctx.quiet});
  const double sigma = unet.prepared.process->sigma_min();
  ScoreFn unet_score = model_score_fn(unet.ema_model, unet.prepared.process);
  at::Generator probe = make_generator(derive_seed(seed, "ood-probe"));
  auto score_norm = [&](const torch::Tensor& x) {
    torch::Tensor noised = x + sigma * torch::randn(x.sizes(), probe, x.options());
    torch::Tensor t = torch::full({x.size(0)}, unet.prepared.process->t_at_sigma(sigma), x.options());
    return -unet_score(noised.to(device), t.to(device)).flatten(1).norm(2, 1);
  };
  const std::vector<std::pair<std::string, std::function<torch::Tensor(const torch::Tensor&)>>> detectors = {
      {"energy", [&](const torch::Tensor& x) { return -energy(x); }}, {"unet-score-norm", score_norm}};

  std::vector<std::vector<std::string>> rows;
  Checks checks;
  double best_fashion = 0;
  Figure hist(ctx.out / "ood.png", 2 * 520, 420, 2, 1);
  for (size_t d = 0; d < detectors.size(); ++d) {
    const auto& [name, detect] = detectors[d];
    torch::Tensor in_scores = by_chunks(detect, flat(digits));
    std::vector<Curve> curves;
    std::vector<std::string> row = {name};
    std::vector<torch::Tensor> all = {in_scores};
    std::vector<torch::Tensor> out_scores;
    for (const auto& [set, x] : outliers) out_scores.push_back(by_chunks(detect, flat(x)));
    for (const auto& s : out_scores) all.push_back(s);
    // Histograms on one set of bins per detector.
    const double lo = torch::cat(all).min().item<double>(), hi = torch::cat(all).max().item<double>();
    auto histogram = [&](const torch::Tensor& s, const std::string& label, int colour) {
      torch::Tensor counts = torch::histc(s, 40, lo, hi) / static_cast<double>(s.numel());
      std::vector<double> xs, ys;
      for (int64_t b = 0; b < 40; ++b) {
        xs.push_back(lo + (hi - lo) * (static_cast<double>(b) + 0.5) / 40);
        ys.push_back(counts[b].item<double>());
      }
      curves.push_back({label, xs, ys, palette(colour)});
    };
    histogram(in_scores, "MNIST test", 0);
    for (size_t o = 0; o < outliers.size(); ++o) {
      const double a = auroc(in_scores, out_scores[o]);
      metrics["auroc"][name][outliers[o].first] = a;
      row.push_back(num(a));
      histogram(out_scores[o], outliers[o].first, static_cast<int>(o) + 1);
      if (o == 0) best_fashion = std::max(best_fashion, a);
    }
    rows.push_back(row);
    hist.curves(static_cast<int>(d) + 1, name == "energy" ? "-U(x) of the CD energy" : "-|s(x)| of the DSM U-Net",
                "detector value", "fraction", curves);
  }
  hist.save();
  checks.at_least("auroc_fashion_best_detector", best_fashion, kBound);
  metrics["unet"] = {{"steps", unet.steps}, {"train_seconds", unet.seconds}, {"sigma", sigma}};

  const ObjectiveOptions& o = run.config.objective;
  Report report("An energy CNN trained by contrastive divergence on MNIST (seed 002)");
  report.paragraph(fmt::format(
      "Preset `mnist-cd`: `energy-cnn` ({} parameters, {} base channels) on the {} MNIST training digits, pixels in "
      "[0, 1], trained by contrastive divergence (objective `cd`) for {} steps of batch {} in {}: the loss U(x⁺) − U(x⁻) "
      "+ {}·(U(x⁺)² + U(x⁻)²), negatives from a replay buffer of {} chains, {} Langevin steps x ← x − {}·∇U + {}·z "
      "per draw, {} of the drawn chains restarted uniformly on [{}, {}] (Du & Mordatch 2019).",
      run.parameters, run.config.model.channels, p.train_data.size(0), run.steps, run.config.train.batch,
      format_duration(run.seconds), num(o.energy_reg), o.buffer, o.sgld_steps, num(o.sgld_step),
      num(o.sgld_noise_auto ? std::sqrt(2 * o.sgld_step) : o.sgld_noise), num(o.reinit), num(cd.box_low()),
      num(cd.box_high())));
  report.heading("Samples");
  report.paragraph(fmt::format(
      "Mean pixel of the replay buffer at the end: {:.3f}, against {:.3f} for the training digits and {:.3f} for a "
      "uniform restart: the chains left the noise they started from.",
      metrics["buffer_mean_pixel"].get<double>(), metrics["train_mean_pixel"].get<double>(),
      0.5 * (cd.box_low() + cd.box_high())));
  report.image("sgld_samples.png", fmt::format("64 chains from uniform noise after {} Langevin steps", long_run.sgld_steps));
  report.image("buffer.png", "64 chains of the replay buffer at the end of training");
  report.heading("Denoising by descending the energy");
  report.paragraph(fmt::format(
      "Held-out digits plus N(0, {}²) noise, then {} steps of x ← x − {}·∇U(x) without noise. PSNR against the clean "
      "digits: {:.2f} dB noisy, {:.2f} dB after descent.",
      num(kDenoiseSigma), descent.sgld_steps, num(descent.sgld_step), metrics["denoising"]["psnr_noisy"].get<double>(),
      metrics["denoising"]["psnr_denoised"].get<double>()));
  report.image("denoising.png", "clean | noisy | after gradient descent on U");
  report.heading("Out-of-distribution detection");
  report.paragraph(fmt::format(
      "AUROC of a detector that should be higher on the {} held-out MNIST digits than on as many outliers: "
      "Fashion-MNIST test images, uniform noise, and the same digits rotated by 90°. Detectors: −U(x) of the CD "
      "energy, and −‖s(x̃, σ)‖ of a U-Net trained by DSM (preset `mnist-ncsn`, {} steps, {}) at its smallest level "
      "σ = {}, with x̃ = x + σz.",
      n, unet.steps, format_duration(unet.seconds), num(sigma)));
  report.table({"detector", "Fashion-MNIST", "uniform noise", "rotated 90°"}, rows);
  report.image("ood.png", "Histograms of each detector on MNIST test digits and the three outlier sets");
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, std::move(metrics), ctx);
}

}  // namespace scorediff
