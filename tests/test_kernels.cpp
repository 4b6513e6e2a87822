// The CPU kernels (src/kernels): exp, bias + SiLU in float32 and bfloat16, and the GEMM, each against ATen.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/kernels/activations.hpp"
#include "scorediff/kernels/gemm.hpp"

using namespace scorediff;

TEST(Kernels, ExpIsAccurateToTwoUlp) {
  torch::Tensor x = torch::linspace(-87.0, 88.0, 200001, torch::kFloat32);
  torch::Tensor y = torch::empty_like(x);
  fast_exp(x.data_ptr<float>(), y.data_ptr<float>(), x.numel());
  torch::Tensor exact = torch::exp(x.to(torch::kFloat64));
  double worst = ((y.to(torch::kFloat64) - exact).abs() / exact).max().item<double>();
  EXPECT_LT(worst, 3e-7);
  // The scalar tail (n not a multiple of the vector width) agrees too.
  float tail_in[3] = {-1.5f, 0.0f, 10.0f}, tail_out[3];
  fast_exp(tail_in, tail_out, 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(tail_out[i] / std::exp(static_cast<double>(tail_in[i])), 1.0, 3e-7);
}

TEST(Kernels, BiasSiluMatchesATen) {
  auto gen = make_generator(1);
  for (int64_t cols : {128, 37}) {  // a multiple of the vector width and one with a scalar tail
    torch::Tensor in = 30 * torch::randn({257, cols}, gen), bias = torch::randn({cols}, gen);
    in[0][0] = -200.0f;  // saturated ends
    in[1][1] = 200.0f;
    torch::Tensor out = torch::empty_like(in);
    bias_silu_out(out, in, bias);
    torch::Tensor expected = torch::silu((in + bias).to(torch::kFloat64));
    EXPECT_TRUE(torch::allclose(out.to(torch::kFloat64), expected, 1e-6, 1e-6)) << cols;
    // In place works as well (the inference path never needs it, but the contract allows aliasing).
    torch::Tensor copy = in.clone();
    bias_silu_out(copy, copy, bias);
    EXPECT_TRUE(torch::equal(copy, out));
  }
}

TEST(Kernels, BiasSiluWithBFloat16InputOrOutput) {
  auto gen = make_generator(2);
  for (int64_t cols : {128, 37}) {
    torch::Tensor in = 4 * torch::randn({129, cols}, gen), bias = torch::randn({cols}, gen);
    torch::Tensor in16 = in.to(torch::kBFloat16);
    // float32 in, bfloat16 out: the float32 result rounded to nearest even, as ATen rounds.
    torch::Tensor out16 = torch::empty_like(in16), out32 = torch::empty_like(in);
    bias_silu_out(out16, in, bias);
    bias_silu_out(out32, in, bias);
    EXPECT_TRUE(torch::equal(out16, out32.to(torch::kBFloat16))) << cols;
    // bfloat16 in: widened exactly, so the float32 result is that of the widened input.
    torch::Tensor widened = torch::empty_like(in), reference = torch::empty_like(in);
    bias_silu_out(widened, in16, bias);
    bias_silu_out(reference, in16.to(torch::kFloat32), bias);
    EXPECT_TRUE(torch::equal(widened, reference)) << cols;
    torch::Tensor both = torch::empty_like(in16);
    bias_silu_out(both, in16, bias);
    EXPECT_TRUE(torch::equal(both, reference.to(torch::kBFloat16))) << cols;
  }
}

// scorediff's GEMM (libxsmm's kernels per block of 512 rows and slice of 256 of k, BLAS without libxsmm)
// against ATen's matmul in float64, over shapes that exercise every tail: few and many rows, rows across the
// 512-row blocks (513, 1100), narrow and wide outputs, k = 0 and k across the 256 slice, both storage orders of
// both operands, and beta 0 and 1.
TEST(Kernels, GemmMatchesATenForEveryShapeAndLayout) {
  if (!fast_gemm_available()) GTEST_SKIP() << "no libxsmm and no BLAS sgemm: gemm cannot run here";
  torch::manual_seed(11);
  const std::vector<int64_t> ms{1, 7, 8, 13, 64, 67, 256, 513, 1100}, ns{1, 2, 15, 16, 17, 31, 32, 33, 128}, ks{0, 1, 3, 129, 300};
  int checked = 0;
  for (int64_t m : ms)
    for (int64_t n : ns)
      for (int64_t k : ks)
        for (int layout = 0; layout < 4; ++layout)
          for (float beta : {0.0f, 1.0f}) {
            const bool ta = layout & 1, tb = layout & 2;
            if ((m > 64 && n < 16 && k > 3) || (m < 64 && n > 32 && k > 129)) continue;  // keep the test short
            if (m > 256 && (n % 16 != 1 || k == 0 || k == 129)) continue;
            torch::Tensor a = ta ? torch::randn({k, m}) : torch::randn({m, k});
            torch::Tensor b = tb ? torch::randn({n, k}) : torch::randn({k, n});
            torch::Tensor c = torch::randn({m, n});
            torch::Tensor opa = (ta ? a.t() : a).to(torch::kFloat64), opb = (tb ? b.t() : b).to(torch::kFloat64);
            torch::Tensor expected = opa.matmul(opb) + beta * c.to(torch::kFloat64);
            torch::Tensor c_before = c.clone();
            gemm(ta, tb, m, n, k, a.data_ptr<float>(), a.size(1), b.data_ptr<float>(), b.size(1), beta,
                 c.data_ptr<float>(), n);
            // The float32 rounding bound of a k-term dot product, (k + 1) u Σ|a||b| (+ |c| for beta), per entry;
            // a wrong index or a lost tile gives errors of order one.
            torch::Tensor bound = (k + 2) * 6e-8 * (opa.abs().matmul(opb.abs()) + beta * c_before.abs().to(torch::kFloat64)) + 1e-12;
            ASSERT_LE(((c.to(torch::kFloat64) - expected).abs() / bound).max().item<double>(), 1.0)
                << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " beta=" << beta;
            ++checked;
          }
  EXPECT_GT(checked, 1000);
  // Padded rows: every operand a view into a wider buffer (lda, ldb, ldc larger than the row).
  for (int64_t n : {2, 40}) {
    const int64_t m = 37, k = 19;
    for (int layout = 0; layout < 4; ++layout) {
      const bool ta = layout & 1, tb = layout & 2;
      torch::Tensor a_buf = torch::randn({ta ? k : m, (ta ? m : k) + 5}), b_buf = torch::randn({tb ? n : k, (tb ? k : n) + 3});
      torch::Tensor c_buf = torch::randn({m, n + 7});
      torch::Tensor a = a_buf.narrow(1, 0, ta ? m : k), b = b_buf.narrow(1, 0, tb ? k : n);
      torch::Tensor opa = (ta ? a.t() : a).to(torch::kFloat64), opb = (tb ? b.t() : b).to(torch::kFloat64);
      torch::Tensor expected = opa.matmul(opb), padding = c_buf.narrow(1, n, 7).clone();
      gemm(ta, tb, m, n, k, a_buf.data_ptr<float>(), a_buf.size(1), b_buf.data_ptr<float>(), b_buf.size(1), 0.0f,
           c_buf.data_ptr<float>(), c_buf.size(1));
      EXPECT_LT((c_buf.narrow(1, 0, n).to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-4)
          << "padded n=" << n << " ta=" << ta << " tb=" << tb;
      EXPECT_TRUE(torch::equal(c_buf.narrow(1, n, 7), padding)) << "wrote outside C, n=" << n;
    }
  }
}

// The one-node DSM σ²-weighted loss against ATen's composition: values and the gradient in `predicted`.