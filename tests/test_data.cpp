// data: the analytic mixture score against autograd of its log-density, exact sampling, toy sets.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/toy.hpp"

using namespace scorediff;

namespace {

GaussianMixture three_component_mixture() {
  // Diagonal, unequal components in 2-D.
  return GaussianMixture(torch::tensor({0.2, 0.5, 0.3}), torch::tensor({{5.0, 5.0}, {-5.0, -5.0}, {1.0, -3.0}}),
                         torch::tensor({{1.0, 0.5}, {0.7, 0.7}, {2.0, 1.0}}));
}

}  // namespace

TEST(GaussianMixture, ScoreEqualsAutogradOfLogDensity) {
  GaussianMixture mix = three_component_mixture();
  auto gen = make_generator(1);
  torch::Tensor x = 6 * torch::randn({64, 2}, gen, torch::kFloat64);
  for (double m : {1.0, 0.6}) {
    for (double s : {0.0, 0.1, 2.0}) {
      torch::Tensor mc = torch::full({64}, m, torch::kFloat64), sd = torch::full({64}, s, torch::kFloat64);
      torch::Tensor xr = x.clone().requires_grad_(true);
      torch::Tensor logp = mix.log_prob(xr, mc, sd).sum();
      torch::Tensor expected = torch::autograd::grad({logp}, {xr})[0];
      torch::Tensor score = mix.score(x, mc, sd);
      EXPECT_TRUE(torch::allclose(score, expected, 1e-9, 1e-9)) << "m=" << m << " s=" << s;
    }
  }
}

TEST(GaussianMixture, LogDensityOfOneComponentIsTheGaussian) {
  GaussianMixture g(torch::tensor({1.0}), torch::tensor({{1.0, -2.0}}), torch::tensor({{0.5, 2.0}}));
  torch::Tensor x = torch::tensor({{0.0, 0.0}, {1.0, -2.0}}, torch::kFloat64);
  // Noised by m = 0.5, s = 1: N(m μ, m² σ² + s²) per dimension.
  torch::Tensor var = torch::tensor({0.25 * 0.25 + 1.0, 0.25 * 4.0 + 1.0}, torch::kFloat64);
  torch::Tensor mean = torch::tensor({0.5, -1.0}, torch::kFloat64);
  torch::Tensor expected = (-0.5 * (x - mean).pow(2) / var - 0.5 * torch::log(2 * M_PI * var)).sum(1);
  torch::Tensor got = g.log_prob(x, torch::full({2}, 0.5, torch::kFloat64), torch::ones({2}, torch::kFloat64));
  EXPECT_TRUE(torch::allclose(got, expected, 1e-12, 1e-12));
}

TEST(GaussianMixture, SamplesHaveTheMixtureMoments) {
  GaussianMixture mix = three_component_mixture();
  auto gen = make_generator(2);
  torch::Tensor labels;
  torch::Tensor x = mix.sample(200000, gen, &labels).to(torch::kFloat64);
  torch::Tensor freq = torch::bincount(labels, {}, 3).to(torch::kFloat64) / 200000.0;
  EXPECT_TRUE(torch::allclose(freq, mix.weights(), 0, 0.005));
  torch::Tensor mean = (mix.weights().unsqueeze(1) * mix.means()).sum(0);
  EXPECT_TRUE(torch::allclose(x.mean(0), mean, 0, 0.03));
  // Component 3 only: its std per dimension.
  torch::Tensor third = x.index({labels == 2});
  EXPECT_TRUE(torch::allclose(third.std(0), mix.stds()[2], 0.02, 0));
}

TEST(GaussianMixture, NearestMeanAndValidation) {
  GaussianMixture mix = three_component_mixture();
  torch::Tensor x = torch::tensor({{4.0, 4.0}, {-6.0, -4.0}, {1.0, -2.5}});
  EXPECT_TRUE(torch::equal(mix.nearest_mean(x), torch::tensor({0, 1, 2}, torch::kInt64)));
  EXPECT_THROW(GaussianMixture(torch::tensor({1.0, 1.0}), torch::tensor({{0.0, 0.0}}), torch::tensor({1.0})), Error);
  EXPECT_THROW(GaussianMixture(torch::tensor({-1.0}), torch::tensor({{0.0, 0.0}}), torch::tensor({1.0})), Error);
  EXPECT_THROW(GaussianMixture(torch::tensor({1.0}), torch::tensor({{0.0, 0.0}}), torch::tensor({0.0})), Error);
}

TEST(Toy, SwissRollIsStandardisedByItsExactMoments) {
  auto gen = make_generator(3);
  torch::Tensor x = swiss_roll(1000000, gen).to(torch::kFloat64);
  EXPECT_NEAR(x.mean(0)[0].item<double>(), 0.0, 0.005);
  EXPECT_NEAR(x.mean(0)[1].item<double>(), 0.0, 0.005);
  EXPECT_NEAR(x.std(0)[0].item<double>(), 1.0, 0.005);
  EXPECT_NEAR(x.std(0)[1].item<double>(), 1.0, 0.005);
}

TEST(Toy, EveryDatasetSamplesFiniteTwoDimensionalPoints) {
  for (const auto& name : datasets().names()) {
    if (name == "fashion-mnist" || name == "mnist" || name == "png-folder") continue;  // images: test_images.cpp
    if (name == "table") continue;  // a file of its own: test_table.cpp
    DataOptions o;
    o.name = name;
    if (name == "mixture") o.means = {{0.0, 0.0}, {3.0, 3.0}};
    resolve(o);
    auto dataset = make_dataset(o);
    auto gen = make_generator(4);
    torch::Tensor x = dataset->sample(5000, gen);
    EXPECT_EQ(x.sizes(), (std::vector<int64_t>{5000, 2})) << name;
    EXPECT_TRUE(torch::isfinite(x).all().item<bool>()) << name;
    EXPECT_EQ(x.scalar_type(), torch::kFloat32) << name;
    const torch::Tensor p = x.to(torch::kFloat64);
    if (const GaussianMixture* reference = dataset->mixture()) {
      // Samples are as likely under the reference density as the reference's own samples (the mean
      // log-density differs by its standard error, about 0.02 here, when the sampler is right).
      auto other = make_generator(5);
      const double own = reference->log_prob(reference->sample(5000, other).to(torch::kFloat64)).mean().item<double>();
      EXPECT_NEAR(reference->log_prob(p).mean().item<double>(), own, 0.1) << name;
    } else if (name == "checkerboard") {
      // Every point in [-2, 2]² and in a dark cell: the cell's row and column have the same parity.
      EXPECT_TRUE((p.abs() <= 2).all().item<bool>());
      torch::Tensor cells = torch::floor(p + 2);
      EXPECT_TRUE(((cells.select(1, 0) + cells.select(1, 1)).remainder(2) == 0).all().item<bool>());
    } else if (name == "two-moons") {
      // Every point within 0.25 (5 noise std) of one of the arcs: the upper one centred at (−0.5, −0.25), the
      // lower one at (0.5, 0.25), both of radius 1.
      torch::Tensor upper = (p - torch::tensor({-0.5, -0.25}, torch::kFloat64)).norm(2, 1) - 1;
      torch::Tensor lower = (p - torch::tensor({0.5, 0.25}, torch::kFloat64)).norm(2, 1) - 1;
      EXPECT_LT(torch::minimum(upper.abs(), lower.abs()).max().item<double>(), 0.25);
    } else {
      ADD_FAILURE() << name << ": no check of its samples";
    }
  }
}

TEST(Toy, Mog2PresetAndOverrides) {
  DataOptions o;
  o.name = "mog2";
  resolve(o);
  EXPECT_EQ(o.weights, (std::vector<double>{0.2, 0.8}));
  EXPECT_EQ(o.means, (Matrix{{5, 5}, {-5, -5}}));
  DataOptions custom;
  custom.name = "mog2";
  custom.weights = {0.5, 0.3, 0.2};
  custom.means = {{0, 0}, {4, 0}, {0, 4}};
  auto dataset = make_dataset(custom);
  EXPECT_EQ(dataset->mixture()->components(), 3);
  EXPECT_NEAR(dataset->mixture()->weights()[2].item<double>(), 0.2, 1e-12);
}

TEST(Toy, CircleReferenceMatchesItsSamples) {
  // The circle's fine-mixture reference must describe its samples: mean log-density of fresh samples
  // under the reference equals the reference's own entropy estimate from its samples.
  DataOptions o;
  o.name = "circle";
  auto circle = make_dataset(o);
  auto gen = make_generator(5);
  torch::Tensor x = circle->sample(8000, gen).to(torch::kFloat64);
  torch::Tensor y = circle->mixture()->sample(8000, gen).to(torch::kFloat64);
  double a = circle->mixture()->log_prob(x).mean().item<double>();
  double b = circle->mixture()->log_prob(y).mean().item<double>();
  EXPECT_NEAR(a, b, 0.03);
  EXPECT_NEAR(x.norm(2, 1).mean().item<double>(), 1.0, 0.002);
}

TEST(Toy, MisconfiguredDataFailsWithOneLine) {
  DataOptions o;
  o.name = "swiss-roll";
  o.weights = {1.0};
  EXPECT_THROW(resolve(o), Error);
  DataOptions m;
  m.name = "mixture";
  EXPECT_THROW(resolve(m), Error);
  DataOptions w;
  w.name = "mog2";
  w.weights = {0.5, 0.3, 0.2};
  EXPECT_THROW(resolve(w), Error);
  DataOptions u;
  u.name = "moons";
  EXPECT_THROW(resolve(u), Error);
}

// Labels: the labelled draw is the plain draw (same random numbers, same points) plus each point's class.
TEST(Toy, LabelledDrawsAreThePlainDrawsWithTheirClasses) {
  // Draws n labelled points and checks that the plain draw from the same seed gives the same points.
  auto labelled_draw = [](const std::string& name, int64_t n, uint64_t seed) {
    DataOptions o;
    o.name = name;
    resolve(o);
    auto dataset = make_dataset(o);
    at::Generator a = make_generator(seed), b = make_generator(seed);
    LabelledPoints drawn = dataset->sample_labelled(n, a);
    EXPECT_TRUE(torch::equal(drawn.points, dataset->sample(n, b))) << name;
    return std::make_pair(dataset, drawn);
  };
  const auto [mog, drawn] = labelled_draw("mog2", 4000, 5);
  EXPECT_EQ(mog->classes(), 2);
  ASSERT_EQ(drawn.labels.numel(), 4000);
  // Means (5, 5) and (−5, −5) with unit std: a point's component is its nearest mean (an error has
  // probability ~1e-12), and the component shares follow the weights 0.2 / 0.8.
  EXPECT_TRUE(torch::equal(drawn.labels, mog->mixture()->nearest_mean(drawn.points.to(torch::kFloat64))));
  EXPECT_NEAR(drawn.labels.eq(0).to(torch::kFloat64).mean().item<double>(), 0.2, 0.02);
  // Unlabelled sets: the same points, no labels.
  const auto [moons, plain] = labelled_draw("two-moons", 100, 6);
  EXPECT_EQ(moons->classes(), 0);
  EXPECT_FALSE(plain.labels.defined());
}
