// Training recovers the score: every objective, fitted to a 2-D Gaussian at one noise level, learns
// the score of the noised density it targets (Fisher divergence < 0.02 on held-out noisy points).
// The target is exact: for the Gaussian kernel N(μ, Σ + σ²I) in closed form; for the Laplace and
// Student-t kernels (product kernels, diagonal Σ) the convolution factorises per coordinate and its
// score q'/q is computed by 1-D quadrature.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/train/trainer.hpp"

using namespace scorediff;

namespace {

constexpr double kSigma = 0.3;
const double kMean[2] = {1.0, -0.5};
const double kStd[2] = {1.0, 0.6};

struct Case {
  std::string name;    // test label
  std::string objective, kernel = "gaussian";
  std::string model = "mlp";
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

// Score of one coordinate of N(μ, s²) convolved with kernel k (density up to a constant), at y [N].
torch::Tensor convolved_score_1d(const torch::Tensor& y, double mu, double s, const std::string& kernel,
                                 const ObjectiveOptions& o) {
  // z spans the kernel's mass (Student-t tails decay as |z|^-(ν+1)); h resolves both the kernel and φ.
  const double half = kernel == "laplace" ? 45 * o.laplace_b * kSigma : 120 * kSigma;
  torch::Tensor z = torch::linspace(-half, half, 8001, torch::kFloat64);
  torch::Tensor log_k = kernel == "laplace"
                            ? -z.abs() / (o.laplace_b * kSigma)
                            : -(o.nu + 1) / 2 * torch::log1p(z.pow(2) / (o.nu * kSigma * kSigma));
  torch::Tensor k = torch::exp(log_k);
  std::vector<torch::Tensor> out;
  for (int64_t start = 0; start < y.size(0); start += 200) {
    torch::Tensor yc = y.slice(0, start, std::min<int64_t>(start + 200, y.size(0))).unsqueeze(1);  // [n, 1]
    torch::Tensor u = (yc - z - mu) / s;                     // [n, G]
    torch::Tensor phi = torch::exp(-0.5 * u.pow(2)) * k;     // φ(y − z) k(z)
    out.push_back((phi * (-u / s)).sum(1) / phi.sum(1));     // q'(y)/q(y), h cancels
  }
  return torch::cat(out);
}

class Recovery : public ::testing::TestWithParam<Case> {};

TEST_P(Recovery, TrainingOnAGaussianRecoversItsScore) {
  const Case& c = GetParam();
  auto data_model = std::make_shared<GaussianMixture>(torch::tensor({1.0}), torch::tensor({{kMean[0], kMean[1]}}),
                                                      torch::tensor({{kStd[0], kStd[1]}}));
  auto process = std::make_shared<SigmaLadder>(0.01, 5.0, 10);
  ScoreFn truth = mixture_score_fn(data_model, process);

  ObjectiveOptions o;
  o.name = c.objective;
  o.kernel = c.kernel;
  o.sigma_sampling = "single";
  o.sigma = kSigma;
  o.weighting = "sigma2";
  o.projections = 1;
  validate(o, *process);
  Objective objective = make_objective(o, &truth);

  auto gen = make_generator(7);
  torch::Tensor train = data_model->sample(20000, gen);
  ModelOptions m;
  m.name = c.model;
  m.width = 64;
  m.depth = 2;
  m.sigma_data = 1.0;
  ScoreModel model = make_model(m, 2, gen);
  TrainOptions t;
  t.steps = 2500;
  t.batch = 512;
  t.lr = 3e-3;
  t.ema_decay = 0.995;
  Trainer trainer(model, process, objective, level_count(o, *process), train, t, 3);
  for (int64_t i = 0; i < t.steps; ++i) trainer.step();
  at::Generator unused = make_generator(0);
  ScoreModel ema = make_model(m, 2, unused);
  trainer.copy_ema_to(ema);
  ema->eval();

  // Held-out points of the noised density the objective targets.
  auto held_gen = make_generator(99);
  torch::Tensor x0 = data_model->sample(4000, held_gen).to(torch::kFloat64);
  torch::Tensor noisy = x0 + kSigma * torch::randn(x0.sizes(), held_gen, x0.options());
  torch::Tensor tt = torch::full({noisy.size(0)}, process->t_at_sigma(kSigma), torch::kFloat64);
  torch::Tensor expected;
  if (c.kernel == "gaussian") {
    expected = truth(noisy, tt);
  } else {
    expected = torch::stack({convolved_score_1d(noisy.select(1, 0), kMean[0], kStd[0], c.kernel, o),
                             convolved_score_1d(noisy.select(1, 1), kMean[1], kStd[1], c.kernel, o)},
                            1);
  }
  torch::Tensor learned = model_score_fn(ema, process)(noisy.to(torch::kFloat32), tt).detach().to(torch::kFloat64);
  double fisher = (learned - expected).pow(2).sum(1).mean().item<double>();
  double scale = expected.pow(2).sum(1).mean().item<double>();
  RecordProperty("fisher", std::to_string(fisher));
  std::cout << c.name << ": Fisher divergence " << fisher << " (E|s|² = " << scale << ")\n";
  EXPECT_LT(fisher, 0.02);
}

INSTANTIATE_TEST_SUITE_P(
    EveryObjective, Recovery,
    ::testing::Values(Case{"esm", "esm"}, Case{"ism", "ism"}, Case{"ssm", "ssm"}, Case{"ssm_vr", "ssm-vr"},
                      Case{"dsm_gaussian", "dsm"}, Case{"dsm_laplace", "dsm", "laplace"},
                      Case{"dsm_student_t", "dsm", "student-t"}, Case{"sure", "sure"},
                      Case{"energy_dsm", "dsm", "gaussian", "energy-mlp"}, Case{"energy_ism", "ism", "gaussian", "energy-mlp"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
