// A U-Net small enough for unit tests (test_unet.cpp, test_group_norm.cpp): 8 channels, two levels,
// attention at 4x4.
#pragma once
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

}  // namespace scorediff
