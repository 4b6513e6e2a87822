// PF-ODE likelihood: the NLL of N(μ, Σ) samples under the exact score equals the closed form (D = 2 and
// D = 16, VP and VE); Hutchinson agrees with the exact divergence within 3 standard errors; bits per
// dimension of the uniform density on [0,1]^D is 8.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/likelihood/ode_likelihood.hpp"
#include "scorediff/models/analytic.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

std::shared_ptr<const AnalyticGaussian> random_gaussian(int64_t d, at::Generator& gen) {
  torch::Tensor a = torch::randn({d, d}, gen, torch::kFloat64) / std::sqrt(static_cast<double>(d));
  torch::Tensor cov = a.matmul(a.t()) * 0.8 + 0.2 * torch::eye(d, torch::kFloat64);
  torch::Tensor mean = torch::randn({d}, gen, torch::kFloat64);
  return std::make_shared<AnalyticGaussian>(mean, cov);
}

std::shared_ptr<const NoiseProcess> make(const std::string& name) {
  ProcessOptions o;
  o.name = name;
  o.sigma_max = 50;
  return make_process(o);
}

}  // namespace

TEST(AnalyticGaussian, ScoreIsTheGradientOfTheLogDensity) {
  auto gen = make_generator(1);
  auto g = random_gaussian(3, gen);
  torch::Tensor x = torch::randn({5, 3}, gen, torch::kFloat64).requires_grad_(true);
  torch::Tensor m = torch::full({5}, 0.7, torch::kFloat64), s = torch::full({5}, 0.4, torch::kFloat64);
  torch::Tensor grad = torch::autograd::grad({g->log_prob(x, m, s).sum()}, {x})[0];
  EXPECT_TRUE(torch::allclose(grad, g->score(x, m, s), 1e-10, 1e-12));
}

TEST(OdeLikelihood, GaussianNllMatchesTheClosedForm) {
  for (std::string process_name : {"vp", "ve"}) {
    for (int64_t d : {2, 16}) {
      auto gen = make_generator(static_cast<uint64_t>(d));
      auto gaussian = random_gaussian(d, gen);
      auto process = make(process_name);
      torch::Tensor x = gaussian->sample(200, gen);
      LikelihoodOptions o;
      LikelihoodResult r = ode_log_likelihood(gaussian_score_fn(gaussian, process), *process, x, o, gen);
      torch::Tensor t0 = torch::full({1}, process->t_min(), torch::kFloat64);
      torch::Tensor exact = gaussian->log_prob(x, process->mean_coef(t0), process->std(t0));
      double per_dim = (r.log_prob - exact).mean().abs().item<double>() / static_cast<double>(d);
      // Point by point the prior N(0, I) (VP) or N(0, σ_max² I) (VE) differs from the true p_T by a
      // term linear in x_T (about 0.01 nats); with the true p_T in its place, what is left is the ODE
      // solution's own error.
      torch::Tensor t1 = torch::full({1}, process->t_max(), torch::kFloat64);
      torch::Tensor solved = gaussian->log_prob(r.endpoint, process->mean_coef(t1), process->std(t1)) + r.divergence;
      double worst = (solved - exact).abs().max().item<double>() / static_cast<double>(d);
      std::printf("%s D=%ld: |mean ΔNLL| %.2e nats/dim; worst point with the true p_T %.2e; NFE %ld\n",
                  process_name.c_str(), static_cast<long>(d), per_dim, worst, static_cast<long>(r.nfe));
      EXPECT_LT(per_dim, 0.01) << process_name << " D=" << d;
      EXPECT_LT(worst, 1e-3) << process_name << " D=" << d;
    }
  }
}

TEST(OdeLikelihood, HutchinsonAgreesWithTheExactDivergence) {
  auto gen = make_generator(5);
  auto gaussian = random_gaussian(16, gen);
  auto process = make("vp");
  torch::Tensor x = gaussian->sample(300, gen);
  ScoreFn score = gaussian_score_fn(gaussian, process);
  LikelihoodOptions exact_o;
  LikelihoodResult exact = ode_log_likelihood(score, *process, x, exact_o, gen);
  for (std::string probe : {"rademacher", "gaussian"}) {
    LikelihoodOptions o;
    o.divergence = "hutchinson";
    o.probe = probe;
    LikelihoodResult h = ode_log_likelihood(score, *process, x, o, gen);
    MeanSe diff = mean_se(h.log_prob - exact.log_prob);
    EXPECT_GT(diff.se, 0) << probe;  // the estimate is random: a zero spread would mean it was not used
    EXPECT_LT(std::abs(diff.mean), 3 * diff.se) << probe;
  }
}

TEST(OdeLikelihood, BitsPerDimension) {
  // The uniform density on [0,1]^D has NLL 0 in u-space: exactly 8 bits per dimension.
  EXPECT_DOUBLE_EQ(bits_per_dim(torch::zeros({1}), 784, 1.0).item<double>(), 8.0);
  // The same density on [−1, 1]^D (scale 2) has NLL D log 2: still 8.
  EXPECT_NEAR(bits_per_dim(torch::full({1}, 10 * std::log(2.0), torch::kFloat64), 10, 2.0).item<double>(), 8.0, 1e-12);
  auto gen = make_generator(2);
  torch::Tensor y = dequantize(torch::tensor({0.0, 255.0, 128.0}), 2.0, -1.0, gen);
  EXPECT_GE(y.min().item<double>(), -1.0);
  EXPECT_LT(y.max().item<double>(), 1.0);
  // Each value stays in its own level's bin: u = (level + uniform) / 256, y = 2u − 1.
  torch::Tensor level = torch::floor((y.to(torch::kFloat64) + 1) / 2 * 256);
  EXPECT_TRUE(torch::equal(level, torch::tensor({0.0, 255.0, 128.0}, torch::kFloat64))) << level;
  EXPECT_THAT_ERROR(dequantize(torch::tensor({0.5}), 1.0, 0.0, gen), "integer levels in [0, 255]");
}

TEST(OdeLikelihood, RejectsBadOptions) {
  auto gen = make_generator(1);
  auto gaussian = random_gaussian(2, gen);
  auto process = make("vp");
  ScoreFn score = gaussian_score_fn(gaussian, process);
  torch::Tensor x = gaussian->sample(4, gen);
  LikelihoodOptions o;
  o.rtol = -1;
  EXPECT_THAT_ERROR(ode_log_likelihood(score, *process, x, o, gen), "rtol must be > 0");
  o = LikelihoodOptions{};
  o.t_start = 1.5;
  EXPECT_THAT_ERROR(ode_log_likelihood(score, *process, x, o, gen), "outside [t_min, t_max]");
  o = LikelihoodOptions{};
  o.divergence = "trace";
  EXPECT_THAT_ERROR(ode_log_likelihood(score, *process, x, o, gen), "valid: exact, hutchinson");
  x[0][0] = std::nan("");
  EXPECT_THAT_ERROR(ode_log_likelihood(score, *process, x, LikelihoodOptions{}, gen), "NaN");
}
