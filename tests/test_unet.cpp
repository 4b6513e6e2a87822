// U-Net score network: shapes, seeded initialisation, per-sample independence, gradients against finite
// differences, reproducible dropout, and the one-line errors for shapes it cannot take.
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/unet.hpp"
#include "test_util.hpp"
#include "tiny_unet.hpp"

namespace scorediff {
namespace {

// Gives the zero-initialised output layers random weights so that every path carries signal.
void randomise(torch::nn::Module& m, uint64_t seed) {
  auto gen = make_generator(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.copy_(0.2 * torch::randn(p.sizes(), gen, p.options()));
}

TEST(Unet, ShapesSeededInitialisationAndIdentityStart) {
  ModelOptions o = tiny_unet({2, 8, 8});
  auto g1 = make_generator(3), g2 = make_generator(3), g3 = make_generator(4);
  ScoreModel a = make_model(o, 128, g1), b = make_model(o, 128, g2), c = make_model(o, 128, g3);
  bool any_differs = false;
  auto pb = b->named_parameters(), pc = c->named_parameters();
  for (const auto& item : a->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
    any_differs |= !torch::equal(item.value(), pc[item.key()]);
  }
  EXPECT_TRUE(any_differs);
  torch::Tensor x = torch::randn({3, 128});
  torch::Tensor out = a->score(x, torch::ones({3}), torch::full({3}, 0.3));
  EXPECT_EQ(out.sizes(), x.sizes());
  // The output conv starts at zero, so the first score is exactly zero (and the first loss is the
  // objective's value for a zero score).
  EXPECT_EQ(out.abs().max().item<float>(), 0.0f);
  // Down: 2 blocks + 1 resample conv; middle: 2 blocks + attention; up: 2 × 2 blocks + 1 conv.
  EXPECT_TRUE(pb.contains("net.down1_block0.conv1.weight"));
  EXPECT_TRUE(pb.contains("net.up0_block1.skip.weight"));
  EXPECT_TRUE(pb.contains("net.down1_block0_attn.qkv.weight"));
  EXPECT_FALSE(pb.contains("net.down0_block0_attn.qkv.weight"));
}

TEST(Unet, SamplesInABatchDoNotInteract) {
  // GroupNorm and attention act within one image: an image's output must not depend on its batch.
  ModelOptions o = tiny_unet();
  auto gen = make_generator(5);
  ScoreModel model = make_model(o, 64, gen);
  randomise(*model, 6);
  model->eval();
  torch::Tensor x = torch::randn({4, 64}), std = torch::tensor({0.1f, 0.5f, 1.0f, 3.0f});
  torch::Tensor all = model->score(x, torch::ones({4}), std);
  for (int64_t i = 0; i < 4; ++i) {
    torch::Tensor one = model->score(x.slice(0, i, i + 1), torch::ones({1}), std.slice(0, i, i + 1));
    EXPECT_TRUE(torch::allclose(one, all.slice(0, i, i + 1), 1e-5, 1e-5)) << i;
  }
  // ...and it does depend on the noise level.
  torch::Tensor other = model->score(x, torch::ones({4}), std.flip(0));
  EXPECT_GT((other - all).abs().max().item<float>(), 1e-3);
}

TEST(Unet, BFloat16ConvolutionsTrackFloat32AndKeepFloat32Gradients) {
  // Mixed precision: the same weights with bfloat16 convolutions give the float32 output to bfloat16's
  // 8-bit mantissa (a few 1e-3 relative), and the parameters' gradients stay float32, close to float32's.
  ModelOptions o = tiny_unet();
  auto g1 = make_generator(8), g2 = make_generator(8);
  ScoreModel full = make_model(o, 64, g1);
  o.conv_precision = "bfloat16";
  ScoreModel mixed = make_model(o, 64, g2);
  randomise(*full, 9);
  randomise(*mixed, 9);
  torch::Tensor x = torch::randn({4, 64}, make_generator(10)), std = torch::tensor({0.1f, 0.5f, 1.0f, 3.0f});
  torch::Tensor a = full->score(x, torch::ones({4}), std), b = mixed->score(x, torch::ones({4}), std);
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);
  const double scale = a.abs().max().item<double>();
  const double err = (a - b).abs().max().item<double>() / scale;
  EXPECT_LT(err, 3e-2);
  EXPECT_GT(err, 0.0);  // the bfloat16 path did run
  a.square().sum().backward();
  b.square().sum().backward();
  auto pm = mixed->named_parameters();
  for (const auto& item : full->named_parameters()) {
    const torch::Tensor& ga = item.value().grad();
    const torch::Tensor& gb = pm[item.key()].grad();
    ASSERT_TRUE(gb.defined()) << item.key();
    EXPECT_EQ(gb.scalar_type(), torch::kFloat32) << item.key();
    const double norm = ga.norm().item<double>();
    if (norm > 0) {
      EXPECT_LT((ga - gb).norm().item<double>() / norm, 5e-2) << item.key();
    }
  }
}

TEST(Unet, InputGradientMatchesFiniteDifferences) {
  ModelOptions o = tiny_unet();
  auto gen = make_generator(7);
  ScoreModel model = make_model(o, 64, gen);
  randomise(*model, 8);
  model->to(torch::kFloat64);
  model->eval();
  torch::Tensor x = torch::randn({2, 64}, torch::kFloat64).requires_grad_(true);
  torch::Tensor m = torch::ones({2}, torch::kFloat64), s = torch::tensor({0.4, 1.2}, torch::kFloat64);
  torch::Tensor v = torch::randn({2, 64}, torch::kFloat64);
  torch::Tensor grad = torch::autograd::grad({(model->score(x, m, s) * v).sum()}, {x})[0];
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (int64_t j : {0, 9, 27, 36, 63}) {
    torch::Tensor e = torch::zeros_like(x);
    e.select(1, j).fill_(h);
    double fd = (((model->score(x + e, m, s) - model->score(x - e, m, s)) * v).sum() / (2 * h)).item<double>();
    double ad = grad.select(1, j).sum().item<double>();
    EXPECT_NEAR(ad, fd, 1e-6 * std::max(1.0, std::abs(fd))) << j;
  }
}

TEST(Unet, DropoutIsSeededAndItsStreamIsState) {
  ModelOptions o = tiny_unet();
  o.dropout = 0.3;
  auto g1 = make_generator(9), g2 = make_generator(9);
  ScoreModel a = make_model(o, 64, g1), b = make_model(o, 64, g2);
  randomise(*a, 10);
  randomise(*b, 10);
  torch::Tensor x = torch::randn({2, 64}), one = torch::ones({2}), s = torch::full({2}, 0.5);
  torch::Tensor a1 = a->score(x, one, s), b1 = b->score(x, one, s);
  EXPECT_TRUE(torch::equal(a1, b1));
  torch::Tensor a2 = a->score(x, one, s);
  EXPECT_FALSE(torch::equal(a1, a2));  // a new mask per call
  // Copying the buffers (as a checkpoint does) continues the same stream.
  auto ba = a->named_buffers();
  torch::NoGradGuard no_grad;
  for (auto& item : b->named_buffers()) item.value().copy_(ba[item.key()]);
  EXPECT_TRUE(torch::equal(a->score(x, one, s), b->score(x, one, s)));
  a->eval();
  EXPECT_TRUE(torch::equal(a->score(x, one, s), a->score(x, one, s)));
}

TEST(Unet, RejectsShapesItCannotTake) {
  auto gen = make_generator(1);
  ModelOptions o = tiny_unet({1, 14, 14});
  o.channel_mult = {1, 2, 2};
  EXPECT_THAT_ERROR(make_model(o, 196, gen), "image size 14x14 is not divisible by 4");
  o = tiny_unet();
  o.image_shape.clear();
  EXPECT_THAT_ERROR(make_model(o, 2, gen), "needs an image dataset");
  o = tiny_unet();
  o.attention = {5};
  EXPECT_THAT_ERROR(make_model(o, 64, gen), "no U-Net level has resolution 5");
  o = tiny_unet();
  o.channel_mult = {1, 1.5};
  EXPECT_THAT_ERROR(make_model(o, 64, gen), "whole numbers");
}

TEST(Unet, NormGroupsKeepFourChannelsPerGroup) {
  EXPECT_EQ(norm_groups(128), 32);
  EXPECT_EQ(norm_groups(32), 8);
  EXPECT_EQ(norm_groups(8), 2);
  EXPECT_EQ(norm_groups(6), 1);
}

}  // namespace
}  // namespace scorediff
