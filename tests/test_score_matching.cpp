// objectives (score-matching family): the identities that make each objective correct, checked
// against closed forms, autograd and Monte Carlo.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/objectives/sure.hpp"
#include "scorediff/process/divergence.hpp"
#include "scorediff/process/tweedie.hpp"

using namespace scorediff;

namespace {

std::shared_ptr<GaussianMixture> sm_two_modes() {
  return std::make_shared<GaussianMixture>(torch::tensor({0.3, 0.7}), torch::tensor({{-1.5, 0.0}, {1.5, 1.0}}),
                                           torch::tensor({{0.6, 0.8}, {0.5, 0.4}}));
}

// A small random network as a score, in float64 (two seeds give two different "θ").
ScoreFn random_network(uint64_t seed, std::shared_ptr<const NoiseProcess> process) {
  ModelOptions o;
  o.width = 32;
  o.depth = 2;
  o.sigma_data = 1.0;
  auto gen = make_generator(seed);
  ScoreModel model = make_model(o, 2, gen);
  model->to(torch::kFloat64);
  return model_score_fn(model, process);
}

ObjectiveOptions single(const std::string& name, double sigma) {
  ObjectiveOptions o;
  o.name = name;
  o.sigma_sampling = "single";
  o.sigma = sigma;
  o.weighting = "uniform";
  return o;
}

// Per-sample losses of objective `o` for score `s` on a fixed batch and fixed draws (seed).
torch::Tensor losses(const ObjectiveOptions& o, const ScoreFn& s, const NoiseProcess& p, const torch::Tensor& x0,
                     uint64_t seed, const ScoreFn* reference = nullptr) {
  auto gen = make_generator(seed);
  torch::NoGradGuard evaluation_only;
  return make_objective(o, reference)(s, p, x0, gen).loss;
}

}  // namespace

TEST(ScoreMatching, IsmAndEsmDifferByAConstantIndependentOfTheNetwork) {
  // ESM − ISM = ½ E‖∇log p_σ‖² for every s (integration by parts), checked on two networks.
  auto mixture = sm_two_modes();
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn truth = mixture_score_fn(mixture, process);
  auto gen = make_generator(1);
  torch::Tensor x0 = mixture->sample(100000, gen).to(torch::kFloat64);
  std::vector<double> gaps;
  for (uint64_t seed : {11, 12}) {
    ScoreFn s = random_network(seed, process);
    double esm = losses(single("esm", 0.3), s, *process, x0, 5, &truth).mean().item<double>();
    double ism = losses(single("ism", 0.3), s, *process, x0, 5).mean().item<double>();
    gaps.push_back(esm - ism);
  }
  // The constant itself, from the same noised points.
  auto replay = make_generator(5);
  torch::Tensor noisy = x0 + 0.3 * torch::randn(x0.sizes(), replay, x0.options());
  torch::Tensor t = torch::full({x0.size(0)}, process->t_at_sigma(0.3), torch::kFloat64);
  double constant = 0.5 * truth(noisy, t).pow(2).sum(1).mean().item<double>();
  EXPECT_NEAR(gaps[0], gaps[1], 0.03 * constant);
  EXPECT_NEAR(gaps[0], constant, 0.03 * constant);
}

TEST(ScoreMatching, SlicedConvergesToImplicitAndVarianceReducedAgrees) {
  auto mixture = sm_two_modes();
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn s = random_network(3, process);
  auto gen = make_generator(2);
  torch::Tensor x0 = mixture->sample(64, gen).to(torch::kFloat64);
  torch::Tensor ism = losses(single("ism", 0.3), s, *process, x0, 9);
  for (const std::string projection : {"gaussian", "rademacher"}) {
    ObjectiveOptions o = single("ssm", 0.3);
    o.projection = projection;
    o.projections = 4000;
    torch::Tensor ssm = losses(o, s, *process, x0, 9);
    o.name = "ssm-vr";
    torch::Tensor ssm_vr = losses(o, s, *process, x0, 9);
    double scale = ism.abs().mean().item<double>();
    EXPECT_LT((ssm - ism).abs().mean().item<double>(), 0.05 * scale) << projection;
    EXPECT_LT((ssm_vr - ism).abs().mean().item<double>(), 0.05 * scale) << projection;
    // SSM-VR replaces ½(vᵀs)² by its expectation: equal in expectation, never noisier.
    o.projections = 1;
    o.name = "ssm";
    torch::Tensor one_ssm = losses(o, s, *process, x0, 9);
    o.name = "ssm-vr";
    torch::Tensor one_vr = losses(o, s, *process, x0, 9);
    EXPECT_LE((one_vr - ism).pow(2).mean().item<double>(), (one_ssm - ism).pow(2).mean().item<double>()) << projection;
  }
}

TEST(ScoreMatching, SlicedTermsAreUnbiasedForEachSample) {
  // E_v[vᵀJv] = tr J and E_v[(vᵀs)²] = ‖s‖² for E[vvᵀ] = I: check the estimator's projections directly.
  auto gen = make_generator(4);
  torch::Tensor x = torch::randn({5, 3}, gen, torch::kFloat64).requires_grad_(true);
  torch::Tensor A = torch::randn({3, 3}, gen, torch::kFloat64);
  torch::Tensor s = torch::tanh(x.matmul(A));
  torch::Tensor exact = jacobian_trace(s, x, false);
  torch::Tensor sum = torch::zeros({5}, torch::kFloat64);
  const int n = 20000;
  for (int i = 0; i < n; ++i)
    sum += projected_jacobian(s, x, projection_vectors("rademacher", {5, 3}, gen, x.options()), false);
  EXPECT_TRUE(torch::allclose(sum / n, exact, 0, 0.02)) << (sum / n - exact).abs().max().item<double>();
  // The reference itself against the closed form: s = tanh(xA) has ∂s_j/∂x_i = A_ij (1 − s_j²), so
  // tr J = Σ_i A_ii (1 − s_i²).
  torch::Tensor closed = (A.diagonal().unsqueeze(0) * (1 - s.detach().pow(2))).sum(1);
  EXPECT_TRUE(torch::allclose(exact, closed, 1e-12, 1e-12)) << (exact - closed).abs().max().item<double>();
  torch::Tensor J = jacobian(s, x, false);
  EXPECT_TRUE(torch::allclose(J.diagonal(0, 1, 2).sum(1), closed, 1e-12, 1e-12));
}

TEST(ScoreMatching, SureIsUnbiasedForTheDenoisingError) {
  // E[SURE(D; x̃)] = E‖D(x̃) − x‖² for D = x̃ + σ² s with any differentiable s (here a network).
  auto mixture = sm_two_modes();
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn s = random_network(6, process);
  auto gen = make_generator(7);
  const int64_t n = 200000;
  const double sigma = 0.4;
  torch::Tensor x = mixture->sample(n, gen).to(torch::kFloat64);
  torch::Tensor noisy = (x + sigma * torch::randn(x.sizes(), gen, x.options())).requires_grad_(true);
  torch::Tensor t = torch::full({n}, process->t_at_sigma(sigma), torch::kFloat64);
  torch::Tensor score = s(noisy, t);
  torch::Tensor denoised = noisy + sigma * sigma * score;
  torch::Tensor divergence = 2 + sigma * sigma * jacobian_trace(score, noisy, false);
  torch::Tensor sure = sure_value(denoised.detach(), noisy.detach(), divergence.detach(), torch::full({n}, sigma, torch::kFloat64));
  torch::Tensor error = (denoised.detach() - x).pow(2).sum(1);
  torch::Tensor difference = sure - error;
  double standard_error = difference.std().item<double>() / std::sqrt(static_cast<double>(n));
  EXPECT_LT(std::abs(difference.mean().item<double>()), 3 * standard_error)
      << "SURE " << sure.mean().item<double>() << " vs " << error.mean().item<double>();
  EXPECT_GT(error.mean().item<double>(), 0.01);
}

TEST(ScoreMatching, SureLossIsIsmPlusAConstant) {
  auto mixture = sm_two_modes();
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn s = random_network(8, process);
  auto gen = make_generator(3);
  torch::Tensor x0 = mixture->sample(256, gen).to(torch::kFloat64);
  torch::Tensor sure = losses(single("sure", 0.2), s, *process, x0, 4);
  torch::Tensor ism = losses(single("ism", 0.2), s, *process, x0, 4);
  EXPECT_TRUE(torch::allclose(sure - ism, torch::full({256}, 2 / (2 * 0.04), torch::kFloat64), 1e-9, 1e-9));
}

TEST(ScoreMatching, KernelTargetsAreTheGradientsOfTheirLogKernels) {
  auto gen = make_generator(9);
  torch::Tensor n = (0.8 * torch::randn({16, 3}, gen, torch::kFloat64)).requires_grad_(true);
  torch::Tensor sigma = 0.3 + torch::rand({16}, gen, torch::kFloat64);
  // Laplace: log q = −Σ|n|/b.
  torch::Tensor b = 0.5 * sigma;
  torch::Tensor laplace_log = -(n.abs() / b.unsqueeze(1)).sum();
  torch::Tensor laplace_grad = torch::autograd::grad({laplace_log}, {n})[0];
  EXPECT_TRUE(torch::allclose(laplace_target(n.detach(), b), laplace_grad, 1e-12, 1e-12));
  // Student-t per dimension: log q = −(ν+1)/2 Σ log(1 + n²/(νσ²)).
  const double nu = 3.0;
  torch::Tensor s2 = sigma.pow(2).unsqueeze(1);
  torch::Tensor t_log = (-(nu + 1) / 2 * torch::log1p(n.pow(2) / (nu * s2))).sum();
  torch::Tensor t_grad = torch::autograd::grad({t_log}, {n})[0];
  EXPECT_TRUE(torch::allclose(student_t_target(n.detach(), nu, sigma), t_grad, 1e-12, 1e-12));
  // Gaussian: log q = −‖n‖²/(2σ²).
  torch::Tensor g_log = (-(n.pow(2)) / (2 * s2)).sum();
  torch::Tensor g_grad = torch::autograd::grad({g_log}, {n})[0];
  torch::Tensor x0 = torch::zeros({16, 3}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(dsm_target(n.detach(), x0, sigma), g_grad, 1e-12, 1e-12));
}

TEST(ScoreMatching, KernelNoiseHasTheIntendedScale) {
  // DSM with a zero score: the loss per sample is ½λ‖target‖², whose mean is known per kernel.
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn zero = [](const torch::Tensor& x, const torch::Tensor&) { return torch::zeros_like(x); };
  torch::Tensor x0 = torch::zeros({200000, 2}, torch::kFloat64);
  ObjectiveOptions o = single("dsm", 0.5);
  o.kernel = "laplace";
  o.laplace_b = 0.5;  // b = 0.25: ‖target‖² = 2/b² exactly
  EXPECT_NEAR(losses(o, zero, *process, x0, 1).mean().item<double>(), 0.5 * 2 / (0.25 * 0.25), 1e-9);
  o.kernel = "student-t";
  o.nu = 5.0;  // E[((ν+1)n/(νσ²+n²))²] per dimension = (ν+1)/(ν+3)/σ² for Student-t noise n = σ t_ν
  EXPECT_NEAR(losses(o, zero, *process, x0, 2).mean().item<double>(), 0.5 * 2 * 6.0 / 8.0 / 0.25, 0.03);
}

TEST(ScoreMatching, WeightingsFollowTheirFormulas) {
  torch::Tensor sigma = torch::tensor({0.1, 1.0, 3.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(loss_weight("uniform", sigma), torch::ones({3}, torch::kFloat64)));
  EXPECT_TRUE(torch::allclose(loss_weight("sigma2", sigma), sigma.pow(2)));
  EXPECT_TRUE(torch::allclose(loss_weight("snr", sigma), 1 / (1 + sigma.pow(2))));
  // DDPM: 1 − ᾱ with ᾱ = 1/(1 + σ²).
  EXPECT_TRUE(torch::allclose(loss_weight("ddpm", sigma), 1 - 1 / (1 + sigma.pow(2))));
  EXPECT_THROW(loss_weight("snr2", sigma), Error);
}

TEST(ScoreMatching, EsmNeedsAKnownScore) {
  ObjectiveOptions o;
  o.name = "esm";
  EXPECT_THROW(make_objective(o, nullptr), Error);
}

TEST(Tweedie, SecondOrderMatchesTheMixturePosteriorCovariance) {
  // Prior Σ w_k N(μ_k, diag τ_k²), x̃ = x + σε: the posterior is a mixture of Gaussians with
  // responsibilities r_k ∝ w_k N(x̃; μ_k, τ_k² + σ²), means m_k = (σ²μ_k + τ_k²x̃)/(τ_k² + σ²) and
  // variances v_k = τ_k²σ²/(τ_k² + σ²); Cov = Σ r_k (diag v_k + m_k m_kᵀ) − m̄ m̄ᵀ.
  auto mixture = sm_two_modes();
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn score = mixture_score_fn(mixture, process);
  const double sigma = 0.7;
  torch::Tensor x = torch::tensor({{0.0, 0.5}, {1.0, 1.0}, {-2.0, 0.3}}, torch::kFloat64);
  torch::Tensor t = torch::full({3}, process->t_at_sigma(sigma), torch::kFloat64);
  torch::Tensor got = tweedie_covariance(score, *process, x, t);
  for (int64_t b = 0; b < 3; ++b) {
    torch::Tensor xb = x[b];
    torch::Tensor tau2 = mixture->stds().pow(2), mu = mixture->means();  // [K, D]
    torch::Tensor var = tau2 + sigma * sigma;
    torch::Tensor log_r = torch::log(mixture->weights()) - 0.5 * ((xb - mu).pow(2) / var + torch::log(2 * M_PI * var)).sum(1);
    torch::Tensor r = torch::softmax(log_r, 0);
    torch::Tensor means = (sigma * sigma * mu + tau2 * xb) / var, vars = tau2 * sigma * sigma / var;
    torch::Tensor mean = (r.unsqueeze(1) * means).sum(0);
    torch::Tensor second = torch::zeros({2, 2}, torch::kFloat64);
    for (int64_t k = 0; k < 2; ++k) second += r[k] * (torch::diag(vars[k]) + torch::outer(means[k], means[k]));
    torch::Tensor expected = second - torch::outer(mean, mean);
    EXPECT_TRUE(torch::allclose(got[b], expected, 1e-8, 1e-10)) << got[b] << "\n" << expected;
  }
}
