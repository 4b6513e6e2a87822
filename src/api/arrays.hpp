// scorediff::Array (the public API's NumPy-like array) to and from tensors, with one-line errors for bad shapes
// and values. Internal to the library.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "scorediff/scorediff.hpp"

namespace scorediff::api {

// A float32 CPU copy of t, reshaped to `shape` when given (same number of elements).
Array to_array(const torch::Tensor& t, const std::vector<int64_t>& shape = {});

// Points [N, dim] (float32) from x of shape [N, dim] or [N, d1, d2, ...] with d1·d2·… = dim, N >= 1, every value
// finite; `what` names x in the error line.
torch::Tensor to_points(const Array& x, int64_t dim, const std::string& what);

}  // namespace scorediff::api
