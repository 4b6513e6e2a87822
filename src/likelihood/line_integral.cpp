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

GridDensity make_grid(double x_lo, double x_hi, double y_lo, double y_hi, int64_t nx, int64_t ny) {
  require(nx >= 2 && ny >= 2 && x_hi > x_lo && y_hi > y_lo, "density grid needs at least 2x2 points over a non-empty box");
  GridDensity g;
  g.nx = nx;
  g.ny = ny;
  torch::Tensor xs = torch::linspace(x_lo, x_hi, nx, torch::kFloat64), ys = torch::linspace(y_lo, y_hi, ny, torch::kFloat64);
  g.points = torch::stack({xs.unsqueeze(0).expand({ny, nx}).reshape({-1}), ys.unsqueeze(1).expand({ny, nx}).reshape({-1})}, 1);
  g.cell_area = (x_hi - x_lo) / (nx - 1) * (y_hi - y_lo) / (ny - 1);
  return g;
}

void normalise_on_grid(GridDensity& g, const torch::Tensor& log_unnormalised) {
  torch::Tensor l = log_unnormalised.to(torch::kCPU, torch::kFloat64);
  g.log_density = l - (torch::logsumexp(l, 0) + std::log(g.cell_area));
}

double total_variation(const GridDensity& g, const torch::Tensor& log_p, const torch::Tensor& log_q) {
  return 0.5 * (torch::exp(log_p) - torch::exp(log_q)).abs().sum().item<double>() * g.cell_area;
}

namespace {

// ∫ s·dx over each segment a_i → b_i [S, 2] by Gauss–Legendre, in chunks of points. [S]
torch::Tensor segment_integrals(const ScoreFn& score, const torch::Tensor& a, const torch::Tensor& b, double t,
                                const std::vector<double>& tau, const std::vector<double>& w) {
  torch::NoGradGuard no_grad;
  torch::Tensor d = b - a;
  torch::Tensor total = torch::zeros({a.size(0)}, a.options());
  for (size_t k = 0; k < tau.size(); ++k) {
    torch::Tensor x = a + tau[k] * d;
    torch::Tensor s = score(x, torch::full({x.size(0)}, t, x.options()));
    total = total + w[k] * (s * d).sum(1);
  }
  return total;
}

}  // namespace

GridDensity grid_density(const ScoreFn& score, double x_lo, double x_hi, double y_lo, double y_hi, int64_t nx,
                         int64_t ny, double t, int64_t nodes) {
  // Paths along grid lines, one cell at a time: along the centre row, then up and down every column.
  // Each step is short, so the quadrature stays accurate where the density has thin ridges.
  GridDensity g = make_grid(x_lo, x_hi, y_lo, y_hi, nx, ny);
  std::vector<double> tau, w;
  gauss_legendre(nodes, tau, w);
  torch::Tensor grid = g.points.view({ny, nx, 2});
  const int64_t r0 = ny / 2, c0 = nx / 2;
  // Row r0: steps c → c+1.
  torch::Tensor row = grid[r0];
  torch::Tensor steps = segment_integrals(score, row.narrow(0, 0, nx - 1), row.narrow(0, 1, nx - 1), t, tau, w);
  torch::Tensor row_log = torch::zeros({nx}, torch::kFloat64);
  row_log.narrow(0, 1, nx - 1).copy_(torch::cumsum(steps, 0));
  row_log = row_log - row_log[c0];
  // Every column: steps r → r+1, then cumulative from row r0.
  torch::Tensor lower = grid.narrow(0, 0, ny - 1).reshape({-1, 2}), upper = grid.narrow(0, 1, ny - 1).reshape({-1, 2});
  torch::Tensor col_steps = segment_integrals(score, lower, upper, t, tau, w).view({ny - 1, nx});
  torch::Tensor col_log = torch::zeros({ny, nx}, torch::kFloat64);
  col_log.narrow(0, 1, ny - 1).copy_(torch::cumsum(col_steps, 0));
  col_log = col_log - col_log[r0].unsqueeze(0);
  normalise_on_grid(g, (col_log + row_log.unsqueeze(0)).reshape({-1}));
  return g;
}

}  // namespace scorediff
