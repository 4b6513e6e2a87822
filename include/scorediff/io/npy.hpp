// NumPy .npy read/write (format 1.0-3.0, little-endian, C order), so NumPy opens samples directly.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <optional>

namespace scorediff {

// Reads f4, f8, i1, u1, i4, i8, b1 arrays; the tensor keeps the file's dtype.
torch::Tensor read_npy(const std::filesystem::path& path);
// Writes a CPU copy of `array` atomically.
void write_npy(const std::filesystem::path& path, const torch::Tensor& array);

// A set of points [N, D] as float32: fails with one line on a wrong rank, a dimension other than
// `expected_dim` (when given), a non-numeric dtype, no rows, or NaN/Inf values.
// flatten: images [N, C, H, W] or [N, H, W] are read as [N, C·H·W].
torch::Tensor read_points(const std::filesystem::path& path, std::optional<int64_t> expected_dim = std::nullopt,
                          bool flatten = false);

}  // namespace scorediff
