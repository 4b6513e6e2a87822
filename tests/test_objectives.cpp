// objectives: the DSM target and loss against closed forms; DSM = ESM + constant.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/objectives/objective.hpp"

using namespace scorediff;

TEST(Dsm, TargetIsTheConditionalScore) {
  // ∇ log N(x̃; x, σ²I) = −(x̃ − x)/σ², checked by autograd of the Gaussian log-density.
  torch::Tensor x0 = torch::randn({4, 3}, torch::kFloat64);
  torch::Tensor noisy = (x0 + 0.7 * torch::randn({4, 3}, torch::kFloat64)).requires_grad_(true);
  torch::Tensor sigma = torch::tensor({0.1, 0.5, 1.0, 2.0}, torch::kFloat64);
  torch::Tensor logq = (-(noisy - x0).pow(2).sum(1) / (2 * sigma * sigma)).sum();
  torch::Tensor autograd = torch::autograd::grad({logq}, {noisy})[0];
  EXPECT_TRUE(torch::allclose(dsm_target(noisy.detach(), x0, sigma), autograd, 1e-12, 1e-12));
}

TEST(Dsm, SigmaSquaredWeightingIsTheEpsilonPredictionLoss) {
  // With a score s, σ² · ½‖s + ε/σ‖² equals ½‖σ s + ε‖² exactly; uniform weighting is ½‖s + ε/σ‖².
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  torch::Tensor captured_x;
  ScoreFn score = [&](const torch::Tensor& x, const torch::Tensor&) {
    captured_x = x;
    return torch::sin(x);
  };
  torch::Tensor x0 = torch::randn({256, 2}, torch::kFloat64);
  for (const std::string weighting : {"sigma2", "uniform"}) {
    ObjectiveOptions o;
    o.weighting = weighting;
    o.sigma_sampling = "ladder";
    Objective dsm = make_objective(o);
    auto gen = make_generator(3), replay = make_generator(3);
    LossTerms terms = dsm(score, *process, x0, gen);
    // Replay the draws: level indices, then ε.
    torch::Tensor level = torch::randint(0, 10, {256}, replay, torch::kInt64);
    torch::Tensor eps = torch::randn({256, 2}, replay, torch::kFloat64);
    torch::Tensor sigma = torch::tensor(process->levels(), torch::kFloat64).index_select(0, level).unsqueeze(1);
    EXPECT_TRUE(torch::equal(terms.level, level));
    EXPECT_TRUE(torch::allclose(captured_x, x0 + sigma * eps, 1e-12, 1e-12));
    torch::Tensor s = torch::sin(x0 + sigma * eps);
    torch::Tensor expected = weighting == "sigma2" ? 0.5 * (sigma * s + eps).pow(2).sum(1)
                                                   : 0.5 * (s + eps / sigma).pow(2).sum(1);
    EXPECT_TRUE(torch::allclose(terms.loss, expected, 1e-10, 1e-12)) << weighting;
  }
}

TEST(Dsm, DiffersFromExplicitScoreMatchingByAConstant) {
  // Vincent (2011), seed 001 §3.1: E[DSM(s)] = E_{p_σ}[½‖s − ∇log p_σ‖²] + C_σ for every s, so the
  // difference DSM − ESM is the same for two different score functions (checked by Monte Carlo).
  auto mixture = std::make_shared<GaussianMixture>(torch::tensor({0.3, 0.7}), torch::tensor({{-2.0, 0.0}, {2.0, 1.0}}),
                                                   torch::tensor({0.6}));
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn exact = mixture_score_fn(mixture, process);
  std::vector<ScoreFn> candidates = {[](const torch::Tensor& x, const torch::Tensor&) { return -x; },
                                     [](const torch::Tensor& x, const torch::Tensor&) { return torch::tanh(x) - 0.5 * x; }};
  ObjectiveOptions o;
  o.sigma_sampling = "single";
  o.sigma = 0.5;
  o.weighting = "uniform";
  Objective dsm = make_objective(o);
  std::vector<double> gaps;
  for (const auto& s : candidates) {
    auto gen = make_generator(11);
    torch::Tensor x0 = mixture->sample(400000, gen).to(torch::kFloat64);
    LossTerms terms = dsm(s, *process, x0, gen);
    // ESM on the same noisy points (replayed): x̃ = x₀ + σε.
    auto replay = make_generator(11);
    mixture->sample(400000, replay);
    torch::Tensor noisy = x0 + 0.5 * torch::randn({400000, 2}, replay, torch::kFloat64);
    torch::Tensor t = torch::full({400000}, process->t_at_sigma(0.5), torch::kFloat64);
    double esm = 0.5 * (s(noisy, t) - exact(noisy, t)).pow(2).sum(1).mean().item<double>();
    gaps.push_back(terms.loss.mean().item<double>() - esm);
  }
  // C_σ = E‖ε/σ‖²/2 − E‖∇log p_σ‖²/2 > 0; the two gaps agree to Monte-Carlo error.
  EXPECT_NEAR(gaps[0], gaps[1], 0.02);
  EXPECT_GT(gaps[0], 0.0);
}

TEST(Dsm, LogUniformSigmasCoverTheRangeAndBins) {
  SigmaLadder process(0.01, 5.0, 10);
  ObjectiveOptions o;
  auto gen = make_generator(5);
  torch::Tensor sigma, level;
  sample_sigmas(o, process, 100000, gen, sigma, level);
  EXPECT_GE(sigma.min().item<double>(), 0.01);
  EXPECT_LE(sigma.max().item<double>(), 5.0);
  // log σ uniform: mean of log σ is the midpoint; bin 0 holds the largest σ.
  EXPECT_NEAR(torch::log(sigma).mean().item<double>(), 0.5 * (std::log(0.01) + std::log(5.0)), 0.02);
  torch::Tensor counts = torch::bincount(level, {}, 10).to(torch::kFloat64) / 100000.0;
  EXPECT_TRUE(torch::allclose(counts, torch::full({10}, 0.1, torch::kFloat64), 0, 0.01));
  EXPECT_GT(sigma.index({level == 0}).min().item<double>(), sigma.index({level == 9}).max().item<double>());
}

TEST(Dsm, LadderSamplingNeedsALadder) {
  VEProcess ve(0.01, 5.0);
  ObjectiveOptions o;
  o.sigma_sampling = "ladder";
  EXPECT_THROW(validate(o, ve), Error);
}

TEST(ContinuousDsm, ImportanceSamplingKeepsTheLikelihoodWeightedLoss) {
  // E_{t~U}[g² L(t)] = E_{t~p}[g² L(t) / (p(t)(T − t₀))] for any fixed score: both estimates of the
  // likelihood-weighted DSM loss of the exact 2-mode score under VP agree within 3 standard errors, and
  // the importance-sampled one has the smaller spread (Song et al. 2021b).
  VPProcess vp(0.1, 20.0, 1e-3);
  auto shared = std::make_shared<VPProcess>(vp);
  auto mixture = std::make_shared<GaussianMixture>(torch::tensor({0.5, 0.5}), torch::tensor({{1.0, 1.0}, {-1.0, -1.0}}),
                                                   torch::tensor({0.3}));
  // A deliberately imperfect score (0.9 × the exact one), so the loss is not at its floor.
  ScoreFn exact = mixture_score_fn(mixture, shared);
  ScoreFn score = [exact](const torch::Tensor& x, const torch::Tensor& t) { return 0.9 * exact(x, t); };
  auto gen = make_generator(4);
  torch::Tensor x0 = mixture->sample(200000, gen).to(torch::kFloat64);
  ObjectiveOptions o;
  o.weighting = "likelihood";
  o.sigma_sampling = "time";
  torch::Tensor uniform = make_objective(o)(score, vp, x0, gen).loss;
  o.sigma_sampling = "importance";
  torch::Tensor importance = make_objective(o)(score, vp, x0, gen).loss;
  double mu = uniform.mean().item<double>(), mi = importance.mean().item<double>();
  double se = std::sqrt(uniform.var().item<double>() / 200000 + importance.var().item<double>() / 200000);
  EXPECT_LT(std::abs(mu - mi), 3 * se) << mu << " vs " << mi;
  EXPECT_LT(importance.std().item<double>(), uniform.std().item<double>());
}

TEST(ContinuousDsm, TimeAndLogNormalSampling) {
  VPProcess vp(0.1, 20.0, 1e-3);
  ObjectiveOptions o;
  o.sigma_sampling = "time";
  auto gen = make_generator(6);
  torch::Tensor sigma, level;
  sample_sigmas(o, vp, 100000, gen, sigma, level);
  torch::Tensor t = vp.t_of_sigma(sigma);
  EXPECT_GE(t.min().item<double>(), 1e-3 - 1e-9);
  EXPECT_NEAR(t.mean().item<double>(), 0.5 * (1 + 1e-3), 0.005);
  o.sigma_sampling = "log-normal";
  EDMProcess edm(0.002, 80.0);
  sample_sigmas(o, edm, 100000, gen, sigma, level);
  EXPECT_NEAR(torch::log(sigma).mean().item<double>(), -1.2, 0.02);
  EXPECT_NEAR(torch::log(sigma).std().item<double>(), 1.2, 0.02);
}
