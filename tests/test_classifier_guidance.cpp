// Classifier guidance (issue 24 §4): the combinator is the score of p(x) p(y|x)^s (autograd of closed-form
// mixture densities; s = 1 gives the conditional score by Bayes' rule), a noise-conditional classifier keeps what
// it is through its file, and the guiding log-probability sees points in the classifier's units.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/metrics/classifier.hpp"
#include "scorediff/pipeline/classifier_guidance.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/samplers/guidance.hpp"
#include "test_util.hpp"

using namespace scorediff;

TEST(ClassifierGuidance, IsTheScoreOfTheDataTimesThePoweredClassifier) {
  GaussianMixture mixture(torch::tensor({0.3, 0.7}, torch::kFloat64),
                          torch::tensor({{-2.0, 0.5}, {1.5, -1.0}}, torch::kFloat64),
                          torch::tensor({{0.6, 0.9}, {1.1, 0.5}}, torch::kFloat64));
  auto one = torch::ones({1}, torch::kFloat64), s = torch::full({1}, 0.7, torch::kFloat64);
  const int y = 0;
  GaussianMixture component(torch::ones({1}, torch::kFloat64), mixture.means().narrow(0, y, 1),
                            mixture.stds().narrow(0, y, 1));
  // log p(y|x) = log π_y + log N_y(x) − log p(x), exact at this σ.
  auto log_p_y = [&](const torch::Tensor& x) {
    return std::log(0.3) + component.log_prob(x, one, s) - mixture.log_prob(x, one, s);
  };
  ScoreFn s_all = [&](const torch::Tensor& x, const torch::Tensor&) { return mixture.score(x, one, s); };
  LogProbFn classifier = [&](const torch::Tensor& x, const torch::Tensor&) { return log_p_y(x); };
  auto gen = make_generator(4);
  torch::Tensor x = 2 * torch::randn({64, 2}, gen, torch::kFloat64), t = torch::zeros({64}, torch::kFloat64);
  torch::NoGradGuard no_grad;  // as samplers run: the guidance takes its gradient regardless
  for (double scale : {0.0, 1.0, 4.0}) {
    torch::Tensor expected;
    {
      torch::AutoGradMode enable(true);
      torch::Tensor leaf = x.clone().requires_grad_(true);
      torch::Tensor log_p = mixture.log_prob(leaf, one, s) + scale * log_p_y(leaf);
      expected = torch::autograd::grad({log_p.sum()}, {leaf})[0];
    }
    torch::Tensor guided = classifier_guided(s_all, classifier, scale)(x, t);
    EXPECT_LT((guided - expected).abs().max().item<double>(), 1e-9) << "scale = " << scale;
    if (scale == 1.0) {  // Bayes: p(x) p(y|x) ∝ p(x|y)
      EXPECT_LT((guided - component.score(x, one, s)).abs().max().item<double>(), 1e-9);
    }
  }
}

TEST(ClassifierGuidance, NoisyClassifierKeepsItsNoiseAndProcessThroughItsFile) {
  ClassifierOptions o;
  o.channels = 4;
  o.features = 8;
  o.noisy = true;
  o.noise_min = 0.01;
  o.noise_max = 20;
  auto gen = make_generator(1);
  Classifier net(std::vector<int64_t>{1, 8, 8}, 3, o, gen);
  net->eval();
  TempDir dir;
  save_classifier(dir / "c.safetensors", net, "mnist", 0.5, "process.name = vp");
  LoadedClassifier loaded = load_classifier(dir / "c.safetensors");
  EXPECT_TRUE(loaded.classifier->options().noisy);
  EXPECT_DOUBLE_EQ(loaded.classifier->options().noise_min, 0.01);
  EXPECT_DOUBLE_EQ(loaded.classifier->options().noise_max, 20);
  EXPECT_EQ(loaded.process, "process.name = vp");
  torch::Tensor x = torch::rand({5, 1, 8, 8}, gen), sigma = torch::tensor({0.01, 0.1, 1.0, 5.0, 20.0});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(loaded.classifier->logits(x, sigma), net->logits(x, sigma)));
  // The noise level is an input: the same image at another σ gives other logits; none means noise_min.
  EXPECT_FALSE(torch::allclose(net->logits(x, sigma), net->logits(x, sigma.flip(0))));
  EXPECT_TRUE(torch::allclose(net->logits(x), net->logits(x, torch::full({5}, 0.01))));
  EXPECT_THAT_ERROR(net->logits(x, torch::ones({4})), "sigma must be [5]");
  // A classifier of clean images records no process and takes one channel fewer.
  Classifier clean(std::vector<int64_t>{1, 8, 8}, 3, ClassifierOptions{}, gen);
  save_classifier(dir / "clean.safetensors", clean, "mnist", 0.5);
  LoadedClassifier back = load_classifier(dir / "clean.safetensors");
  EXPECT_FALSE(back.classifier->options().noisy);
  EXPECT_EQ(back.process, "");
}

TEST(ClassifierGuidance, LogProbabilitySeesTheClassifiersUnits) {
  // A VP process: x_t = m(t) x0 + s(t) z in [−1, 1] pixels; the classifier must see x_t / m(t) in [0, 1] units
  // with σ(t) = s(t) / m(t) halved (the width of [−1, 1]).
  ClassifierOptions o;
  o.channels = 4;
  o.features = 8;
  o.noisy = true;
  auto gen = make_generator(2);
  LoadedClassifier loaded;
  loaded.classifier = Classifier(std::vector<int64_t>{1, 4, 4}, 3, o, gen);
  loaded.classifier->eval();
  ProcessOptions po;
  po.name = "vp";
  Prepared prepared;
  prepared.process = make_process(po);
  prepared.train_data = torch::zeros({1, 16});
  const torch::Tensor labels = torch::tensor({0, 2, 1}, torch::kInt64);
  LogProbFn log_p = classifier_log_prob(loaded, prepared, "minus-one-one", labels);
  torch::Tensor x = torch::randn({3, 16}, gen), t = torch::tensor({0.1, 0.5, 0.9});
  torch::NoGradGuard no_grad;
  const torch::Tensor m = prepared.process->mean_coef(t).view({-1, 1});
  const torch::Tensor sigma = prepared.process->sigma(t) / 2;
  torch::Tensor logits = loaded.classifier->logits(((x / m + 1) / 2).view({3, 1, 4, 4}), sigma);
  torch::Tensor expected = torch::log_softmax(logits, 1).gather(1, labels.view({-1, 1})).squeeze(1);
  EXPECT_TRUE(torch::allclose(log_p(x, t), expected, 1e-5, 1e-6));
  EXPECT_THAT_ERROR(log_p(x.narrow(0, 0, 2), t.narrow(0, 0, 2)), "2 points but 3 labels");
}
