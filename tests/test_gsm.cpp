// Generalized score matching (seed 002): with 𝓛 = ∇ it is ISM on the same batch; with 𝓛 = x̃ + σ²∇ it
// is the denoiser loss up to a constant that does not depend on the score; with either operator,
// training recovers the score of a known mixture.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/gsm.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/process/divergence.hpp"
#include "scorediff/train/trainer.hpp"

using namespace scorediff;

namespace {

std::shared_ptr<GaussianMixture> gsm_two_modes() {
  return std::make_shared<GaussianMixture>(torch::tensor({0.3, 0.7}), torch::tensor({{-1.5, 0.5}, {1.5, -0.5}}),
                                           torch::tensor({{0.5, 0.4}, {0.4, 0.6}}));
}

ModelOptions small_mlp() {
  ModelOptions m;
  m.name = "mlp";
  m.width = 64;
  m.depth = 2;
  m.sigma_data = 1.0;
  return m;
}

TEST(Gsm, GradientOperatorIsImplicitScoreMatchingOnTheSameBatch) {
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  auto gen = make_generator(11);
  ScoreModel model = make_model(small_mlp(), 2, gen);
  ScoreFn score = model_score_fn(model, process);
  torch::Tensor x0 = gsm_two_modes()->sample(512, gen);
  ObjectiveOptions o;
  o.sigma_sampling = "log-uniform";
  o.name = "ism";
  auto g1 = make_generator(5);
  LossTerms ism = make_objective(o)(score, *process, x0, g1);
  o.name = "gsm";
  o.op = "gradient";
  validate(o, *process);
  auto g2 = make_generator(5);
  LossTerms gsm = make_objective(o)(score, *process, x0, g2);
  ASSERT_TRUE(torch::equal(ism.sigma, gsm.sigma));
  const double scale = ism.loss.abs().max().item<double>();
  const double gap = (gsm.loss - ism.loss).abs().max().item<double>();
  std::cout << "gsm gradient vs ism: largest per-sample difference " << gap << " (largest loss " << scale << ")\n";
  EXPECT_LT(gap, 1e-6 * scale);
  // And the gradients in the parameters agree: the two are one objective.
  auto grads = [&](const LossTerms& terms) {
    model->zero_grad();
    terms.loss.mean().backward();
    std::vector<torch::Tensor> out;
    for (const auto& p : model->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  auto a = grads(ism), b = grads(gsm);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-7)) << "parameter " << i;
}

// For one score function s at noise σ: the per-sample GSM value with the Tweedie operator minus the
// denoiser loss ½‖x̃ + σ²s − x‖², over n noisy draws of the mixture.
struct Difference {
  double mean, se;
  double denoiser;  // mean denoiser loss, to show the two score functions are really different
};

Difference tweedie_minus_denoiser(const std::function<torch::Tensor(const torch::Tensor&)>& s_of, const torch::Tensor& x0,
                                  const torch::Tensor& eps, double sigma) {
  torch::Tensor x = (x0 + sigma * eps).requires_grad_(true);
  torch::Tensor s = s_of(x);
  torch::Tensor std = torch::full({x.size(0)}, sigma, x.options());
  FirstOrderOperator op = gsm_operator("tweedie", x, std);
  torch::Tensor value = gsm_value(op, s, jacobian_trace(s, x, false)).detach();
  torch::Tensor denoised = generalized_score(op, s).detach();
  torch::Tensor denoiser = 0.5 * (denoised - x0).pow(2).sum(1);
  torch::Tensor d = value - denoiser;
  return {d.mean().item<double>(), d.std().item<double>() / std::sqrt(static_cast<double>(d.size(0))),
          denoiser.mean().item<double>()};
}

TEST(Gsm, TweedieOperatorIsTheDenoiserLossUpToOneConstant) {
  // E_ε[GSM − ½‖D − x‖²] = E[−σ D·ε + σ² ∇·D] − ½‖x‖² = −½‖x‖² by Stein's lemma, whatever D is.
  auto mixture = gsm_two_modes();
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  auto gen = make_generator(21);
  const int64_t n = 400000;
  const double sigma = 0.5;
  torch::Tensor x0 = mixture->sample(n, gen).to(torch::kFloat64);
  torch::Tensor eps = torch::randn(x0.sizes(), gen, x0.options());
  auto exact = [&](const torch::Tensor& x) {
    return mixture->score(x, torch::ones({1}, x.options()), torch::full({1}, sigma, x.options()));
  };
  // A poor, nonlinear score: a different denoiser, a different loss, the same constant.
  auto poor = [](const torch::Tensor& x) { return -0.5 * x + 0.8 * torch::tanh(x.flip(1)); };
  Difference a = tweedie_minus_denoiser(exact, x0, eps, sigma);
  Difference b = tweedie_minus_denoiser(poor, x0, eps, sigma);
  const double constant = -0.5 * x0.pow(2).sum(1).mean().item<double>();
  std::cout << "gsm tweedie minus denoiser loss: exact score " << a.mean << " ± " << a.se << ", poor score " << b.mean
            << " ± " << b.se << ", −½E‖x‖² = " << constant << "; denoiser losses " << a.denoiser << " and " << b.denoiser
            << "\n";
  EXPECT_GT(b.denoiser - a.denoiser, 0.1) << "the two score functions must give different denoiser losses";
  EXPECT_NEAR(a.mean, constant, 5 * a.se);
  EXPECT_NEAR(b.mean, constant, 5 * b.se);
  EXPECT_NEAR(a.mean, b.mean, 5 * std::hypot(a.se, b.se));
}

class GsmRecovery : public ::testing::TestWithParam<std::string> {};

TEST_P(GsmRecovery, TrainingRecoversTheScoreOfAMixture) {
  auto mixture = gsm_two_modes();
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn truth = mixture_score_fn(mixture, process);
  constexpr double kSigma = 0.3;
  ObjectiveOptions o;
  o.name = "gsm";
  o.op = GetParam();
  o.sigma_sampling = "single";
  o.sigma = kSigma;
  validate(o, *process);
  auto gen = make_generator(7);
  torch::Tensor train = mixture->sample(20000, gen);
  ScoreModel model = make_model(small_mlp(), 2, gen);
  TrainOptions t;
  t.steps = 2500;
  t.batch = 512;
  t.lr = 3e-3;
  t.ema_decay = 0.995;
  Trainer trainer(model, process, make_objective(o), level_count(o, *process), train, t, 3);
  for (int64_t i = 0; i < t.steps; ++i) trainer.step();
  at::Generator unused = make_generator(0);
  ScoreModel ema = make_model(small_mlp(), 2, unused);
  trainer.copy_ema_to(ema);
  ema->eval();

  auto held = make_generator(99);
  torch::Tensor noisy = mixture->sample(4000, held).to(torch::kFloat64);
  noisy = noisy + kSigma * torch::randn(noisy.sizes(), held, noisy.options());
  torch::Tensor tt = torch::full({noisy.size(0)}, process->t_at_sigma(kSigma), torch::kFloat64);
  torch::Tensor expected = truth(noisy, tt);
  torch::Tensor learned;
  {
    torch::NoGradGuard no_grad;
    learned = model_score_fn(ema, process)(noisy.to(torch::kFloat32), tt).to(torch::kFloat64);
  }
  const double fisher = (learned - expected).pow(2).sum(1).mean().item<double>();
  const double scale = expected.pow(2).sum(1).mean().item<double>();
  std::cout << "gsm " << GetParam() << ": Fisher divergence " << fisher << " = " << fisher / scale << " of E|s|^2\n";
  EXPECT_LT(fisher, 0.02 * scale);
}

INSTANTIATE_TEST_SUITE_P(EveryOperator, GsmRecovery, ::testing::Values("gradient", "tweedie"));

}  // namespace
