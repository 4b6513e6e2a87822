// samplers: Langevin reaches a known Gaussian; annealed Langevin recovers mixture weights with the
// exact score; NFE and snapshots are counted right.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/metrics/metrics.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/samplers/langevin.hpp"

using namespace scorediff;

TEST(Langevin, StationaryDistributionIsTheTarget) {
  // Score of N(μ, τ²I): −(x − μ)/τ². The discretised chain's stationary variance is
  // τ² / (1 − η/(2τ²)) (an AR(1) with coefficient 1 − η/τ² and noise 2η).
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  torch::Tensor mu = torch::tensor({1.0, -2.0}, torch::kFloat64);
  const double tau2 = 0.5;
  ScoreFn score = [&](const torch::Tensor& x, const torch::Tensor&) { return -(x - mu) / tau2; };
  LangevinOptions o;
  o.step_size = 0.05;
  o.steps = 400;
  auto gen = make_generator(1);
  torch::Tensor x = 5 * torch::randn({20000, 2}, gen, torch::kFloat64);
  SampleResult r = sample_langevin(score, *process, x, o, gen);
  EXPECT_EQ(r.nfe, 400);
  double expected_var = tau2 / (1 - o.step_size / (2 * tau2));
  EXPECT_TRUE(torch::allclose(r.samples.mean(0), mu, 0, 0.02));
  EXPECT_NEAR(r.samples.var(0).mean().item<double>(), expected_var, 0.02);
}

TEST(AnnealedLangevin, RecoversMixtureWeightsWithTheExactScore) {
  // Seed 000's mixture and NCSN's set-up: chains uniform in [−8, 8]².
  auto mixture = std::make_shared<GaussianMixture>(torch::tensor({0.2, 0.8}), torch::tensor({{5.0, 5.0}, {-5.0, -5.0}}),
                                                   torch::tensor({1.0}));
  // The mog2 preset's schedule: 20 levels from 20 to 0.1, 100 steps each, ε = 1e-3.
  auto process = std::make_shared<SigmaLadder>(0.1, 20.0, 20);
  ScoreFn score = mixture_score_fn(mixture, process);
  auto gen = make_generator(2);
  torch::Tensor x = -8 + 16 * torch::rand({2000, 2}, gen, torch::kFloat64);
  AnnealedLangevinOptions o;
  o.eps = 1e-3;
  o.steps_per_level = 100;
  o.snapshots = true;
  SampleResult r = sample_annealed_langevin(score, *process, x.clone(), o, gen);
  EXPECT_EQ(r.nfe, 20 * 100 + 1);
  EXPECT_EQ(r.trajectory.size(), 20u);
  EXPECT_NEAR(r.trajectory_sigma.front(), 20.0, 1e-9);
  auto w = mode_weights(r.samples, mixture->means());
  EXPECT_NEAR(w[0], 0.2, 0.03);
  EXPECT_EQ(count_non_finite(r.samples), 0);
  // Plain Langevin with the same budget keeps the starting split (≈ 0.5): the seed's failure.
  LangevinOptions plain;
  plain.step_size = 0.01;
  plain.steps = 2000;
  SampleResult stuck = sample_langevin(score, *process, x.clone(), plain, gen);
  EXPECT_GT(std::abs(mode_weights(stuck.samples, mixture->means())[0] - 0.2), 0.2);
}

TEST(AnnealedLangevin, StepSizesFollowTheSchedule) {
  // With a zero score the chain is a random walk: its variance grows by 2η_l per step, η_l = ε σ_l²/σ_L².
  auto process = std::make_shared<SigmaLadder>(0.5, 2.0, 3);
  ScoreFn zero = [](const torch::Tensor& x, const torch::Tensor&) { return torch::zeros_like(x); };
  AnnealedLangevinOptions o;
  o.eps = 0.01;
  o.steps_per_level = 50;
  o.denoise = false;
  auto gen = make_generator(3);
  SampleResult r = sample_annealed_langevin(zero, *process, torch::zeros({50000, 1}, torch::kFloat64), o, gen);
  double expected = 0;
  for (double s : process->levels()) expected += 2 * 50 * 0.01 * s * s / 0.25;
  EXPECT_NEAR(r.samples.var().item<double>() / expected, 1.0, 0.02);
  EXPECT_EQ(r.nfe, 150);
}

TEST(Samplers, RejectBadOptions) {
  auto process = std::make_shared<SigmaLadder>(0.5, 2.0, 3);
  ScoreFn zero = [](const torch::Tensor& x, const torch::Tensor&) { return torch::zeros_like(x); };
  auto gen = make_generator(3);
  LangevinOptions l;
  l.steps = -1;
  EXPECT_THROW(sample_langevin(zero, *process, torch::zeros({2, 2}), l, gen), Error);
  AnnealedLangevinOptions a;
  a.eps = 0;
  EXPECT_THROW(sample_annealed_langevin(zero, *process, torch::zeros({2, 2}), a, gen), Error);
  VEProcess ve(0.1, 1.0);
  EXPECT_THROW(sample_annealed_langevin(zero, ve, torch::zeros({2, 2}), AnnealedLangevinOptions{}, gen), Error);
}

TEST(Samplers, GeometricSigmas) {
  auto s = geometric_sigmas(10.0, 0.1, 3);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_NEAR(s[1], 1.0, 1e-12);
}
