// Class-conditional networks, label dropout, classifier-free guidance and sample labels (issue 24): every
// network path gives the same conditional numbers, the null class is what no label means, the guidance
// combinator is the score of p(x|y)^(1+w) p(x)^(-w) (autograd of closed-form log densities), and the
// conditional-2d experiment fails when the label is not learnt.
#include <gtest/gtest.h>

#include <fstream>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/models/fused_mlp.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/models/unet.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/samplers/guidance.hpp"
#include "scorediff/samplers/sample_options.hpp"
#include "scorediff/train/fused_dsm.hpp"
#include "scorediff/train/trainer.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

ModelOptions conditional_mlp(const std::string& embedding, int64_t classes = 3) {
  ModelOptions o;
  o.width = 48;
  o.depth = 2;
  o.embedding = embedding;
  o.classes = classes;
  return o;
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

}  // namespace

TEST(Conditional, MlpPathsAgreeWithLabelsAndNoLabelIsTheNullClass) {
  for (const std::string embedding : {"fourier", "log-sigma"}) {
    auto gen = make_generator(3);
    MlpNetworkImpl net(conditional_mlp(embedding), 2, gen);
    torch::Tensor x = torch::randn({1100, 2}, gen);  // more rows than one inference chunk
    torch::Tensor labels = torch::randint(0, 4, {1100}, gen, torch::kInt64);  // 3 = the null class
    for (const auto& log_sigma : {torch::full({1100}, std::log(0.3f)), torch::log(0.01 + 5 * torch::rand({1100}, gen))}) {
      torch::Tensor reference = net.forward_autograd(x, log_sigma, labels).detach();
      net.eval();
      {
        torch::NoGradGuard no_grad;
        ASSERT_EQ(net.path_for(x, log_sigma), MlpPath::Inference);
        EXPECT_LT(relative_error(net.forward(x, log_sigma, labels), reference), 1e-5) << embedding;
        // One label for every row: the shared-bias fast path.
        torch::Tensor two = torch::full({1100}, 2, torch::kInt64);
        EXPECT_LT(relative_error(net.forward(x, log_sigma, two), net.forward_autograd(x, log_sigma, two)), 1e-5);
        // No labels is the null class, and the label matters.
        torch::Tensor null = torch::full({1100}, 3, torch::kInt64);
        EXPECT_TRUE(torch::allclose(net.forward(x, log_sigma), net.forward(x, log_sigma, null), 1e-5, 1e-6));
        EXPECT_GT((net.forward(x, log_sigma, two) - net.forward(x, log_sigma, null)).abs().max().item<double>(), 1e-3);
      }
      net.train();
      if (fused_mlp_available()) {
        ASSERT_EQ(net.path_for(x, log_sigma), MlpPath::Fused);
        EXPECT_LT(relative_error(net.forward(x, log_sigma, labels).detach(), reference), 1e-5) << embedding;
      }
    }
  }
}

TEST(Conditional, UnetLabelsShiftItsOutputAndNoLabelIsTheNullClass) {
  ModelOptions o;
  o.name = "unet";
  o.channels = 8;
  o.channel_mult = {1, 2};
  o.fourier_features = 8;
  o.sigma_data = 0.5;
  o.image_shape = {1, 8, 8};
  o.classes = 4;
  auto gen = make_generator(2);
  UnetImpl net(o, 64, gen);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net.parameters()) p.copy_(0.2 * torch::randn(p.sizes(), gen, p.options()));  // past the zero init
  }
  net.eval();
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({6, 64}, gen), log_sigma = torch::full({6}, std::log(0.5f));
  torch::Tensor null = torch::full({6}, 4, torch::kInt64), one = torch::full({6}, 1, torch::kInt64);
  EXPECT_TRUE(torch::allclose(net.forward(x, log_sigma), net.forward(x, log_sigma, null)));
  EXPECT_GT((net.forward(x, log_sigma, one) - net.forward(x, log_sigma, null)).abs().max().item<double>(), 1e-3);
  // Each image follows its own label: a batch of mixed labels equals the images one by one.
  torch::Tensor mixed = torch::tensor({0, 1, 2, 3, 4, 1}, torch::kInt64);
  torch::Tensor batch = net.forward(x, log_sigma, mixed);
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_TRUE(torch::allclose(batch[i], net.forward(x.narrow(0, i, 1), log_sigma.narrow(0, i, 1), mixed.narrow(0, i, 1))[0],
                                1e-4, 1e-5));
  // An unconditional U-Net keeps its parameters (and so its checkpoints): no class embedding.
  o.classes = 0;
  auto gen2 = make_generator(2);
  UnetImpl plain(o, 64, gen2);
  EXPECT_EQ(plain.named_parameters().size() + 1, net.named_parameters().size());
  EXPECT_THROW(plain.forward(x, log_sigma, one), Error);
}

TEST(Conditional, ModelScoreFnBindsLabelsToRowsThroughItsChunks) {
  auto gen = make_generator(4);
  ModelOptions o = conditional_mlp("fourier", 5);
  o.input_scaling = false;
  ScoreModel model = make_model(o, 784, gen);  // 784 columns: model_score_fn evaluates in chunks of 41 rows
  model->eval();
  ProcessOptions po;
  po.name = "ve";
  auto process = make_process(po);
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({100, 784}, gen), t = torch::full({100}, 0.5f);
  torch::Tensor labels = torch::randint(0, 5, {100}, gen, torch::kInt64);
  torch::Tensor chunked = model_score_fn(model, process, labels)(x, t);
  torch::Tensor whole = model->score(x, process->mean_coef(t), process->std(t), t, labels);
  EXPECT_LT(relative_error(chunked, whole), 1e-5);
  EXPECT_THROW(model_score_fn(model, process, labels)(x.narrow(0, 0, 50), t.narrow(0, 0, 50)), Error);
}

TEST(Conditional, ClassifierFreeGuidanceIsTheScoreOfTheSharpenedConditional) {
  // A two-component mixture: p(x|y) its component y, p(x) the mixture. CFG with weight w must equal
  // ∇ log [p(x|y)^(1+w) p(x)^(−w)], here by autograd of the closed-form log densities at σ = 0.7.
  GaussianMixture mixture(torch::tensor({0.3, 0.7}, torch::kFloat64),
                          torch::tensor({{-2.0, 0.5}, {1.5, -1.0}}, torch::kFloat64),
                          torch::tensor({{0.6, 0.9}, {1.1, 0.5}}, torch::kFloat64));
  const double sigma = 0.7;
  auto one = torch::ones({1}, torch::kFloat64), s = torch::full({1}, sigma, torch::kFloat64);
  auto component = [&](int k) {
    return GaussianMixture(torch::ones({1}, torch::kFloat64), mixture.means().narrow(0, k, 1),
                           mixture.stds().narrow(0, k, 1));
  };
  const int y = 1;
  GaussianMixture conditional = component(y);
  ScoreFn s_cond = [&](const torch::Tensor& x, const torch::Tensor&) { return conditional.score(x, one, s); };
  ScoreFn s_all = [&](const torch::Tensor& x, const torch::Tensor&) { return mixture.score(x, one, s); };
  auto gen = make_generator(9);
  torch::Tensor x = 2 * torch::randn({64, 2}, gen, torch::kFloat64), t = torch::zeros({64}, torch::kFloat64);
  for (double w : {0.0, 0.5, 3.0}) {
    torch::Tensor leaf = x.clone().requires_grad_(true);
    torch::Tensor log_p = (1 + w) * conditional.log_prob(leaf, one, s) - w * mixture.log_prob(leaf, one, s);
    torch::Tensor expected = torch::autograd::grad({log_p.sum()}, {leaf})[0];
    torch::Tensor guided = classifier_free(s_cond, s_all, w)(x, t);
    EXPECT_LT((guided - expected).abs().max().item<double>(), 1e-9) << "w = " << w;
  }
}

TEST(Conditional, SampleLabelsShareTheClassesInBlocksAndRefuseBadSpecs) {
  auto all = sample_labels("all", 3, 7);
  EXPECT_TRUE(torch::equal(all, torch::tensor({0, 0, 0, 1, 1, 2, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(sample_labels("auto", 3, 3), torch::tensor({0, 1, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(sample_labels("2", 3, 2), torch::tensor({2, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(sample_labels("2,0", 3, 4), torch::tensor({2, 2, 0, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(sample_labels("none", 3, 2), torch::tensor({3, 3}, torch::kInt64)));
  EXPECT_FALSE(sample_labels("auto", 0, 5).defined());
  EXPECT_FALSE(sample_labels("none", 0, 5).defined());
  EXPECT_THROW(sample_labels("3", 3, 5), Error);     // outside [0, K)
  EXPECT_THROW(sample_labels("-1", 3, 5), Error);
  EXPECT_THROW(sample_labels("1,x", 3, 5), Error);
  EXPECT_THROW(sample_labels("1,", 3, 5), Error);
  EXPECT_THROW(sample_labels("all", 0, 5), Error);   // a class of an unconditional model
  EXPECT_THROW(sample_labels("0", 0, 5), Error);
}

TEST(Conditional, FusedDsmStepWithLabelsAndDropoutEqualsTheAutogradStep) {
  if (!fused_mlp_available()) GTEST_SKIP() << "no libxsmm and no BLAS sgemm: both sides would be the autograd step";
  auto data_gen = make_generator(5);
  const torch::Tensor data = 2 * torch::randn({300, 3}, data_gen);
  const torch::Tensor labels = torch::randint(0, 4, {300}, data_gen, torch::kInt64);
  ProcessOptions po;
  po.name = "ve";
  auto process = make_process(po);
  ObjectiveOptions oo;
  ModelOptions mo = conditional_mlp("fourier", 4);
  mo.sigma_data = 0.7;
  TrainOptions to;
  to.batch = 600;
  to.lr = 1e-30;
  to.warmup = 0;
  to.label_dropout = 0.3;
  auto run = [&](bool fused) {
    auto init = make_generator(11);
    ScoreModel model = make_model(mo, 3, init);
    dynamic_cast<MlpNetworkImpl&>(model->network()).set_fused_training(fused);
    Objective objective = make_objective(oo);
    EXPECT_EQ(fused_dsm_objective(model, objective, data) != nullptr, fused);
    Trainer trainer(model, process, objective, level_count(oo, *process), data, to, 17);
    trainer.set_labels(labels);
    StepStats stats = trainer.step();
    std::vector<torch::Tensor> out{trainer.state().at("rng.train").to(torch::kFloat64),
                                   torch::tensor({stats.loss}, torch::kFloat64)};
    for (const auto& p : model->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  const auto reference = run(false), fast = run(true);
  ASSERT_EQ(reference.size(), fast.size());
  EXPECT_TRUE(torch::equal(reference[0], fast[0]));
  for (size_t i = 1; i < reference.size(); ++i) EXPECT_LT(relative_error(fast[i], reference[i]), 1e-5) << i;
}

TEST(Conditional, TrainerRefusesLabelsThatDoNotFitTheModel) {
  auto gen = make_generator(1);
  ProcessOptions po;
  po.name = "ve";
  auto process = make_process(po);
  ObjectiveOptions oo;
  ModelOptions mo = conditional_mlp("fourier", 3);
  mo.sigma_data = 1;
  const torch::Tensor data = torch::randn({10, 2}, gen);
  Trainer trainer(make_model(mo, 2, gen), process, make_objective(oo), level_count(oo, *process), data, TrainOptions{}, 1);
  EXPECT_THROW(trainer.set_labels(torch::tensor({0, 1, 2, 3, 0, 1, 2, 0, 1, 2}, torch::kInt64)), Error);  // 3 = K
  EXPECT_THROW(trainer.set_labels(torch::zeros({9}, torch::kInt64)), Error);                              // 9 for 10 rows
  EXPECT_THROW(trainer.set_labels(torch::zeros({10}, torch::kFloat32)), Error);
  EXPECT_NO_THROW(trainer.set_labels(torch::tensor({0, 1, 2, 2, 0, 1, 2, 0, 1, 2}, torch::kInt64)));
  mo.classes = 0;
  Trainer plain(make_model(mo, 2, gen), process, make_objective(oo), level_count(oo, *process), data, TrainOptions{}, 1);
  EXPECT_THROW(plain.set_labels(torch::zeros({10}, torch::kInt64)), Error);
}

namespace {

nlohmann::json run_experiment(const std::string& name, const TempDir& dir, std::vector<std::string> sets) {
  ExperimentContext ctx{dir.path(), std::move(sets), 0, 1, true, false, 0, {}};
  return experiments().get(name).run(ctx);
}

}  // namespace

TEST(Conditional, Conditional2dPutsEachClassOnItsModeAndGuidanceSharpensIt) {
  TempDir dir;
  auto m = run_experiment("conditional-2d", dir, {"train.steps=2500", "sample.n=1600"});
  ASSERT_EQ(m["checks"].size(), 4u) << m.dump();
  for (const auto& [name, check] : m["checks"].items()) EXPECT_TRUE(check["holds"].get<bool>()) << name << check.dump();
  EXPECT_GE(m["cfg"]["3"]["worst_class"].get<double>(), 0.99);
  EXPECT_LT(m["cfg"]["3"]["spread_ratio"].get<double>(), m["cfg"]["0"]["spread_ratio"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(dir / "classes.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "guidance.png"));
}

TEST(Conditional, Conditional2dFailsWhenTheLabelIsNotLearnt) {
  // Labels dropped on all but 0.1 % of examples: the network barely sees them, and its classes land anywhere.
  TempDir dir;
  auto m = run_experiment("conditional-2d", dir, {"train.steps=1500", "sample.n=800", "train.label_dropout=0.999"});
  EXPECT_FALSE(m["checks"]["worst_class_on_own_mode_best_w"]["holds"].get<bool>()) << m.dump();
  EXPECT_FALSE(m["checks"]["on_own_mode_w0_vs_floor"]["holds"].get<bool>()) << m.dump();
}
