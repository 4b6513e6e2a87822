#include "scorediff/process/auto_noise.hpp"

#include <torch/torch.h>

#include <cmath>

#include "scorediff/core/error.hpp"

namespace scorediff {
namespace {

constexpr int64_t kChunk = 512;  // rows per distance block: 512 × N doubles at a time
// cdist's compute mode 2: differences, not ‖a‖² + ‖b‖² − 2a·b, whose rounding leaves a point at a small
// positive distance from itself.
constexpr int64_t kExact = 2;

}  // namespace

double largest_pairwise_distance(const torch::Tensor& x) {
  require(x.dim() == 2 && x.size(0) >= 2, "the largest pairwise distance needs at least two points [N, D]");
  torch::Tensor p = x.to(torch::kCPU, torch::kFloat64);
  double largest = 0;
  for (int64_t i = 0; i < p.size(0); i += kChunk)
    largest = std::max(largest, torch::cdist(p.slice(0, i, i + kChunk), p, 2.0, kExact).max().item<double>());
  return largest;
}

double median_nearest_neighbour(const torch::Tensor& queries, const torch::Tensor& points) {
  require(queries.dim() == 2 && points.dim() == 2 && points.size(0) >= 2,
          "nearest-neighbour distances need point sets [N, D] with N >= 2");
  torch::Tensor q = queries.to(torch::kCPU, torch::kFloat64), p = points.to(torch::kCPU, torch::kFloat64);
  std::vector<torch::Tensor> nearest;
  for (int64_t i = 0; i < q.size(0); i += kChunk) {
    torch::Tensor d = torch::cdist(q.slice(0, i, i + kChunk), p, 2.0, kExact);
    d = torch::where(d > 0, d, torch::full_like(d, std::numeric_limits<double>::infinity()));
    nearest.push_back(std::get<0>(d.min(1)));
  }
  torch::Tensor all = torch::cat(nearest);
  all = all.index({torch::isfinite(all)});
  require(all.numel() > 0, "every point coincides with every other: no nearest-neighbour distance");
  return all.median().item<double>();
}

double shell_probability(int64_t dim, double gamma) {
  const double d = static_cast<double>(dim), root = std::sqrt(d), half_width = 3 / std::sqrt(2.0);
  const double lo = std::max(0.0, root - half_width), hi = root + half_width;
  // ‖x‖²/(γ²σ²) ~ χ²_D for x ~ N(0, γ²σ² I): P(‖x‖ ≤ r σ) = P(D/2, r²/(2γ²)), the regularised gamma.
  auto cdf = [&](double r) {
    return torch::igamma(torch::full({1}, d / 2, torch::kFloat64), torch::full({1}, r * r / (2 * gamma * gamma), torch::kFloat64))
        .item<double>();
  };
  return cdf(hi) - cdf(lo);
}

double level_ratio(int64_t dim) {
  require(dim >= 1, "level_ratio needs a dimension >= 1, got {}", dim);
  // The probability falls from ~0.997 at γ = 1 towards 0: bisection for 1/2.
  double lo = 1.0, hi = 2.0;
  while (shell_probability(dim, hi) > 0.5) hi *= 2;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    (shell_probability(dim, mid) > 0.5 ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

int64_t ladder_levels(double sigma_max, double sigma_min, double gamma) {
  require(sigma_max > sigma_min && sigma_min > 0 && gamma > 1, "ladder_levels needs sigma_max > sigma_min > 0 and gamma > 1");
  return static_cast<int64_t>(std::ceil(std::log(sigma_max / sigma_min) / std::log(gamma) - 1e-9)) + 1;
}

double langevin_step_criterion(double eps, double gamma, double sigma_min, int64_t steps_per_level) {
  const double s2 = sigma_min * sigma_min, u = eps / s2;
  const double stationary = 2 * eps / (s2 - s2 * (1 - u) * (1 - u));
  return std::pow(1 - u, 2.0 * static_cast<double>(steps_per_level)) * (gamma * gamma - stationary) + stationary;
}

double langevin_step(double gamma, double sigma_min, int64_t steps_per_level) {
  require(steps_per_level >= 1, "the Langevin step needs steps per level >= 1");
  // A log grid of ε/σ_L² over (1e-12, 1), as Song & Ermon search it.
  constexpr int kGrid = 6000;
  double best = 0, best_gap = std::numeric_limits<double>::infinity();
  for (int i = 0; i < kGrid; ++i) {
    const double u = std::pow(10.0, -12.0 + 12.0 * i / kGrid);
    const double gap = std::abs(langevin_step_criterion(u * sigma_min * sigma_min, gamma, sigma_min, steps_per_level) - 1);
    if (gap < best_gap) best_gap = gap, best = u;
  }
  return best * sigma_min * sigma_min;
}

}  // namespace scorediff
