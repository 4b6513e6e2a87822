#include "scorediff/metrics/auroc.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "scorediff/core/error.hpp"

namespace scorediff {

double auroc(const torch::Tensor& inliers, const torch::Tensor& outliers) {
  require(inliers.numel() > 0 && outliers.numel() > 0, "auroc needs inliers and outliers (got {} and {})",
          inliers.numel(), outliers.numel());
  torch::Tensor a = inliers.reshape({-1}).to(torch::kCPU, torch::kFloat64).contiguous();
  torch::Tensor b = outliers.reshape({-1}).to(torch::kCPU, torch::kFloat64).contiguous();
  require(torch::isfinite(a).all().item<bool>() && torch::isfinite(b).all().item<bool>(),
          "auroc: the scores must be finite");
  const int64_t n = a.numel(), m = b.numel();
  std::vector<std::pair<double, bool>> all;  // (score, is inlier)
  all.reserve(static_cast<size_t>(n + m));
  for (int64_t i = 0; i < n; ++i) all.emplace_back(a.data_ptr<double>()[i], true);
  for (int64_t i = 0; i < m; ++i) all.emplace_back(b.data_ptr<double>()[i], false);
  std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  // Sum of the inliers' ranks (1-based, ties at their mid-rank).
  double rank_sum = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    int64_t in_group = 0;
    while (j < all.size() && all[j].first == all[i].first) in_group += all[j++].second ? 1 : 0;
    const double mid_rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j));
    rank_sum += mid_rank * static_cast<double>(in_group);
    i = j;
  }
  const double u = rank_sum - 0.5 * static_cast<double>(n) * static_cast<double>(n + 1);
  return u / (static_cast<double>(n) * static_cast<double>(m));
}

}  // namespace scorediff
