// process: VE / ladder closed forms, inverse, SDE consistency, prior; Tweedie.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/tweedie.hpp"

using namespace scorediff;

TEST(VEProcess, ClosedFormsAndInverse) {
  VEProcess ve(0.01, 50.0);
  torch::Tensor t = torch::linspace(0, 1, 11, torch::kFloat64);
  torch::Tensor expected = 0.01 * torch::pow(torch::full_like(t, 5000.0), t);
  EXPECT_TRUE(torch::allclose(ve.sigma(t), expected, 1e-12));
  EXPECT_TRUE(torch::allclose(ve.std(t), expected, 1e-12));
  EXPECT_TRUE(torch::allclose(ve.mean_coef(t), torch::ones_like(t)));
  EXPECT_TRUE(torch::allclose(ve.t_of_sigma(ve.sigma(t)), t, 1e-12, 1e-12));
  // σ at t_min = 1e-5, score_sde's sampling eps for VE.
  EXPECT_NEAR(ve.sigma_min(), 0.01 * std::pow(5000.0, 1e-5), 1e-15);
  EXPECT_NEAR(ve.sigma_max(), 50.0, 1e-12);
}

TEST(VEProcess, DiffusionSquaredIsTheVarianceRate) {
  // Forward SDE with f = 0: d std²/dt = g².
  VEProcess ve(0.05, 20.0);
  torch::Tensor t = torch::tensor({0.1, 0.4, 0.9}, torch::kFloat64);
  double h = 1e-6;
  torch::Tensor rate = (ve.std(t + h).pow(2) - ve.std(t - h).pow(2)) / (2 * h);
  EXPECT_TRUE(torch::allclose(ve.diffusion(t).pow(2), rate, 1e-6));
  torch::Tensor x = torch::randn({3, 2}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(ve.drift(x, t), torch::zeros_like(x)));
}

TEST(VEProcess, PriorSampleAndLogDensity) {
  VEProcess ve(0.01, 3.0);
  auto gen = make_generator(1);
  torch::Tensor x = ve.prior_sample(100000, 2, gen, torch::kFloat64);
  EXPECT_NEAR(x.std().item<double>(), 3.0, 0.02);
  torch::Tensor p = torch::tensor({{0.0, 0.0}, {3.0, -3.0}}, torch::kFloat64);
  torch::Tensor expected = -std::log(2 * M_PI * 9.0) - p.pow(2).sum(1) / 18.0;
  EXPECT_TRUE(torch::allclose(ve.prior_logp(p), expected, 1e-12));
}

TEST(SigmaLadder, GeometricLevelsLargestFirst) {
  SigmaLadder ladder(0.01, 5.0, 10);
  auto levels = ladder.levels();
  ASSERT_EQ(levels.size(), 10u);
  EXPECT_NEAR(levels.front(), 5.0, 1e-12);
  EXPECT_NEAR(levels.back(), 0.01, 1e-12);
  for (size_t i = 1; i < levels.size(); ++i) EXPECT_NEAR(levels[i - 1] / levels[i], std::pow(500.0, 1.0 / 9), 1e-9);
  for (double s : levels) EXPECT_NEAR(ladder.sigma_at(ladder.t_at_sigma(s)), s, 1e-12);
}

TEST(NoiseProcess, RejectsBadSigmas) {
  EXPECT_THROW(VEProcess(0.0, 1.0), Error);
  EXPECT_THROW(VEProcess(-1.0, 1.0), Error);
  EXPECT_THROW(VEProcess(2.0, 1.0), Error);
  EXPECT_THROW(VEProcess(1.0, 1.0), Error);
  EXPECT_THROW(SigmaLadder(0.1, 1.0, 1), Error);
  ProcessOptions o;
  o.name = "vp-typo";
  EXPECT_THROW(make_process(o), Error);
}

TEST(Tweedie, GaussianPosteriorMeanIsExact) {
  // x₀ ~ N(μ, τ²), x = x₀ + σε: E[x₀|x] = μ + τ²/(τ²+σ²) (x − μ).
  auto mixture = std::make_shared<GaussianMixture>(torch::tensor({1.0}), torch::tensor({{2.0, -1.0}}),
                                                   torch::tensor({{1.5}}));
  auto process = std::make_shared<VEProcess>(0.01, 10.0);
  ScoreFn score = mixture_score_fn(mixture, process);
  torch::Tensor x = torch::tensor({{0.0, 0.0}, {5.0, 3.0}}, torch::kFloat64);
  double sigma = 0.8, tau2 = 2.25;
  torch::Tensor t = torch::full({2}, process->t_at_sigma(sigma), torch::kFloat64);
  torch::Tensor mu = torch::tensor({2.0, -1.0}, torch::kFloat64);
  torch::Tensor expected = mu + tau2 / (tau2 + sigma * sigma) * (x - mu);
  EXPECT_TRUE(torch::allclose(tweedie_denoise(score, *process, x, t), expected, 1e-10, 1e-10));
  // The one-time form: same answer, and nothing recorded for autograd.
  torch::Tensor at_once = tweedie_at(score, *process, x.clone().requires_grad_(true), process->t_at_sigma(sigma));
  EXPECT_FALSE(at_once.requires_grad());
  EXPECT_TRUE(torch::allclose(at_once, expected, 1e-10, 1e-10));
}
