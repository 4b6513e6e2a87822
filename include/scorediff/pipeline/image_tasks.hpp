// Image tasks of a trained score model on held-out images: inpainting of masked pixels with the
// predictor–corrector sampler (score_sde style) and denoising by Tweedie's formula.
#pragma once
#include <ATen/core/Generator.h>

#include <filesystem>
#include <string>

#include "scorediff/pipeline/training.hpp"

namespace scorediff {

// 1 where a pixel is known, [n, C·H·W]: "left", "right", "top", "bottom" (half of the image),
// "center" (a centred square of half the side unknown), "random" (each pixel known with probability ½,
// drawn from gen per image).
torch::Tensor image_mask(const std::string& kind, const std::vector<int64_t>& shape, int64_t n, at::Generator& gen);
std::vector<std::string> mask_kinds();
// Fails with one line listing mask_kinds() unless kind is one of them.
void check_mask_kind(const std::string& kind);

// n held-out images [n, C·H·W] in the dataset's pixel range, chosen by the "tasks" stream of seed.
torch::Tensor held_out_images(const ToyDataset& dataset, int64_t n, uint64_t seed);

struct InpaintResult {
  torch::Tensor originals, mask, completed;  // [N, D] each (mask 1 = known)
  int64_t nfe = 0;
  double mse_unknown = 0;  // mean squared error over the unknown pixels, in [0, 1] pixel units
};
// Completes originals [N, D] where mask is 0 with sample_pc_inpaint under config.sample (predictor,
// corrector, snr, nfe; sampler taken as pc).
InpaintResult inpaint_images(const Config& config, const Prepared& prepared, const ScoreFn& score,
                             const torch::Tensor& originals, const torch::Tensor& mask, at::Generator& gen, bool quiet);

struct DenoiseResult {
  torch::Tensor clean, noisy, denoised;  // [N, D]
  double psnr_noisy = 0, psnr_denoised = 0;  // dB against the clean images, pixels in [0, 1]
};
// Adds N(0, σ²) noise to clean [N, D] (in the data's scale) and denoises it by Tweedie's formula.
DenoiseResult denoise_images(const Prepared& prepared, const ScoreFn& score, const torch::Tensor& clean, double sigma,
                             at::Generator& gen);

// Rows of [N, D] images side by side: one grid row per image, one column per tensor.
void save_comparison_grid(const std::filesystem::path& path, const ToyDataset& dataset,
                          const std::vector<torch::Tensor>& columns);

}  // namespace scorediff
