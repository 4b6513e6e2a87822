// A U-Net small enough for unit tests (test_unet.cpp, test_group_norm.cpp): 8 channels, two levels,
// attention at 4x4; and a GroupNorm layer of its kind with random affine weights.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "scorediff/models/score_model.hpp"

namespace scorediff {

inline ModelOptions tiny_unet(std::vector<int64_t> shape = {1, 8, 8}) {
  ModelOptions o;
  o.name = "unet";
  o.channels = 8;
  o.channel_mult = {1, 2};
  o.attention = {4};
  o.fourier_features = 8;
  o.fourier_scale = 4.0;
  o.sigma_data = 0.5;
  o.image_shape = std::move(shape);
  return o;
}

// GroupNorm(groups, channels, eps 1e-6) whose weight, then bias, are drawn N(0, 1) from `gen`.
inline torch::nn::GroupNorm random_group_norm(int64_t groups, int64_t channels, at::Generator& gen) {
  torch::nn::GroupNorm norm(torch::nn::GroupNormOptions(groups, channels).eps(1e-6));
  torch::NoGradGuard no_grad;
  norm->weight.copy_(torch::randn({channels}, gen));
  norm->bias.copy_(torch::randn({channels}, gen));
  return norm;
}

}  // namespace scorediff
