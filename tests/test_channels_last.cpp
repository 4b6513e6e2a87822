// Channels-last (NHWC) U-Net: the fused GroupNorm + SiLU kernels in that layout against float64 ATen and autograd
// (every output type, both code paths, widths with and without the vector path, dropout with the NCHW masks); the
// autograd node keeps the layout and equals the NCHW node; and the whole U-Net with model.channels_last equals
// the NCHW network, forward and backward, in float32 and bfloat16.
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/kernels/group_norm.hpp"
#include "scorediff/models/group_norm_act.hpp"
#include "scorediff/models/unet.hpp"
#include "test_util.hpp"
#include "tiny_unet.hpp"

namespace scorediff {
namespace {

double relative(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return ((a64 - b64).abs().max() / b64.abs().max().clamp_min(1e-30)).item<double>();
}

// The dropout factors of d for an NCHW tensor of this shape, element by element from the portable hash.
torch::Tensor nchw_mask(const DropoutSpec& d, at::IntArrayRef shape) {
  torch::Tensor m = torch::empty(shape);
  float* p = m.data_ptr<float>();
  for (int64_t i = 0; i < m.numel(); ++i) p[i] = dropout_scale(d, i);
  return m;
}

TEST(ChannelsLast, KernelsMatchFloat64AtenWithTheNchwMasks) {
  auto gen = make_generator(31);
  const int64_t n = 3;
  // 16 and 48 channels take the AVX-512 path; 12 the portable loops whatever simd says.
  for (int64_t channels : {16, 48, 12})
    for (int64_t hw : {49, 5, 1})
      for (int64_t groups : {1, 4})
        for (bool silu : {true, false})
          for (bool bf16 : {false, true})
            for (bool simd : {true, false})
              for (double p : {0.0, 0.3}) {
                if (hw * channels / groups < 4) continue;  // float32 noise normalised up (see test_group_norm.cpp)
                SCOPED_TRACE(testing::Message() << "channels " << channels << " hw " << hw << " groups " << groups
                                                << " silu " << silu << " bf16 " << bf16 << " simd " << simd
                                                << " p " << p);
                const GroupNormShape s{n, channels, hw, groups, /*channels_last=*/true};
                const DropoutSpec d{p, 78, 3};
                torch::Tensor x = torch::randn({n, channels, hw}, gen) * (1 + torch::rand({1, channels, 1}, gen) * 3) +
                                  torch::randn({1, channels, 1}, gen) * 2;
                torch::Tensor w = torch::randn({channels}, gen), b = torch::randn({channels}, gen);
                torch::Tensor dy = torch::randn({n, channels, hw}, gen);
                if (bf16) dy = dy.to(torch::kBFloat16);
                // The kernels see [n, hw, channels]; the reference works on [n, channels, hw].
                torch::Tensor xl = x.transpose(1, 2).contiguous(), dyl = dy.transpose(1, 2).contiguous();
                torch::Tensor mean = torch::empty({n, groups}), rstd = torch::empty({n, groups});
                torch::Tensor yl = torch::empty({n, hw, channels}, bf16 ? torch::kBFloat16 : torch::kFloat32);
                torch::Tensor dxl = torch::empty({n, hw, channels}), dw = torch::empty({n, channels});
                torch::Tensor db = torch::empty({n, channels});
                auto run = [&](auto* y, const auto* g) {
                  group_norm_act_forward(xl.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), y,
                                         mean.data_ptr<float>(), rstd.data_ptr<float>(), s, 1e-6f, silu, d, simd);
                  group_norm_act_backward(g, xl.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(),
                                          mean.data_ptr<float>(), rstd.data_ptr<float>(), dxl.data_ptr<float>(),
                                          dw.data_ptr<float>(), db.data_ptr<float>(), s, silu, d, simd);
                };
                if (bf16) run(yl.data_ptr<c10::BFloat16>(), dyl.data_ptr<c10::BFloat16>());
                else run(yl.data_ptr<float>(), dyl.data_ptr<float>());
                torch::Tensor xd = x.to(torch::kFloat64).requires_grad_(true);
                torch::Tensor wd = w.to(torch::kFloat64).requires_grad_(true);
                torch::Tensor bd = b.to(torch::kFloat64).requires_grad_(true);
                torch::Tensor ref = torch::group_norm(xd, groups, wd, bd, 1e-6);
                ref = silu ? torch::silu(ref) : ref;
                if (p > 0) ref = ref * nchw_mask(d, x.sizes()).to(torch::kFloat64);
                auto grads = torch::autograd::grad({ref}, {xd, wd, bd}, {dy.to(torch::kFloat64)});
                EXPECT_LT(relative(yl.transpose(1, 2), ref), bf16 ? 4e-3 : 2e-6);
                EXPECT_LT(relative(dxl.transpose(1, 2), grads[0]), 2e-5);
                EXPECT_LT(relative(dw.sum(0), grads[1]), 2e-5);
                EXPECT_LT(relative(db.sum(0), grads[2]), 2e-5);
                torch::Tensor xg = x.reshape({n, groups, -1}).to(torch::kFloat64);
                EXPECT_LT(relative(mean, xg.mean(-1)), 1e-5);
                EXPECT_LT(relative(rstd, (xg.var(-1, false) + 1e-6).rsqrt()), 1e-5);
              }
}

TEST(ChannelsLast, NodeKeepsTheLayoutAndEqualsTheNchwNode) {
  auto gen = make_generator(32);
  torch::nn::GroupNorm norm = random_group_norm(4, 32, gen);
  torch::Tensor x0 = torch::randn({3, 32, 5, 7}, gen) * 2 + 1, v = torch::randn({3, 32, 5, 7}, gen);
  const DropoutSpec d{0.2, 5, 0};
  for (int threads : {1, 2}) {
    SCOPED_TRACE(threads);
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    std::vector<torch::Tensor> out[2];
    for (bool channels_last : {false, true}) {
      torch::Tensor x = (channels_last ? x0.contiguous(torch::MemoryFormat::ChannelsLast) : x0.clone());
      x.requires_grad_(true);
      torch::Tensor y = group_norm_act(x, norm, true, false, true, d);
      EXPECT_EQ(y.is_contiguous(torch::MemoryFormat::ChannelsLast), channels_last);
      EXPECT_EQ(y.is_contiguous(), !channels_last);
      auto g = torch::autograd::grad({(y * v).sum()}, {x, norm->weight, norm->bias});
      EXPECT_EQ(g[0].is_contiguous(torch::MemoryFormat::ChannelsLast), channels_last);
      out[channels_last] = {y.detach(), g[0], g[1], g[2]};
    }
    at::set_num_threads(before);
    // The same masks (a dropped element is 0 in both) and the same values up to summation order.
    EXPECT_TRUE(torch::equal(out[0][0] == 0, out[1][0] == 0));
    for (size_t i = 0; i < out[0].size(); ++i) EXPECT_LT(relative(out[1][i], out[0][i]), i == 0 ? 2e-6 : 2e-5) << i;
  }
}

TEST(ChannelsLast, UnetEqualsTheNchwNetworkForwardAndBackward) {
  for (const char* precision : {"float32", "bfloat16"}) {
    SCOPED_TRACE(precision);
    ModelOptions o = tiny_unet({1, 8, 8});
    o.channels = 16;  // widths 16 and 32: the kernels' vector path
    o.dropout = 0.2;
    o.conv_precision = precision;
    std::vector<torch::Tensor> results[2];
    for (bool channels_last : {false, true}) {
      o.channels_last = channels_last;
      auto gen = make_generator(33);
      ScoreModel model = make_model(o, 64, gen);
      {
        auto g = make_generator(34);
        torch::NoGradGuard no_grad;
        for (auto& p : model->parameters()) p.copy_(0.2 * torch::randn(p.sizes(), g, p.options()));
      }
      model->train();  // dropout on: both layouts must draw the same masks
      torch::Tensor x = torch::randn({4, 64}, make_generator(35)), s = torch::tensor({0.1f, 0.5f, 1.0f, 3.0f});
      torch::Tensor out = model->score(x, torch::ones({4}), s);
      EXPECT_TRUE(out.is_contiguous());
      out.square().sum().backward();
      results[channels_last].push_back(out.detach());
      for (const auto& p : model->parameters()) results[channels_last].push_back(p.grad().clone());
    }
    // float32: the same arithmetic up to summation order (oneDNN's NHWC kernels sum in another order too).
    // bfloat16: the convolutions' outputs are rounded to 8 bits in either layout, from slightly different sums.
    const double bound = std::string(precision) == "float32" ? 1e-4 : 3e-2;
    ASSERT_EQ(results[0].size(), results[1].size());
    for (size_t i = 0; i < results[0].size(); ++i) EXPECT_LT(relative(results[1][i], results[0][i]), bound) << i;
  }
}

}  // namespace
}  // namespace scorediff
