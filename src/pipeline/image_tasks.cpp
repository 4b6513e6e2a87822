#include "scorediff/pipeline/image_tasks.hpp"

#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/png.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/samplers/predictor_corrector.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/process/tweedie.hpp"

namespace scorediff {
namespace {

double psnr(const torch::Tensor& a, const torch::Tensor& b) {  // both in [0, 1]
  double mse = (a - b).pow(2).mean().item<double>();
  return 10 * std::log10(1.0 / std::max(mse, 1e-12));
}

}  // namespace

std::vector<std::string> mask_kinds() { return {"bottom", "center", "left", "random", "right", "top"}; }

void check_mask_kind(const std::string& kind) {
  const auto kinds = mask_kinds();
  require(std::find(kinds.begin(), kinds.end(), kind) != kinds.end(), "unknown mask '{}'; valid: {}", kind,
          join_names(kinds));
}

torch::Tensor image_mask(const std::string& kind, const std::vector<int64_t>& shape, int64_t n, at::Generator& gen) {
  require(shape.size() == 3, "masks need an image shape [C, H, W]");
  check_mask_kind(kind);
  const int64_t C = shape[0], H = shape[1], W = shape[2];
  if (kind == "random") return torch::bernoulli(torch::full({n, C * H * W}, 0.5), gen);
  torch::Tensor m = torch::ones({C, H, W});
  if (kind == "left") m.slice(2, 0, W / 2).zero_();
  else if (kind == "right") m.slice(2, W / 2, W).zero_();
  else if (kind == "top") m.slice(1, 0, H / 2).zero_();
  else if (kind == "bottom") m.slice(1, H / 2, H).zero_();
  else if (kind == "center") m.slice(1, H / 4, H / 4 + H / 2).slice(2, W / 4, W / 4 + W / 2).zero_();
  return m.reshape({1, C * H * W}).expand({n, C * H * W}).contiguous();
}

torch::Tensor held_out_images(const ToyDataset& dataset, int64_t n, uint64_t seed) {
  const ImageData* data = dataset.images();
  require(data != nullptr, "this task needs an image dataset (fashion-mnist, mnist, png-folder)");
  const int64_t total = data->test.size();
  require(n >= 1 && n <= total, "asked for {} held-out images; the dataset holds out {}", n, total);
  at::Generator gen = make_generator(derive_seed(seed, "tasks"));
  torch::Tensor index = torch::randperm(total, gen, torch::kInt64).slice(0, 0, n);
  torch::Tensor images = data->test.images.index_select(0, index).reshape({n, -1});
  return unit_to_range(images, dataset.pixel_range());
}

InpaintResult inpaint_images(const Config& config, const Prepared& prepared, const ScoreFn& score,
                             const torch::Tensor& originals, const torch::Tensor& mask, at::Generator& gen, bool quiet) {
  SampleOptions options = config.sample;
  options.sampler = "pc";
  check_sampler(options, *prepared.process);
  PcOptions d = pc_options(options, grid_options(options, *prepared.process));
  const c10::Device device = prepared.train_data.device();
  torch::Tensor x = initial_state(options, *prepared.process, originals.size(0), originals.size(1), gen);
  Progress progress("inpaint", d.steps, "step", quiet);
  SampleResult r = sample_pc_inpaint(score, *prepared.process, x, {originals.to(device), mask.to(device)}, d, gen,
                                     [&](int64_t done, int64_t) { progress.update(done); });
  progress.finish(fmt::format("{} NFE", r.nfe));
  InpaintResult out{originals, mask, r.samples.to(torch::kCPU), r.nfe};
  const std::string& range = prepared.dataset->pixel_range();
  torch::Tensor unknown = 1 - mask;
  torch::Tensor err = (range_to_unit(out.completed, range).clamp(0, 1) - range_to_unit(originals, range)).pow(2);
  out.mse_unknown = (err * unknown).sum().item<double>() / std::max(1.0, unknown.sum().item<double>());
  return out;
}

DenoiseResult denoise_images(const Prepared& prepared, const ScoreFn& score, const torch::Tensor& clean, double sigma,
                             at::Generator& gen) {
  const NoiseProcess& process = *prepared.process;
  require(sigma >= process.sigma_min() && sigma <= process.sigma_max(),
          "sigma {} is outside the model's noise range [{}, {}]", sigma, process.sigma_min(), process.sigma_max());
  const c10::Device device = prepared.train_data.device();
  torch::Tensor x0 = clean.to(device);
  torch::Tensor t = torch::full({x0.size(0)}, process.t_at_sigma(sigma), x0.options());
  // x_t = m (x₀ + σ z): the process' own noising at the time where σ(t) = sigma.
  torch::Tensor m = process.mean_coef(t).reshape({-1, 1});
  torch::Tensor noisy = m * (x0 + sigma * torch::randn(x0.sizes(), gen, x0.options()));
  torch::Tensor denoised;
  {
    torch::NoGradGuard no_grad;
    denoised = tweedie_denoise(score, process, noisy, t);
  }
  DenoiseResult out{clean, (noisy / m).to(torch::kCPU), denoised.to(torch::kCPU)};
  const std::string& range = prepared.dataset->pixel_range();
  torch::Tensor unit = range_to_unit(clean, range);
  out.psnr_noisy = psnr(range_to_unit(out.noisy, range).clamp(0, 1), unit);
  out.psnr_denoised = psnr(range_to_unit(out.denoised, range).clamp(0, 1), unit);
  return out;
}

void save_comparison_grid(const std::filesystem::path& path, const ToyDataset& dataset,
                          const std::vector<torch::Tensor>& columns) {
  require(!columns.empty(), "a comparison grid needs at least one column");
  torch::Tensor stacked = torch::stack(columns, 1);  // [N, K, D]: row i holds columns[0][i], columns[1][i], ...
  save_image_grid(path, dataset, stacked.reshape({-1, stacked.size(2)}), static_cast<int64_t>(columns.size()));
}

}  // namespace scorediff
