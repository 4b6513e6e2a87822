#include "scorediff/process/ode_solver.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "scorediff/core/error.hpp"

namespace scorediff {
namespace {

// Dormand & Prince (1980), the RK5(4)7FM tableau; the 5th-order row doubles as the 7th stage (FSAL).
constexpr double C[7] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
constexpr double A[7][6] = {
    {0, 0, 0, 0, 0, 0},
    {1.0 / 5, 0, 0, 0, 0, 0},
    {3.0 / 40, 9.0 / 40, 0, 0, 0, 0},
    {44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656, 0},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
// 5th-order weights minus 4th-order weights: the local error estimate.
constexpr double E[7] = {71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40};

double rms(const torch::Tensor& v) { return std::sqrt(v.pow(2).mean().item<double>()); }

}  // namespace

Rk45Result integrate_rk45(const OdeFn& f, torch::Tensor y, double t0, double t1, const Rk45Options& o,
                          const std::function<void(double)>& on_step) {
  require(o.rtol > 0, "rtol must be > 0, got {}", o.rtol);
  require(o.atol > 0, "atol must be > 0, got {}", o.atol);
  require(std::isfinite(t0) && std::isfinite(t1), "integration bounds must be finite");
  Rk45Result r;
  const double direction = t1 >= t0 ? 1.0 : -1.0;
  const double span = std::abs(t1 - t0);
  if (span == 0) {
    r.y = y;
    return r;
  }
  torch::Tensor k1 = f(y, t0);
  ++r.nfe;
  // Initial step (Hairer et al. §II.4, "starting step size").
  torch::Tensor scale = o.atol + o.rtol * y.abs();
  double d0 = rms(y / scale), d1 = rms(k1 / scale);
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  h0 = std::min(h0, span);
  torch::Tensor k_probe = f(y + direction * h0 * k1, t0 + direction * h0);
  ++r.nfe;
  double d2 = rms((k_probe - k1) / scale) / h0;
  double h1 = std::max(d1, d2) <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / std::max(d1, d2), 1.0 / 5);
  double h = std::min({100 * h0, h1, span});

  double t = t0;
  std::vector<torch::Tensor> k(7);
  while (direction * (t1 - t) > 0) {
    require(r.accepted + r.rejected < o.max_steps, "RK45 gave up after {} steps at t = {} (rtol {}, atol {})",
            o.max_steps, t, o.rtol, o.atol);
    const bool last = h >= std::abs(t1 - t) * (1 - 1e-12);
    if (last) h = std::abs(t1 - t);
    const double hs = direction * h;
    k[0] = k1;
    for (int i = 1; i < 7; ++i) {
      torch::Tensor yi = y.clone();
      for (int j = 0; j < i; ++j)
        if (A[i][j] != 0) yi.add_(k[static_cast<size_t>(j)], hs * A[i][j]);
      k[static_cast<size_t>(i)] = f(yi, last && i >= 5 ? t1 : t + C[i] * hs);
      ++r.nfe;
    }
    // The 5th-order solution is row A[6] applied to k[0..5]: stage 7 was evaluated there (FSAL).
    torch::Tensor y_new = y.clone();
    for (int j = 0; j < 6; ++j)
      if (A[6][j] != 0) y_new.add_(k[static_cast<size_t>(j)], hs * A[6][j]);
    torch::Tensor err = torch::zeros_like(y);
    for (int j = 0; j < 7; ++j)
      if (E[j] != 0) err.add_(k[static_cast<size_t>(j)], hs * E[j]);
    torch::Tensor tol = o.atol + o.rtol * torch::maximum(y.abs(), y_new.abs());
    double err_norm = o.per_row ? (err / tol).pow(2).flatten(1).mean(1).max().sqrt().item<double>() : rms(err / tol);
    if (!std::isfinite(err_norm)) err_norm = 1e10;
    if (err_norm <= 1.0) {
      t = last ? t1 : t + hs;
      y = y_new;
      k1 = k[6];
      ++r.accepted;
      if (on_step) on_step(t);
      double factor = err_norm == 0 ? 10.0 : std::min(10.0, std::max(0.2, 0.9 * std::pow(err_norm, -0.2)));
      h *= factor;
    } else {
      ++r.rejected;
      h *= std::max(0.2, 0.9 * std::pow(err_norm, -0.2));
    }
    require(h > span * 1e-14, "RK45 step size underflow at t = {} (rtol {}, atol {})", t, o.rtol, o.atol);
  }
  r.y = y;
  return r;
}

}  // namespace scorediff
