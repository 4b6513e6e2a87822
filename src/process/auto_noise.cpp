#include "scorediff/process/auto_noise.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "scorediff/core/error.hpp"
#include "scorediff/process/noise_process.hpp"

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

NoiseFloor noise_floor(const torch::Tensor& queries, const torch::Tensor& points) {
  require(queries.dim() == 2 && points.dim() == 2 && queries.size(1) == points.size(1) && queries.size(0) >= 1,
          "the noise floor needs point sets [N, D] of equal D");
  constexpr int64_t kSmallest = 8, kLargest = 1024;
  const int64_t n = points.size(0), dim = points.size(1);
  std::vector<int64_t> ks;
  for (int64_t k = kSmallest; k <= std::min(kLargest, n / 4); k *= 2)
    if (k >= 4 * dim) ks.push_back(k);
  NoiseFloor out;
  if (ks.size() < 3) return out;
  torch::Tensor q = queries.to(torch::kCPU, torch::kFloat64), p = points.to(torch::kCPU, torch::kFloat64);
  // Smallest local std per query and k, in blocks of queries: [Q, K].
  std::vector<torch::Tensor> blocks;
  const int64_t rows = std::max<int64_t>(1, kChunk * 2 / std::max<int64_t>(1, dim));
  for (int64_t i = 0; i < q.size(0); i += rows) {
    torch::Tensor d = torch::cdist(q.slice(0, i, i + rows), p, 2.0, kExact);
    torch::Tensor nearest = std::get<1>(d.topk(ks.back(), 1, /*largest=*/false, /*sorted=*/true));
    torch::Tensor neighbours = p.index_select(0, nearest.reshape({-1})).reshape({nearest.size(0), ks.back(), dim});
    std::vector<torch::Tensor> per_k;
    for (const int64_t k : ks) {
      torch::Tensor local = neighbours.slice(1, 0, k);
      local = local - local.mean(1, true);
      torch::Tensor cov = local.transpose(1, 2).matmul(local) / static_cast<double>(k - 1);
      per_k.push_back(torch::linalg::eigvalsh(cov, "L").select(1, 0).clamp_min(0).sqrt());
    }
    blocks.push_back(torch::stack(per_k, 1));
  }
  torch::Tensor medians = std::get<0>(torch::cat(blocks).median(0));
  // No thickness (an exact manifold leaves only rounding): nothing to read.
  if (!(medians.min().item<double>() > 1e-7 * p.std(0).max().item<double>())) return out;
  torch::Tensor slopes = medians.log().diff();
  const int64_t at = slopes.argmin().item<int64_t>() + 1;
  out.std = medians[at].item<double>();
  out.k = ks[static_cast<size_t>(at)];
  out.found = true;
  return out;
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

double langevin_variance(double start, double v, double alpha, int64_t steps) {
  const double f = (1 - alpha / v) * (1 - alpha / v), t = static_cast<double>(steps);
  const double ft = std::pow(f, t);
  // 2α(1 − f^T)/(1 − f) is 2αT in the limit f → 1.
  const double added = std::abs(1 - f) < 1e-12 ? 2 * alpha * t : 2 * alpha * (1 - ft) / (1 - f);
  return ft * start + added;
}

double annealed_variance_error(const std::vector<double>& sigmas, double eps, int64_t steps_per_level, double tau) {
  require(!sigmas.empty() && eps > 0 && steps_per_level >= 1, "the ladder's variance needs levels, eps > 0 and steps >= 1");
  const double last = sigmas.back() * sigmas.back(), tau2 = tau * tau;
  double variance = sigmas.front() * sigmas.front();  // the prior N(0, σ_1²)
  for (double sigma : sigmas)
    variance = langevin_variance(variance, tau2 + sigma * sigma, eps * sigma * sigma / last, steps_per_level);
  return variance / (tau2 + last) - 1;
}

LangevinStep langevin_step(const std::vector<double>& sigmas, int64_t steps_per_level, double tau_max) {
  require(!sigmas.empty() && steps_per_level >= 1, "the Langevin step needs levels and steps per level >= 1");
  const double last = sigmas.back();
  std::vector<double> scales = {0.0};
  const double top = std::max(last, tau_max);
  for (int k = 0; k < kAutoScales; ++k) scales.push_back(last * std::pow(top / last, k / double(kAutoScales - 1)));
  constexpr int kGrid = 400;
  LangevinStep best;
  best.worst_error = std::numeric_limits<double>::infinity();
  for (int i = 0; i <= kGrid; ++i) {
    const double eps = std::pow(10.0, -6.0 + (6.0 + std::log10(2.0)) * i / kGrid) * last * last;
    LangevinStep here{eps, 0.0, 0.0};
    for (double tau : scales) {
      const double error = std::abs(annealed_variance_error(sigmas, eps, steps_per_level, tau));
      if (!(error <= here.worst_error)) here.worst_error = error, here.worst_tau = tau;  // NaN counts as worst
      if (!(here.worst_error < best.worst_error)) break;  // already no better than the best
    }
    if (here.worst_error < best.worst_error) best = here;
  }
  return best;
}

double largest_principal_std(const torch::Tensor& x) {
  require(x.dim() == 2 && x.size(0) >= 2, "the principal standard deviation needs at least two points [N, D]");
  torch::Tensor c = x.to(torch::kCPU, torch::kFloat64);
  c = c - c.mean(0, true);
  // XᵀX and XXᵀ share their nonzero eigenvalues: take the smaller one.
  torch::Tensor gram = c.size(1) <= c.size(0) ? c.t().matmul(c) : c.matmul(c.t());
  const double top = torch::linalg::eigvalsh(gram, "L").max().item<double>();
  return std::sqrt(std::max(0.0, top) / static_cast<double>(c.size(0) - 1));
}

AutoLevels variance_levels(double sigma_max, double sigma_min, int64_t at_least, int64_t steps_per_level, double tau_max) {
  require(sigma_max > sigma_min && sigma_min > 0, "variance_levels needs sigma_max > sigma_min > 0");
  auto at = [&](int64_t levels) {
    AutoLevels a;
    a.levels = levels;
    a.step = langevin_step(SigmaLadder(sigma_min, sigma_max, levels).levels(), steps_per_level, tau_max);
    a.reached = a.step.worst_error <= kAutoVarianceTolerance;
    return a;
  };
  // The error falls as levels are added: double until it is within the tolerance, then bisect.
  AutoLevels good = at(std::clamp<int64_t>(at_least, 2, kAutoMaxLevels));
  const double at_least_error = good.step.worst_error;
  int64_t bad = good.levels;
  while (!good.reached && good.levels < kAutoMaxLevels) {
    bad = good.levels;
    good = at(std::min(kAutoMaxLevels, 2 * good.levels));
  }
  while (good.reached && good.levels - bad > 1) {
    AutoLevels mid = at((bad + good.levels) / 2);
    if (mid.reached)
      good = mid;
    else
      bad = mid.levels;
  }
  good.at_least_error = at_least_error;
  return good;
}

}  // namespace scorediff
