// models/energy and likelihood/line_integral: an energy model's score is −∇ₓU of its energy, and the
// line integral of a score recovers the density.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/likelihood/line_integral.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/score_model.hpp"

using namespace scorediff;

TEST(EnergyModel, ScoreIsMinusTheGradientOfItsEnergy) {
  for (const std::string param : {"score", "eps", "raw"}) {
    ModelOptions o;
    o.name = "energy-mlp";
    o.param = param;
    o.width = 32;
    o.depth = 2;
    o.sigma_data = 2.0;
    auto gen = make_generator(1);
    ScoreModel model = make_model(o, 2, gen);
    model->to(torch::kFloat64);
    torch::Tensor x = torch::randn({7, 2}, gen, torch::kFloat64).requires_grad_(true);
    torch::Tensor m = torch::full({7}, 0.8, torch::kFloat64), s = torch::full({7}, 0.5, torch::kFloat64);
    torch::Tensor energy = model->energy(x, m, s);
    torch::Tensor expected = -torch::autograd::grad({energy.sum()}, {x})[0];
    torch::Tensor score = model->score(x.detach(), m, s);
    EXPECT_TRUE(torch::allclose(score, expected, 1e-10, 1e-10)) << param;
  }
}

TEST(EnergyModel, WorksInsideInferenceModeAndStaysDifferentiableForTraining) {
  ModelOptions o;
  o.name = "energy-mlp";
  o.sigma_data = 1.0;
  auto gen = make_generator(2);
  ScoreModel model = make_model(o, 2, gen);
  torch::Tensor x = torch::randn({5, 2}, gen), m = torch::ones({5}), s = torch::full({5}, 0.3);
  torch::Tensor reference = model->score(x, m, s).detach();
  {
    torch::InferenceMode guard;  // what samplers do
    torch::Tensor inside = model->score(torch::randn({5, 2}) * 0 + x, m, s);
    EXPECT_TRUE(torch::allclose(inside, reference, 1e-6, 1e-6));
  }
  // A loss on the score back-propagates to the energy's parameters (create_graph).
  model->zero_grad();
  model->score(x, m, s).pow(2).sum().backward();
  double total = 0;
  for (const auto& p : model->parameters()) total += p.grad().defined() ? p.grad().abs().sum().item<double>() : 0;
  EXPECT_GT(total, 0.0);
}

TEST(EnergyModel, RejectsANonSmoothActivation) {
  ModelOptions o;
  o.name = "energy-mlp";
  o.activation = "relu";
  o.sigma_data = 1.0;
  auto gen = make_generator(3);
  EXPECT_THROW(make_model(o, 2, gen), Error);
  ModelOptions plain;
  plain.sigma_data = 1.0;
  ScoreModel mlp = make_model(plain, 2, gen);
  EXPECT_THROW(mlp->energy(torch::zeros({1, 2}), torch::ones({1}), torch::ones({1})), Error);
}

TEST(LineIntegral, GaussLegendreIntegratesPolynomialsExactly) {
  std::vector<double> nodes, weights;
  gauss_legendre(5, nodes, weights);
  double integral = 0;
  for (size_t i = 0; i < nodes.size(); ++i) integral += weights[i] * std::pow(nodes[i], 9);  // degree 2n−1
  EXPECT_NEAR(integral, 0.1, 1e-14);
}

TEST(LineIntegral, AnalyticMixtureScoreRecoversTheDensity) {
  // Seed 000's mixture at σ = 0.5: the grid density from the score alone against the true density
  // normalised on the same grid; total variation < 0.01.
  auto mixture = std::make_shared<GaussianMixture>(torch::tensor({0.2, 0.8}), torch::tensor({{5.0, 5.0}, {-5.0, -5.0}}),
                                                   torch::tensor({1.0}));
  auto process = std::make_shared<SigmaLadder>(0.1, 20.0, 10);
  const double sigma = 0.5;
  ScoreFn score = mixture_score_fn(mixture, process);
  GridDensity g = grid_density(score, -9, 9, -9, 9, 90, 90, process->t_at_sigma(sigma));
  torch::Tensor truth = mixture->log_prob(g.points, torch::ones({1}, torch::kFloat64), torch::full({1}, sigma, torch::kFloat64));
  truth = truth - (torch::logsumexp(truth, 0) + std::log(g.cell_area));
  double tv = 0.5 * (torch::exp(g.log_density) - torch::exp(truth)).abs().sum().item<double>() * g.cell_area;
  EXPECT_LT(tv, 0.01);
  double mass_small_mode = (torch::exp(g.log_density) * (g.points.sum(1) > 0)).sum().item<double>() * g.cell_area;
  EXPECT_NEAR(mass_small_mode, 0.2, 0.01);
}
