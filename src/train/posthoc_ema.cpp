#include "scorediff/train/posthoc_ema.hpp"

#include <torch/torch.h>

#include <cmath>

#include "scorediff/core/error.hpp"

namespace scorediff {

double power_ema_sigma_rel(double gamma) {
  return std::sqrt(gamma + 1) / ((gamma + 2) * std::sqrt(gamma + 3));
}

double power_ema_gamma(double sigma_rel) {
  const double largest = power_ema_sigma_rel(0.0);
  require(std::isfinite(sigma_rel) && sigma_rel > 0 && sigma_rel <= largest,
          "sigma_rel = {} is outside (0, {:.4f}], the lengths a power-function EMA with gamma >= 0 has", sigma_rel,
          largest);
  // σ_rel(γ) decreases from 0.289 at γ = 0 to 0 as γ → ∞ (about 1/γ): bracket, then bisect to double precision.
  double low = 0, high = 1;
  while (power_ema_sigma_rel(high) > sigma_rel) high *= 2;
  for (int i = 0; i < 200 && high - low > 1e-14 * high; ++i) {
    const double mid = 0.5 * (low + high);
    (power_ema_sigma_rel(mid) > sigma_rel ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

double power_ema_decay(double gamma, int64_t t) {
  return t <= 1 ? 0.0 : std::pow(1.0 - 1.0 / static_cast<double>(t), gamma + 1);
}

double power_profile_dot(const PowerEmaSnapshot& a, const PowerEmaSnapshot& b) {
  // ∫₀^m (γa+1)(γb+1) τ^(γa+γb) / (ta^(γa+1) tb^(γb+1)) dτ, m = min(ta, tb); in logarithms, since t^γ overflows.
  const double ta = static_cast<double>(a.step), tb = static_cast<double>(b.step);
  const double m = std::min(ta, tb), g = a.gamma + b.gamma + 1;
  const double log_value =
      g * std::log(m) - (a.gamma + 1) * std::log(ta) - (b.gamma + 1) * std::log(tb) + std::log(a.gamma + 1) +
      std::log(b.gamma + 1) - std::log(g);
  return std::exp(log_value);
}

std::vector<double> posthoc_ema_coefficients(const std::vector<PowerEmaSnapshot>& snapshots, int64_t step,
                                             double gamma) {
  require(!snapshots.empty(), "post-hoc EMA: no snapshots");
  require(step >= 1 && gamma >= 0 && std::isfinite(gamma), "post-hoc EMA: target step {} or gamma {} is invalid", step,
          gamma);
  const auto n = static_cast<int64_t>(snapshots.size());
  torch::Tensor gram = torch::empty({n, n}, torch::kFloat64), rhs = torch::empty({n, 1}, torch::kFloat64);
  auto g = gram.accessor<double, 2>();
  auto r = rhs.accessor<double, 2>();
  const PowerEmaSnapshot target{step, gamma};
  for (int64_t i = 0; i < n; ++i) {
    require(snapshots[i].step >= 1 && snapshots[i].gamma >= 0, "post-hoc EMA: snapshot {} has step {} and gamma {}", i,
            snapshots[i].step, snapshots[i].gamma);
    r[i][0] = power_profile_dot(snapshots[i], target);
    for (int64_t j = 0; j < n; ++j) g[i][j] = power_profile_dot(snapshots[i], snapshots[j]);
  }
  // SVD-based least squares: the Gram matrix of many close snapshots is nearly singular.
  torch::Tensor x = std::get<0>(torch::linalg_lstsq(gram, rhs, c10::nullopt, "gelsd")).reshape({n});
  return std::vector<double>(x.data_ptr<double>(), x.data_ptr<double>() + n);
}

}  // namespace scorediff
