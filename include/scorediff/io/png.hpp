// PNG files through libpng: read one image as a float tensor, write one, and tile many into a grid.
#pragma once
#include <torch/types.h>

#include <filesystem>

namespace scorediff {

// Reads a PNG (gray, gray+alpha, RGB, RGBA or palette; 1 to 16 bits) as float32 [C, H, W] in [0, 1],
// C = 1 for gray and 3 for colour (alpha is dropped). A missing or malformed file fails with one line
// naming it.
torch::Tensor read_png(const std::filesystem::path& path);

// Writes float [C, H, W] (C = 1 or 3; values clamped to [0, 1]) as an 8-bit PNG, atomically.
void write_png(const std::filesystem::path& path, const torch::Tensor& image);

// Tiles images [N, C, H, W] in [0, 1] row by row into [C, rows·(H+pad)+pad, cols·(W+pad)+pad], with
// `pad` pixels of pad_value between and around them; rows = ceil(N / cols).
torch::Tensor image_grid(const torch::Tensor& images, int64_t cols, int64_t pad = 1, double pad_value = 1.0);

}  // namespace scorediff
