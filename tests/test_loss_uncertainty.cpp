// EDM2's learned loss uncertainty (model.loss_uncertainty): the weighted loss against its closed-form minimum,
// the head's fit of ln E[L/D | σ] under noisy losses, and the head through training, checkpoints and resume.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/train/adam.hpp"
#include "test_util.hpp"

using namespace scorediff;
namespace fs = std::filesystem;

namespace {

Config toy_config(int64_t steps, bool uncertainty) {
  return load_config("swiss-roll", {fmt::format("train.steps={}", steps), "train.log_every=1", "train.warmup=5",
                                    "data.n_train=300", "model.width=16", "model.depth=2", "train.batch=32",
                                    fmt::format("model.loss_uncertainty={}", uncertainty)});
}

double first_loss(const fs::path& log) {
  std::ifstream in(log);
  std::string line;
  std::getline(in, line);
  return nlohmann::json::parse(line)["loss"].get<double>();
}

}  // namespace

TEST(LossUncertainty, WeightedLossIsLeastAtTheLogOfTheLossPerElement) {
  auto gen = make_generator(3);
  const int64_t elements = 784;
  torch::Tensor loss = (torch::rand({6}, gen, torch::kFloat64) + 0.1) * 500;
  torch::Tensor u = torch::log(loss / elements).requires_grad_(true);
  torch::Tensor value = uncertainty_weighted(loss, u, elements);
  value.sum().backward();
  // d/du (L e^−u + D u) = D − L e^−u = 0 at u = ln(L/D); the value there is D (1 + u).
  EXPECT_LT(u.grad().abs().max().item<double>(), 1e-9);
  EXPECT_TRUE(torch::allclose(value.detach(), elements * (1 + u.detach()), 1e-12, 1e-9));
  for (double shift : {-0.2, 0.2})
    EXPECT_TRUE((uncertainty_weighted(loss, u.detach() + shift, elements) > value.detach()).all().item<bool>());
  // The loss enters divided by e^u: its gradient is e^−u.
  torch::Tensor l = loss.clone().requires_grad_(true), fixed = torch::full({6}, 0.7, torch::kFloat64);
  uncertainty_weighted(l, fixed, elements).sum().backward();
  EXPECT_TRUE(torch::allclose(l.grad(), torch::full({6}, std::exp(-0.7), torch::kFloat64)));
  EXPECT_THROW(uncertainty_weighted(loss, u.detach().slice(0, 0, 5), elements), Error);
}

TEST(LossUncertainty, HeadLearnsTheLogOfTheMeanLossNotOfItsGeometricMean) {
  // Losses L = D exp(g(σ)) ξ with ξ ~ Exponential(1): the minimiser of E[L e^−u + D u] is u = ln E[L/D | σ] = g(σ),
  // while a head that fitted E[ln(L/D)] would sit at g(σ) − 0.577 (Euler's constant) and one without D at g + ln D.
  ModelOptions options;
  options.loss_uncertainty = true;
  options.sigma_data = 0.5;
  auto gen = make_generator(4);
  ScoreModel model = make_model(options, 2, gen);
  ASSERT_TRUE(model->has_loss_uncertainty());
  const int64_t elements = 2;
  auto g = [](const torch::Tensor& log_sigma) { return 0.5 + 0.3 * log_sigma - 0.05 * log_sigma.pow(2); };
  const double lo = std::log(0.002), hi = std::log(80.0);
  torch::Tensor grid = torch::exp(torch::linspace(lo, hi, 9));
  EXPECT_TRUE(torch::equal(model->log_variance(grid), torch::zeros({9})));  // zero at the start: the plain loss
  std::vector<torch::Tensor> head;
  for (const auto& item : model->named_parameters())
    if (item.key().rfind("uncertainty.", 0) == 0) head.push_back(item.value());
  ASSERT_EQ(head.size(), 2u);  // the Linear's weight and bias; the frequencies are a buffer
  Adam adam(head, AdamOptions{0.9, 0.999, 1e-8, 0.0});
  for (int step = 0; step < 3000; ++step) {
    torch::Tensor log_sigma = lo + (hi - lo) * torch::rand({512}, gen);
    torch::Tensor xi = -torch::log(torch::rand({512}, gen).clamp_min(1e-12));
    torch::Tensor loss = elements * torch::exp(g(log_sigma)) * xi;
    adam.zero_grad();
    uncertainty_weighted(loss, model->log_variance(torch::exp(log_sigma)), elements).mean().backward();
    adam.step(step < 2000 ? 1e-2 : 1e-3);
  }
  torch::NoGradGuard no_grad;
  const double gap = (model->log_variance(grid) - g(torch::log(grid))).abs().max().item<double>();
  EXPECT_LT(gap, 0.15) << "u(σ) − g(σ) on nine σ from 0.002 to 80";
}

TEST(LossUncertainty, TrainingLearnsTheHeadCheckpointsAndResumesIt) {
  TempDir plain, whole, split;
  TrainedRun without = train_run(toy_config(40, false), plain.path(), {false, true});
  TrainedRun with = train_run(toy_config(40, true), whole.path(), {false, true});
  // u = 0 at the first step, the head is drawn from the init stream after the network: the same network, the same
  // batch, and the logged loss (the objective's own) is the same.
  // (The run without the head takes the fused MLP step, which sums in float64: equal to float32 rounding.)
  const double reference = first_loss(plain / "train.jsonl");
  EXPECT_NEAR(first_loss(whole / "train.jsonl"), reference, 1e-6 * reference);
  EXPECT_FALSE(without.model->has_loss_uncertainty());
  TensorFile file = read_safetensors(whole / "last.safetensors");
  for (const char* name : {"model.uncertainty.1.weight", "ema.uncertainty.1.bias", "optim.exp_avg.uncertainty.1.weight",
                           "model.uncertainty.0.W"})
    EXPECT_TRUE(file.contains(name)) << name;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor grid = torch::exp(torch::linspace(std::log(0.01), std::log(10.0), 7));
    torch::Tensor learned = with.model->log_variance(grid);
    EXPECT_GT(learned.abs().max().item<double>(), 1e-3);  // trained away from zero
    LoadedModel raw = load_trained(whole / "last.safetensors", false);
    EXPECT_TRUE(torch::equal(raw.model->log_variance(grid), learned));
  }
  train_run(toy_config(40, true), split.path(), {false, true, 17});  // interrupted after step 17
  train_run(toy_config(40, true), split.path(), {true, true});
  TensorFile resumed = read_safetensors(split / "last.safetensors");
  for (const auto& [name, t] : file.tensors) EXPECT_TRUE(torch::equal(t, resumed.at(name))) << name;
}

TEST(LossUncertainty, HeadFollowsTheLossPerElementOfATrainedToy) {
  // After training, u(σ) against ln of the mean loss per element that the trained network has at σ, on five
  // log-spaced bins (a head without the factor D would sit ln 2 = 0.69 off on this 2-D toy).
  TempDir dir;
  Config config = toy_config(600, true);
  TrainedRun run = train_run(config, dir.path(), {false, true});
  const auto& process = run.prepared.process;
  Objective objective = make_objective(run.config.objective);
  auto gen = make_generator(9);
  const torch::Tensor& data = run.prepared.train_data;
  torch::NoGradGuard no_grad;
  run.model->eval();
  torch::Tensor x0 = data.index_select(0, torch::randint(0, data.size(0), {20000}, gen));
  LossTerms terms = objective(model_score_fn(run.model, process), *process, x0, gen);
  torch::Tensor u = run.model->log_variance(terms.sigma);
  torch::Tensor log_sigma = torch::log(terms.sigma).to(torch::kFloat32);
  const double lo = log_sigma.min().item<double>(), hi = log_sigma.max().item<double>();
  for (int bin = 0; bin < 5; ++bin) {
    torch::Tensor in = (log_sigma >= lo + (hi - lo) * bin / 5) & (log_sigma <= lo + (hi - lo) * (bin + 1) / 5);
    const double measured = std::log(terms.loss.index({in}).mean().item<double>() / 2);
    EXPECT_NEAR(u.index({in}).mean().item<double>(), measured, 0.3) << "bin " << bin;
  }
}
