#include "scorediff/metrics/metrics.hpp"

#include <torch/torch.h>

#include "scorediff/core/error.hpp"

namespace scorediff {
namespace {

// Empirical quantile function of sorted columns [n, P] at m levels (i + ½)/m, linear interpolation.
torch::Tensor resample_quantiles(const torch::Tensor& sorted, int64_t m) {
  int64_t n = sorted.size(0);
  if (n == m) return sorted;
  torch::Tensor pos = ((torch::arange(m, torch::kFloat64) + 0.5) * (static_cast<double>(n) / m) - 0.5).clamp(0, n - 1);
  torch::Tensor lo = pos.floor().to(torch::kInt64), hi = pos.ceil().to(torch::kInt64);
  torch::Tensor w = (pos - lo.to(torch::kFloat64)).unsqueeze(1);
  return sorted.index_select(0, lo) * (1 - w) + sorted.index_select(0, hi) * w;
}

}  // namespace

double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections, at::Generator& gen) {
  require(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), "SWD needs two point sets [N, D] of equal D, got [{}] and [{}]",
          fmt::join(a.sizes(), ", "), fmt::join(b.sizes(), ", "));
  require(a.size(0) > 0 && b.size(0) > 0, "SWD of an empty point set");
  require(projections >= 1, "SWD needs at least one projection");
  int64_t d = a.size(1);
  torch::Tensor theta = torch::randn({d, projections}, gen, torch::kFloat64);
  theta = theta / theta.norm(2, 0, true);
  torch::Tensor pa = std::get<0>(torch::sort(a.to(torch::kCPU, torch::kFloat64).matmul(theta), 0));
  torch::Tensor pb = std::get<0>(torch::sort(b.to(torch::kCPU, torch::kFloat64).matmul(theta), 0));
  int64_t m = std::max(a.size(0), b.size(0));
  torch::Tensor diff = resample_quantiles(pa, m) - resample_quantiles(pb, m);
  return std::sqrt(static_cast<double>(d) * diff.pow(2).mean().item<double>());
}

std::vector<double> mode_weights(const torch::Tensor& x, const torch::Tensor& means) {
  torch::Tensor finite = torch::isfinite(x).all(1);
  torch::Tensor points = x.index({finite}).to(torch::kCPU, torch::kFloat64);
  int64_t k = means.size(0);
  std::vector<double> out(static_cast<size_t>(k), 0.0);
  if (points.size(0) == 0) return out;
  torch::Tensor nearest = torch::cdist(points, means.to(torch::kCPU, torch::kFloat64)).argmin(1);
  torch::Tensor counts = torch::bincount(nearest, {}, k).to(torch::kFloat64) / static_cast<double>(points.size(0));
  for (int64_t i = 0; i < k; ++i) out[static_cast<size_t>(i)] = counts[i].item<double>();
  return out;
}

int64_t count_non_finite(const torch::Tensor& x) {
  return (~torch::isfinite(x)).flatten(1).any(1).sum().item<int64_t>();
}

}  // namespace scorediff
