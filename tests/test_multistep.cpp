// The multistep exponential integrators (samplers/multistep.hpp): their weights integrate every polynomial of
// their degree exactly against the exponential kernel (checked against Simpson quadrature), and on a Gaussian,
// whose probability-flow ODE has a closed-form solution, their global error falls at their order as the step
// count doubles.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/samplers/dpm_solver.hpp"
#include "scorediff/samplers/multistep.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

// ∫₀ʰ r e^{r(u−h)} P(u) du by composite Simpson on 20 000 intervals.
double simpson(double h, double rate, const std::vector<double>& coef) {
  auto f = [&](double u) {
    double p = 0;
    for (size_t k = coef.size(); k-- > 0;) p = p * u + coef[k];
    return rate * std::exp(rate * (u - h)) * p;
  };
  const int n = 20000;
  double sum = f(0) + f(h);
  for (int i = 1; i < n; ++i) sum += (i % 2 ? 4 : 2) * f(h * i / n);
  return sum * h / (3 * n);
}

}  // namespace

TEST(Multistep, WeightsIntegratePolynomialsExactly) {
  const std::vector<std::vector<double>> node_sets = {{0}, {0, -0.7}, {0, -0.5, -1.3}, {0, -0.4, -1.1, 1}};
  for (double h : {0.01, 0.3, 1.0, 2.5, 8.0}) {
    for (double rate : {1.0, 2.0}) {
      for (const auto& relative : node_sets) {
        std::vector<double> nodes;
        for (double r : relative) nodes.push_back(r * h);
        const std::vector<double> w = exponential_weights(h, nodes, rate);
        ASSERT_EQ(w.size(), nodes.size());
        // Each monomial u^k of degree < nodes, scaled to h^k so that every term counts.
        for (size_t k = 0; k < nodes.size(); ++k) {
          std::vector<double> coef(k + 1, 0.0);
          coef[k] = std::pow(h, -static_cast<double>(k));
          double quadrature = 0;
          for (size_t j = 0; j < nodes.size(); ++j) quadrature += w[j] * coef[k] * std::pow(nodes[j], static_cast<double>(k));
          const double exact = simpson(h, rate, coef);
          EXPECT_NEAR(quadrature, exact, 1e-9 * std::max(1.0, std::abs(exact)))
              << "h " << h << " rate " << rate << " nodes " << nodes.size() << " degree " << k;
        }
      }
    }
  }
  // One node: the first-order weight 1 − e^{−rh}, to the last bit also for tiny steps.
  EXPECT_DOUBLE_EQ(exponential_weights(1e-9, {0.0})[0], -std::expm1(-1e-9));
  EXPECT_THAT_ERROR(exponential_weights(0.5, {0.0, 0.0}), "two interpolation nodes coincide");
  EXPECT_THAT_ERROR(exponential_weights(-1, {0.0}), "must be positive");
}

namespace {

// max |x − exact| after an ODE solve from σ_max to σ_min of N(μ, diag c²) under EDM, in float64, where the
// probability-flow ODE carries x to μ + √((c² + σ²)/(c² + σ_max²)) (x − μ).
template <class Solve>
double gaussian_error(int64_t steps, Solve solve) {
  auto process = std::make_shared<EDMProcess>(0.002, 80.0);
  auto mean = torch::tensor({0.3, -0.5}, torch::kFloat64);
  auto var = torch::tensor({0.25, 1.0}, torch::kFloat64);
  auto gaussian = std::make_shared<AnalyticGaussian>(mean, torch::diag(var));
  auto gen = make_generator(3);
  torch::Tensor x = 80.0 * torch::randn({64, 2}, gen, torch::kFloat64);
  GridOptions o;
  o.steps = steps;
  o.grid = GridKind::LogSnr;
  o.denoise = false;
  torch::Tensor out = solve(gaussian_score_fn(gaussian, process), *process, x, o).samples;
  torch::Tensor exact = mean + torch::sqrt((var + 0.002 * 0.002) / (var + 80.0 * 80.0)) * (x - mean);
  return (out - exact).abs().max().item<double>();
}

template <class Solve>
double observed_order(const char* name, Solve solve) {
  const double coarse = gaussian_error(16, solve), fine = gaussian_error(32, solve);
  const double order = std::log2(coarse / fine);
  std::printf("%-16s error at 16 steps %.3e, at 32 steps %.3e: order %.2f\n", name, coarse, fine, order);
  return order;
}

}  // namespace

TEST(Multistep, GlobalErrorFallsAtEachSolversOrder) {
  auto dpm2 = [](const ScoreFn& s, const NoiseProcess& p, torch::Tensor x, const GridOptions& o) {
    return sample_dpm_solver(s, p, x, o);
  };
  auto dpm3 = [](const ScoreFn& s, const NoiseProcess& p, torch::Tensor x, const GridOptions& o) {
    return sample_dpm_solver_3m(s, p, x, o);
  };
  auto unipc = [](int64_t order) {
    return [order](const ScoreFn& s, const NoiseProcess& p, torch::Tensor x, const GridOptions& o) {
      return sample_unipc(s, p, x, o, order);
    };
  };
  EXPECT_GT(observed_order("dpm-solver++ 2M", dpm2), 1.7);
  EXPECT_GT(observed_order("dpm-solver++ 3M", dpm3), 2.6);
  EXPECT_GT(observed_order("unipc order 1", unipc(1)), 1.7);  // the corrector lifts each order by one
  EXPECT_GT(observed_order("unipc order 2", unipc(2)), 2.6);
  EXPECT_GT(observed_order("unipc order 3", unipc(3)), 3.4);
}
