// GroupNorm + SiLU fused (kernels/group_norm.hpp, models/group_norm_act.hpp): the kernels against float64
// ATen and autograd for every tail, group size, output type and both code paths; the autograd node against
// ATen's composition, differentiated once and twice; and the U-Net's output and gradients with the fused
// node against the same network through ATen.
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/kernels/group_norm.hpp"
#include "scorediff/models/group_norm_act.hpp"
#include "scorediff/models/unet.hpp"
#include "test_util.hpp"
#include "tiny_unet.hpp"

namespace scorediff {
namespace {

// The mask of d over a tensor of x's shape, from the portable scalar hash (the kernels compute it in AVX-512).
torch::Tensor mask_of(const DropoutSpec& d, const torch::Tensor& x) {
  std::vector<float> m(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) m[static_cast<size_t>(i)] = dropout_scale(d, i);
  return torch::tensor(m).reshape(x.sizes());
}

torch::Tensor group_norm_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                                   int64_t groups, bool silu, const DropoutSpec& d = {}) {
  torch::Tensor y = torch::group_norm(x, groups, w, b, 1e-6);
  y = silu ? torch::silu(y) : y;
  return d.p > 0 ? y * mask_of(d, x).to(x.scalar_type()) : y;
}

double relative(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max() / b.to(torch::kFloat64).abs().max().clamp_min(1e-30))
      .item<double>();
}

TEST(GroupNormAct, KernelsMatchFloat64AtenForwardAndBackward) {
  auto gen = make_generator(21);
  // hw: a multiple of 16, tails of 1, 5 and 15 beyond one, under one vector, and a single pixel.
  for (int64_t hw : {16, 17, 21, 49, 5, 1})
    for (int64_t groups : {1, 3, 12})
      for (bool silu : {true, false})
        for (bool bf16 : {false, true})
          for (bool simd : {true, false})
            for (double p : {0.0, 0.3}) {
            // A group of one element normalises float32 rounding noise to ±1e-4 (1/sqrt(eps) times it) where
            // float64 gives zero; the U-Net keeps at least four channels per group (norm_groups).
            if (hw * 12 / groups == 1) continue;
            SCOPED_TRACE(testing::Message() << "hw " << hw << " groups " << groups << " silu " << silu << " bf16 " << bf16
                                            << " simd " << simd << " p " << p);
            const GroupNormShape s{3, 12, hw, groups};
            const DropoutSpec d{p, 77, 5};
            // An offset and a spread per channel, as real activations have.
            torch::Tensor x = torch::randn({3, 12, hw}, gen) * (1 + torch::rand({1, 12, 1}, gen) * 3) +
                              torch::randn({1, 12, 1}, gen) * 2;
            torch::Tensor w = torch::randn({12}, gen), b = torch::randn({12}, gen);
            torch::Tensor dy = torch::randn({3, 12, hw}, gen);
            if (bf16) dy = dy.to(torch::kBFloat16);
            torch::Tensor mean = torch::empty({3, groups}), rstd = torch::empty({3, groups});
            torch::Tensor y = torch::empty({3, 12, hw}, bf16 ? torch::kBFloat16 : torch::kFloat32);
            torch::Tensor dx = torch::empty({3, 12, hw}), dw = torch::empty({3, 12}), db = torch::empty({3, 12});
            if (bf16) {
              group_norm_act_forward(x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(),
                                     y.data_ptr<c10::BFloat16>(), mean.data_ptr<float>(), rstd.data_ptr<float>(), s,
                                     1e-6f, silu, d, simd);
              group_norm_act_backward(dy.data_ptr<c10::BFloat16>(), x.data_ptr<float>(), w.data_ptr<float>(),
                                      b.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                                      dx.data_ptr<float>(), dw.data_ptr<float>(), db.data_ptr<float>(), s, silu, d, simd);
            } else {
              group_norm_act_forward(x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(),
                                     mean.data_ptr<float>(), rstd.data_ptr<float>(), s, 1e-6f, silu, d, simd);
              group_norm_act_backward(dy.data_ptr<float>(), x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(),
                                      mean.data_ptr<float>(), rstd.data_ptr<float>(), dx.data_ptr<float>(),
                                      dw.data_ptr<float>(), db.data_ptr<float>(), s, silu, d, simd);
            }
            torch::Tensor xd = x.to(torch::kFloat64).requires_grad_(true);
            torch::Tensor wd = w.to(torch::kFloat64).requires_grad_(true), bd = b.to(torch::kFloat64).requires_grad_(true);
            torch::Tensor ref = group_norm_reference(xd, wd, bd, groups, silu, d);
            auto grads = torch::autograd::grad({ref}, {xd, wd, bd}, {dy.to(torch::kFloat64)});
            // bfloat16 output: rounded to 8 significant bits (relative 2^-9 of each value, so of the largest).
            EXPECT_LT(relative(y, ref), bf16 ? 4e-3 : 2e-6);
            EXPECT_LT(relative(dx, grads[0]), 2e-5);
            EXPECT_LT(relative(dw.sum(0), grads[1]), 2e-5);
            EXPECT_LT(relative(db.sum(0), grads[2]), 2e-5);
            // The saved statistics are the group's mean and 1/sqrt(variance + eps).
            torch::Tensor xg = x.reshape({3, groups, -1}).to(torch::kFloat64);
            EXPECT_LT(relative(mean, xg.mean(-1)), 1e-5);
            EXPECT_LT(relative(rstd, (xg.var(-1, false) + 1e-6).rsqrt()), 1e-5);
          }
}

TEST(GroupNormAct, TwoThreadsSplitTheGroupsAndGiveTheOneThreadResultBitForBit) {
  // The suite runs with one intra-op thread per test (CMakeLists.txt), so the OpenMP split is exercised here: each
  // (image, group) is computed whole by one thread, so the split changes nothing, also at an uneven 5 × 7 groups.
  auto gen = make_generator(22);
  const GroupNormShape s{5, 14, 21, 7};
  const DropoutSpec d{0.3, 9, 2};
  torch::Tensor x = torch::randn({5, 14, 21}, gen), w = torch::randn({14}, gen), b = torch::randn({14}, gen);
  torch::Tensor dy = torch::randn({5, 14, 21}, gen);
  auto run = [&](int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    std::vector<torch::Tensor> out = {torch::empty({5, 14, 21}), torch::empty({5, 7}), torch::empty({5, 7}),
                                      torch::empty({5, 14, 21}), torch::empty({5, 14}), torch::empty({5, 14})};
    group_norm_act_forward(x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), out[0].data_ptr<float>(),
                           out[1].data_ptr<float>(), out[2].data_ptr<float>(), s, 1e-6f, true, d, true);
    group_norm_act_backward(dy.data_ptr<float>(), x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(),
                            out[1].data_ptr<float>(), out[2].data_ptr<float>(), out[3].data_ptr<float>(),
                            out[4].data_ptr<float>(), out[5].data_ptr<float>(), s, true, d, true);
    at::set_num_threads(before);
    return out;
  };
  const auto one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], two[i])) << "output " << i;
  EXPECT_LT(relative(one[0], group_norm_reference(x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64),
                                                  7, true, d)),
            2e-6);
}

TEST(GroupNormAct, DropoutMasksKeepOneMinusPIndependentlyAndShardByOffset) {
  // 2^20 draws at p = 0.1: the kept fraction within 5 binomial standard deviations (3e-4 · 5) of 0.9, and
  // neighbours (i, i + 1), (i, i + 16) and the same index under the next key uncorrelated within 5/√n.
  const int64_t n = int64_t{1} << 20;
  torch::Tensor m = torch::empty({n}), next = torch::empty({n});
  dropout_scale_fill({0.1, 1234, 0}, 0, n, m.data_ptr<float>());
  dropout_scale_fill({0.1, 1235, 0}, 0, n, next.data_ptr<float>());
  const float scale = static_cast<float>(1 / 0.9);
  EXPECT_TRUE(((m == 0) | (m == scale)).all().item<bool>());
  torch::Tensor keep = (m > 0).to(torch::kFloat64), keep_next = (next > 0).to(torch::kFloat64);
  EXPECT_NEAR(keep.mean().item<double>(), 0.9, 5 * std::sqrt(0.09 / n));
  auto correlation = [](const torch::Tensor& a, const torch::Tensor& b) {
    torch::Tensor ca = a - a.mean(), cb = b - b.mean();
    return ((ca * cb).mean() / (ca.std(false) * cb.std(false))).item<double>();
  };
  const double bound = 5 / std::sqrt(static_cast<double>(n));
  EXPECT_LT(std::abs(correlation(keep.slice(0, 0, n - 1), keep.slice(0, 1, n))), bound);
  EXPECT_LT(std::abs(correlation(keep.slice(0, 0, n - 16), keep.slice(0, 16, n))), bound);
  EXPECT_LT(std::abs(correlation(keep, keep_next)), bound);
  // The AVX-512 fill equals the scalar hash, and a shard (offset) draws its slice of the global mask.
  for (int64_t i : {int64_t{0}, int64_t{17}, n - 1}) EXPECT_EQ(m[i].item<float>(), dropout_scale({0.1, 1234, 0}, i));
  torch::Tensor shard = torch::empty({1000});
  dropout_scale_fill({0.1, 1234, 4000}, 0, 1000, shard.data_ptr<float>());
  EXPECT_TRUE(torch::equal(shard, m.slice(0, 4000, 5000)));
  EXPECT_EQ(dropout_scale({0.0, 1234, 0}, 3), 1.0f);
}

TEST(GroupNormAct, NodeMatchesAtenOnceAndTwice) {
  auto gen = make_generator(22);
  torch::nn::GroupNorm norm = random_group_norm(4, 16, gen);
  torch::Tensor x0 = torch::randn({2, 16, 5, 7}, gen) * 2 + 1, v = torch::randn({2, 16, 5, 7}, gen);
  torch::Tensor u = torch::randn({2, 16, 5, 7}, gen);
  for (bool silu : {true, false}) {
    SCOPED_TRACE(silu);
    std::vector<torch::Tensor> out[2];
    for (bool fused : {false, true}) {
      torch::Tensor x = x0.clone().requires_grad_(true);
      torch::Tensor y = group_norm_act(x, norm, silu, false, fused);
      // Once: d(y·v)/d(x, γ, β), the kernels' backward. Twice: d(∂(y·v)/∂x · u)/dγ, which needs the gradient
      // to be differentiable (create_graph: ATen's composition, recomputed).
      auto g = torch::autograd::grad({(y * v).sum()}, {x, norm->weight, norm->bias}, {}, /*retain_graph=*/true);
      torch::Tensor first = torch::autograd::grad({(y * v).sum()}, {x}, {}, true, /*create_graph=*/true)[0];
      torch::Tensor second = torch::autograd::grad({(first * u).sum()}, {norm->weight})[0];
      out[fused] = {y.detach(), g[0].detach(), g[1].detach(), g[2].detach(), second};
    }
    for (size_t i = 0; i < out[0].size(); ++i) EXPECT_LT(relative(out[1][i], out[0][i]), 2e-5) << i;
  }
  // bfloat16 output, as a bfloat16 convolution takes it: ATen's float32 result rounded.
  torch::Tensor y = group_norm_act(x0, norm, true, true, true), ref = group_norm_act(x0, norm, true, true, false);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_LT(relative(y, ref), 8e-3);
  // A float64 network (gradient checks) takes ATen's path and stays float64.
  torch::nn::GroupNorm norm64(torch::nn::GroupNormOptions(4, 16).eps(1e-6));
  norm64->to(torch::kFloat64);
  EXPECT_EQ(group_norm_act(x0.to(torch::kFloat64), norm64, true, false).scalar_type(), torch::kFloat64);
}

TEST(GroupNormAct, UnetWithTheFusedNodeEqualsTheAtenNetwork) {
  for (const char* precision : {"float32", "bfloat16"}) {
    SCOPED_TRACE(precision);
    ModelOptions o = tiny_unet();
    o.dropout = 0.2;
    o.conv_precision = precision;
    std::vector<torch::Tensor> results[2];
    for (bool fused : {false, true}) {
      auto gen = make_generator(23);
      ScoreModel model = make_model(o, 64, gen);
      {
        auto g = make_generator(24);
        torch::NoGradGuard no_grad;
        for (auto& p : model->parameters()) p.copy_(0.2 * torch::randn(p.sizes(), g, p.options()));
      }
      dynamic_cast<UnetImpl&>(model->network()).set_fused_norm(fused);
      model->train();  // dropout on: both paths must draw the same masks
      torch::Tensor x = torch::randn({4, 64}, make_generator(25)), s = torch::tensor({0.1f, 0.5f, 1.0f, 3.0f});
      torch::Tensor out = model->score(x, torch::ones({4}), s);
      out.square().sum().backward();
      results[fused].push_back(out.detach());
      for (const auto& p : model->parameters()) results[fused].push_back(p.grad().clone());
    }
    // float32: the same arithmetic up to summation order. bfloat16: the fused node rounds its output to
    // bfloat16 once, as the cast after ATen's SiLU does; differences come from float32 rounding before it.
    const double bound = std::string(precision) == "float32" ? 1e-4 : 2e-2;
    for (size_t i = 0; i < results[0].size(); ++i) EXPECT_LT(relative(results[1][i], results[0][i]), bound) << i;
  }
}

}  // namespace
}  // namespace scorediff
