// objectives/contrastive: the chains sample exp(−U) (Langevin within a mode, Metropolis–Hastings moves
// between modes, measured against closed forms), CD trains and resumes bit for bit with its buffer, and
// the energy CNN's score is −∇ₓE.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/metrics/auroc.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/contrastive.hpp"
#include "scorediff/pipeline/config.hpp"
#include "scorediff/pipeline/training.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

ObjectiveOptions cd_options(int64_t sgld_steps, double step, int64_t global_moves) {
  ObjectiveOptions o;
  o.name = "cd";
  o.sigma_sampling = "single";
  o.sgld_steps = sgld_steps;
  o.sgld_step = step;
  o.global_moves = global_moves;
  return o;
}

// U of 0.2 N((2,2), s²I) + 0.8 N((−2,−2), s²I), up to a constant.
torch::Tensor two_mode_energy(const torch::Tensor& x, double s) {
  torch::Tensor a = torch::tensor({2.0, 2.0}, x.options()), b = -a;
  torch::Tensor la = std::log(0.2) - (x - a).pow(2).sum(1) / (2 * s * s);
  torch::Tensor lb = std::log(0.8) - (x - b).pow(2).sum(1) / (2 * s * s);
  return -torch::logaddexp(la, lb);
}

}  // namespace

TEST(ContrastiveDivergence, LangevinChainsSampleAGaussianEnergy) {
  // U = |x − μ|²/(2s²): 600 exact-Langevin steps (noise √(2ε)) from uniform starts reach N(μ, s²I) up to
  // ε's bias (the chain's stationary variance is s²/(1 − ε/(4s²)), 0.5% here).
  ContrastiveDivergence cd(cd_options(600, 0.01, 0));
  cd.set_box(-5, 5);
  const torch::Tensor mu = torch::tensor({0.5, -0.3}, torch::kFloat64);
  const double s = 0.7;
  auto gen = make_generator(4);
  torch::Tensor x = torch::rand({4000, 2}, gen, torch::kFloat64) * 10 - 5;
  cd.move([&](const torch::Tensor& y) { return (y - mu).pow(2).sum(1) / (2 * s * s); }, x, gen);
  EXPECT_FALSE(x.requires_grad());
  torch::Tensor mean = x.mean(0), sd = x.std(0);
  for (int d = 0; d < 2; ++d) {
    EXPECT_NEAR(mean[d].item<double>(), mu[d].item<double>(), 4 * s / std::sqrt(4000.0)) << d;
    EXPECT_NEAR(sd[d].item<double>(), s, 0.03 * s) << d;
  }
}

TEST(ContrastiveDivergence, MetropolisMovesGiveTheModeWeightsLangevinCannot) {
  // Every chain starts in the heavy mode. Langevin alone keeps them there (the barrier is ~8 nats high);
  // uniform independence proposals accepted with exp(U(x) − U(y)) restore the 0.2 weight of the other mode.
  const double s = 0.4;
  auto energy = [&](const torch::Tensor& y) { return two_mode_energy(y, s); };
  auto gen = make_generator(5);
  const torch::Tensor start = torch::full({4000, 2}, -2.0, torch::kFloat64) + s * torch::randn({4000, 2}, gen, torch::kFloat64);
  auto upper = [](const torch::Tensor& x) { return (x.sum(1) > 0).to(torch::kFloat64).mean().item<double>(); };

  ContrastiveDivergence langevin(cd_options(300, 0.01, 0));
  langevin.set_box(-4, 4);
  torch::Tensor a = start.clone();
  langevin.move(energy, a, gen);
  EXPECT_LT(upper(a), 0.005);

  ContrastiveDivergence mh(cd_options(20, 0.01, 400));
  mh.set_box(-4, 4);
  torch::Tensor b = start.clone();
  mh.move(energy, b, gen);
  EXPECT_NEAR(upper(b), 0.2, 4 * std::sqrt(0.2 * 0.8 / 4000));  // 4 standard errors
  // Within each mode the chains keep the mode's shape: the spread about (−2, −2) is s.
  torch::Tensor lower = b.index({b.sum(1) < 0});
  EXPECT_NEAR(lower.std(0).mean().item<double>(), s, 0.05 * s);
}

namespace {

Config small_cd(int64_t steps) {
  return load_config("mog2-cd", {fmt::format("train.steps={}", steps), "train.log_every=1", "train.warmup=2",
                                 "data.n_train=300", "model.width=16", "model.depth=2", "train.batch=32",
                                 "objective.buffer=64", "objective.sgld_steps=3", "objective.global_moves=2"});
}

}  // namespace

TEST(ContrastiveDivergence, ResumesBitForBitWithItsBuffer) {
  TempDir whole, split;
  train_run(small_cd(12), whole.path(), {false, true});
  train_run(small_cd(12), split.path(), {false, true, 5});
  train_run(small_cd(12), split.path(), {true, true});
  TensorFile fa = read_safetensors(whole / "last.safetensors"), fb = read_safetensors(split / "last.safetensors");
  ASSERT_TRUE(fa.contains("objective.buffer"));
  EXPECT_EQ(fa.at("objective.buffer").sizes(), (std::vector<int64_t>{64, 2}));
  for (const auto& [name, t] : fa.tensors) EXPECT_TRUE(torch::equal(t, fb.at(name))) << name;
  // The buffer moved: its chains are no longer uniform restarts only inside the box.
  const torch::Tensor box = fa.at("objective.box");
  EXPECT_LT(box[0].item<double>(), -5.0);
  EXPECT_GT(box[1].item<double>(), 5.0);
}

TEST(ContrastiveDivergence, ConfigurationErrorsNameTheProblem) {
  EXPECT_THAT_ERROR(load_config("mog2-cd", {"model.name=mlp"}), "trains an energy model");
  EXPECT_THAT_ERROR(load_config("mog2-cd", {"objective.sigma_sampling=ladder"}), "sigma_sampling = 'single'");
  EXPECT_THAT_ERROR(load_config("mog2-cd", {"objective.buffer=100"}), "at least train.batch");
  EXPECT_THAT_ERROR(load_config("mog2-cd", {"objective.reinit=1.5"}), "objective.reinit");
  EXPECT_THAT_ERROR(load_config("mog2-cd", {"objective.sgld_noise=-1"}), "objective.sgld_noise");
  EXPECT_THAT_ERROR(load_config("mog2-cd", {"model.loss_uncertainty=true"}), "model.loss_uncertainty needs");
  Config fine = load_config("mog2-cd", {"objective.sgld_noise=0.05"});
  EXPECT_FALSE(fine.objective.sgld_noise_auto);
  EXPECT_DOUBLE_EQ(fine.objective.sgld_noise, 0.05);
  EXPECT_TRUE(load_config("mog2-cd").objective.sgld_noise_auto);
  // Called as an ordinary score objective, CD says what it needs.
  Objective cd = make_objective(cd_options(1, 0.01, 0));
  auto gen = make_generator(1);
  auto process = make_process(ProcessOptions{});
  EXPECT_THAT_ERROR(cd([](const torch::Tensor& x, const torch::Tensor&) { return x; }, *process, torch::zeros({2, 2}), gen),
                    "needs the model's energy");
}

TEST(EnergyCnn, ScoreIsMinusTheGradientOfItsEnergy) {
  ModelOptions o;
  o.name = "energy-cnn";
  o.channels = 4;
  o.sigma_data = 0.5;
  o.image_shape = {1, 8, 8};
  auto gen = make_generator(6);
  ScoreModel model = make_model(o, 64, gen);
  model->to(torch::kFloat64);
  torch::Tensor x = torch::randn({3, 64}, gen, torch::kFloat64);
  torch::Tensor m = torch::ones({3}, torch::kFloat64), s = torch::full({3}, 0.3, torch::kFloat64);
  torch::Tensor score = model->score(x, m, s);
  // Central differences of U in four coordinates of each image.
  for (int64_t j : {0, 9, 27, 63}) {
    torch::Tensor e = torch::zeros({3, 64}, torch::kFloat64);
    e.select(1, j).fill_(1e-5);
    torch::Tensor fd = (model->energy(x + e, m, s) - model->energy(x - e, m, s)) / 2e-5;
    EXPECT_TRUE(torch::allclose(score.select(1, j), -fd, 1e-6, 1e-6)) << j;
  }
  EXPECT_GT(score.abs().max().item<double>(), 0.0);
  EXPECT_THAT_ERROR(make_model([] {
                      ModelOptions flat;
                      flat.name = "energy-cnn";
                      flat.sigma_data = 1;
                      return flat;
                    }(), 2, gen),
                    "needs image data");
}

TEST(Auroc, IsTheProbabilityThatAnInlierScoresHigher) {
  // Brute force over all pairs (ties count ½) on small sets with ties, and the closed form for two
  // Gaussians: AUROC = Φ(Δ/√2) for N(Δ, 1) against N(0, 1).
  torch::Tensor in = torch::tensor({3.0, 1.0, 2.0, 2.0, 5.0}), out = torch::tensor({2.0, 0.0, 4.0, 1.0});
  double pairs = 0;
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j) {
      const double a = in[i].item<double>(), b = out[j].item<double>();
      pairs += a > b ? 1.0 : a == b ? 0.5 : 0.0;
    }
  EXPECT_DOUBLE_EQ(auroc(in, out), pairs / 20);
  EXPECT_DOUBLE_EQ(auroc(in, in - 100), 1.0);
  EXPECT_DOUBLE_EQ(auroc(in - 100, in), 0.0);
  auto gen = make_generator(7);
  torch::Tensor x = torch::randn({20000}, gen, torch::kFloat64) + 1.0, y = torch::randn({20000}, gen, torch::kFloat64);
  EXPECT_NEAR(auroc(x, y), 0.5 * std::erfc(-1.0 / 2.0), 0.006);  // Φ(1/√2); the standard error is ~0.003
  EXPECT_THAT_ERROR(auroc(torch::tensor({1.0, std::numeric_limits<double>::quiet_NaN()}), out), "finite");
}
