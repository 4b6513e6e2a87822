#include "scorediff/likelihood/line_integral.hpp"

#include <torch/torch.h>

#include <cmath>

#include "scorediff/core/error.hpp"

namespace scorediff {

void gauss_legendre(int64_t n, std::vector<double>& nodes, std::vector<double>& weights) {
  require(n >= 1, "quadrature needs at least one node");
  nodes.assign(static_cast<size_t>(n), 0.0);
  weights.assign(static_cast<size_t>(n), 0.0);
  // Newton's method on P_n from Chebyshev starting points (Numerical Recipes' gauleg, on [−1, 1]).
  for (int64_t i = 0; i < (n + 1) / 2; ++i) {
    double z = std::cos(M_PI * (i + 0.75) / (n + 0.5)), derivative = 0;
    for (int iter = 0; iter < 100; ++iter) {
      double p1 = 1, p2 = 0;
      for (int64_t j = 1; j <= n; ++j) {
        double p3 = p2;
        p2 = p1;
        p1 = ((2.0 * j - 1) * z * p2 - (j - 1.0) * p3) / j;
      }
      derivative = n * (z * p1 - p2) / (z * z - 1);
      double step = p1 / derivative;
      z -= step;
      if (std::abs(step) < 1e-15) break;
    }
    double w = 2 / ((1 - z * z) * derivative * derivative);
    // Map [−1, 1] to [0, 1].
    nodes[static_cast<size_t>(i)] = 0.5 * (1 - z);
    nodes[static_cast<size_t>(n - 1 - i)] = 0.5 * (1 + z);
    weights[static_cast<size_t>(i)] = weights[static_cast<size_t>(n - 1 - i)] = 0.5 * w;
  }
}

torch::Tensor log_density_ratio(const ScoreFn& score, const torch::Tensor& x, const torch::Tensor& x0, double t,
                                int64_t nodes) {
  std::vector<double> tau, w;
  gauss_legendre(nodes, tau, w);
  torch::NoGradGuard no_grad;
  torch::Tensor direction = x - x0.unsqueeze(0);  // [B, D]
  torch::Tensor times = torch::full({x.size(0)}, t, x.options());
  torch::Tensor total = torch::zeros({x.size(0)}, x.options());
  for (size_t k = 0; k < tau.size(); ++k) {
    torch::Tensor s = score(x0.unsqueeze(0) + tau[k] * direction, times);
    total = total + w[k] * (s * direction).sum(1);
  }
  return total;
}

GridDensity grid_density(const ScoreFn& score, double x_lo, double x_hi, double y_lo, double y_hi, int64_t nx,
                         int64_t ny, double t, int64_t nodes) {
  require(nx >= 2 && ny >= 2 && x_hi > x_lo && y_hi > y_lo, "density grid needs at least 2x2 points over a non-empty box");
  GridDensity g;
  g.nx = nx;
  g.ny = ny;
  torch::Tensor xs = torch::linspace(x_lo, x_hi, nx, torch::kFloat64), ys = torch::linspace(y_lo, y_hi, ny, torch::kFloat64);
  g.points = torch::stack({xs.unsqueeze(0).expand({ny, nx}).reshape({-1}), ys.unsqueeze(1).expand({ny, nx}).reshape({-1})}, 1);
  g.cell_area = (x_hi - x_lo) / (nx - 1) * (y_hi - y_lo) / (ny - 1);
  torch::Tensor centre = torch::tensor({0.5 * (x_lo + x_hi), 0.5 * (y_lo + y_hi)}, torch::kFloat64);
  torch::Tensor log_ratio = log_density_ratio(score, g.points, centre, t, nodes);
  g.log_density = log_ratio - (torch::logsumexp(log_ratio, 0) + std::log(g.cell_area));
  return g;
}

}  // namespace scorediff
