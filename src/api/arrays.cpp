#include "api/arrays.hpp"

#include <torch/torch.h>

#include "scorediff/core/error.hpp"

namespace scorediff::api {

std::recursive_mutex& call_lock() {
  static std::recursive_mutex lock;
  return lock;
}

Array to_array(const torch::Tensor& t, const std::vector<int64_t>& shape) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  Array out;
  out.shape = shape.empty() ? c.sizes().vec() : shape;
  int64_t count = 1;
  for (int64_t d : out.shape) count *= d;
  require(count == c.numel(), "internal: {} values for an array of {}", c.numel(), count);
  out.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return out;
}

torch::Tensor to_points(const Array& x, int64_t dim, const std::string& what) {
  require(x.shape.size() >= 2, "{} must have shape [N, {}] (or [N, C, H, W] for images), got {} dimension(s)", what,
          dim, x.shape.size());
  int64_t count = 1, row = 1;
  for (size_t i = 0; i < x.shape.size(); ++i) {
    require(x.shape[i] >= 0, "{}: negative extent {} in its shape", what, x.shape[i]);
    count *= x.shape[i];
    if (i > 0) row *= x.shape[i];
  }
  require(row == dim, "{} has rows of {} values, the model's data {}", what, row, dim);
  require(x.shape[0] >= 1, "{} has no rows", what);
  require(static_cast<int64_t>(x.data.size()) == count, "{}: {} values for shape [{}]", what, x.data.size(),
          fmt::join(x.shape, ", "));
  torch::Tensor t = torch::from_blob(const_cast<float*>(x.data.data()), {x.shape[0], dim}, torch::kFloat32).clone();
  require(torch::isfinite(t).all().item<bool>(), "{} holds NaN or Inf values", what);
  return t;
}

}  // namespace scorediff::api
