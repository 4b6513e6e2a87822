// Density from the score alone (seed 002): log p(x) − log p(x₀) = ∫₀¹ s(x₀ + τ(x − x₀))·(x − x₀) dτ,
// exact for a conservative field (a true score), by Gauss–Legendre quadrature along straight lines.
#pragma once
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// log p_t(x) − log p_t(x0) for points x [B, D] and one reference point x0 [D], at noise level t (one
// value). nodes: quadrature points per line.
torch::Tensor log_density_ratio(const ScoreFn& score, const torch::Tensor& x, const torch::Tensor& x0, double t,
                                int64_t nodes = 64);

// A normalised density on a regular 2-D grid (x fastest) from the score: line integrals from the grid's
// centre along grid lines, one cell per segment (`nodes` Gauss–Legendre points each), exponentiated and
// divided by their Riemann sum times the cell area.
struct GridDensity {
  torch::Tensor points;       // [nx*ny, 2]
  torch::Tensor log_density;  // [nx*ny], normalised on the grid
  int64_t nx = 0, ny = 0;
  double cell_area = 0;
};
GridDensity grid_density(const ScoreFn& score, double x_lo, double x_hi, double y_lo, double y_hi, int64_t nx,
                         int64_t ny, double t, int64_t nodes = 8);

// The grid alone (log_density empty), and a grid's normalisation of any unnormalised log-density
// (exp(−E)/Z of an energy model, a true density): log_density = log_unnormalised − log(Σ exp · cell).
GridDensity make_grid(double x_lo, double x_hi, double y_lo, double y_hi, int64_t nx, int64_t ny);
void normalise_on_grid(GridDensity& grid, const torch::Tensor& log_unnormalised);
// ½ Σ |p − q| · cell over the grid, for two normalised log-densities on it.
double total_variation(const GridDensity& grid, const torch::Tensor& log_p, const torch::Tensor& log_q);

// Gauss–Legendre nodes and weights on [0, 1].
void gauss_legendre(int64_t n, std::vector<double>& nodes, std::vector<double>& weights);

}  // namespace scorediff
