// models: Fourier features, parametrisations, input scaling, reproducible initialisation.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/models/score_model.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

// A network that returns a fixed function of its inputs, to test the parametrisation around it.
class Probe : public ScoreNetworkImpl {
 public:
  torch::Tensor last_x, last_log_sigma;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& = {}) override {
    last_x = x;
    last_log_sigma = log_sigma;
    return x * 3.0 + log_sigma.unsqueeze(1);
  }
};

}  // namespace

TEST(FourierFeatures, SinCosOfScaledInput) {
  auto gen = make_generator(1);
  FourierFeatures features(4, 2.0, gen);
  torch::Tensor c = torch::tensor({0.3f, -1.0f});
  torch::Tensor out = features->forward(c);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 8}));
  torch::Tensor W = features->named_buffers()["W"];
  torch::Tensor angle = 2 * M_PI * c.unsqueeze(1) * W.unsqueeze(0);
  EXPECT_TRUE(torch::allclose(out, torch::cat({torch::sin(angle), torch::cos(angle)}, 1), 1e-6, 1e-6));
  // W = scale · N(0, 1) drawn from the generator: the same draws again give the same frequencies.
  auto replay = make_generator(1);
  EXPECT_TRUE(torch::equal(W, 2.0 * torch::randn({4}, replay, torch::kFloat32)));
}

TEST(ScoreModel, ParametrisationsAndInputScaling) {
  torch::Tensor x = torch::tensor({{1.0f, -2.0f}, {0.5f, 4.0f}});
  torch::Tensor m = torch::ones({2}), s = torch::tensor({0.5f, 2.0f});
  for (auto [param, sign, divide] : std::vector<std::tuple<Parametrisation, float, bool>>{
           {Parametrisation::Score, 1.0f, true}, {Parametrisation::Eps, -1.0f, true}, {Parametrisation::Raw, 1.0f, false}}) {
    auto probe = std::make_shared<Probe>();
    ScoreModel model(probe, param, /*input_sigma_data=*/1.5);
    torch::Tensor out = model->score(x, m, s);
    torch::Tensor c_in = torch::rsqrt(s * s + 2.25).unsqueeze(1);
    EXPECT_TRUE(torch::allclose(probe->last_x, x * c_in));
    EXPECT_TRUE(torch::allclose(probe->last_log_sigma, torch::log(s)));
    torch::Tensor F = x * c_in * 3.0 + torch::log(s).unsqueeze(1);
    torch::Tensor expected = sign * (divide ? F / s.unsqueeze(1) : F);
    EXPECT_TRUE(torch::allclose(out, expected, 1e-6, 1e-6));
  }
}

TEST(ScoreModel, MeanCoefficientDividesTheInput) {
  // For processes with m(t) < 1 the network sees x/m and σ = s/m.
  auto probe = std::make_shared<Probe>();
  ScoreModel model(probe, Parametrisation::Score, 0.0);
  torch::Tensor x = torch::tensor({{1.0f, 1.0f}});
  model->score(x, torch::tensor({0.5f}), torch::tensor({0.25f}));
  EXPECT_TRUE(torch::allclose(probe->last_x, x * 2.0));
  EXPECT_NEAR(probe->last_log_sigma.item<float>(), std::log(0.5f), 1e-6);
}

TEST(Mlp, ShapesDepthAndSeededInitialisation) {
  ModelOptions o;
  o.width = 32;
  o.depth = 2;
  o.sigma_data = 1.0;
  auto g1 = make_generator(7), g2 = make_generator(7), g3 = make_generator(8);
  ScoreModel a = make_model(o, 3, g1), b = make_model(o, 3, g2), c = make_model(o, 3, g3);
  auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
  ASSERT_EQ(pa.size(), 6u);  // 3 linear layers
  bool any_differs = false;
  for (const auto& item : pa) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
    any_differs |= !torch::equal(item.value(), pc[item.key()]);
  }
  EXPECT_TRUE(any_differs);
  torch::Tensor out = a->score(torch::randn({5, 3}), torch::ones({5}), torch::full({5}, 0.3));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 3}));
  // Same default initialisation as PyTorch's Linear: U(±1/√fan_in).
  auto first = pa["net.layer0.weight"];
  double bound = 1.0 / std::sqrt(3.0 + 2 * o.fourier_features);
  EXPECT_LE(first.abs().max().item<double>(), bound);
  EXPECT_GT(first.abs().max().item<double>(), 0.9 * bound);
}

TEST(Mlp, PeerArchitectureWithLogSigmaInput) {
  ModelOptions o;
  o.embedding = "log-sigma";
  o.param = "raw";
  o.input_scaling = false;
  auto gen = make_generator(1);
  ScoreModel model = make_model(o, 2, gen);
  auto params = model->named_parameters();
  // seed 001's ScoreNet: Linear(3,128), Linear(128,128) x2, Linear(128,2).
  EXPECT_EQ(params["net.layer0.weight"].sizes(), (std::vector<int64_t>{128, 3}));
  EXPECT_EQ(params["net.layer3.weight"].sizes(), (std::vector<int64_t>{2, 128}));
  EXPECT_EQ(model->named_buffers().size(), 0u);
}

TEST(Mlp, RejectsBadOptions) {
  ModelOptions o;
  o.sigma_data = 0.0;  // input scaling on but no σ_data
  auto gen = make_generator(1);
  EXPECT_THROW(make_model(o, 2, gen), Error);
  o.sigma_data = 1.0;
  o.activation = "swish";
  EXPECT_THROW(make_model(o, 2, gen), Error);
  o.activation = "silu";
  o.name = "unet3d";
  EXPECT_THROW(make_model(o, 2, gen), Error);
}

TEST(ScoreModel, DenoiserPreconditioningIsEdms) {
  // D = c_skip x̂ + c_out F(c_in x̂), s = (D − x̂)/(m σ²) (Karras et al. 2022, Table 1), here with m = 0.8.
  auto probe = std::make_shared<Probe>();
  const double sd = 0.5;
  ScoreModel model(probe, Parametrisation::Denoiser, sd);
  torch::Tensor x = torch::tensor({{1.0f, -2.0f}, {0.5f, 4.0f}});
  torch::Tensor m = torch::full({2}, 0.8f), s = torch::tensor({0.4f, 1.6f});
  torch::Tensor out = model->score(x, m, s);
  torch::Tensor sigma = (s / m).unsqueeze(1), x_hat = x / 0.8f;
  torch::Tensor c_in = torch::rsqrt(sigma * sigma + sd * sd);
  torch::Tensor F = x_hat * c_in * 3.0 + torch::log(sigma);
  torch::Tensor D = sd * sd / (sigma * sigma + sd * sd) * x_hat + sigma * sd * c_in * F;
  EXPECT_TRUE(torch::allclose(out, (D - x_hat) / (0.8f * sigma * sigma), 1e-5, 1e-5));
}

TEST(ScoreModel, TimeConditionedModelsSeeTheTime) {
  auto probe = std::make_shared<Probe>();
  ScoreModel model(probe, Parametrisation::Score, 0.0, /*condition_on_time=*/true);
  torch::Tensor x = torch::tensor({{1.0f, 1.0f}});
  EXPECT_THAT_ERROR(model->score(x, torch::ones({1}), torch::ones({1})), "conditioned on time");
  model->score(x, torch::ones({1}), torch::ones({1}), torch::tensor({0.3f}));
  EXPECT_NEAR(probe->last_log_sigma.item<float>(), 0.3f, 1e-7);
}
