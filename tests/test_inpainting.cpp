// Inpainting with the predictor–corrector sampler: driven by the exact score of a correlated Gaussian,
// the unknown coordinates follow the conditional Gaussian p(x_u | x_k) in closed form, and the known
// ones come back exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/samplers/predictor_corrector.hpp"
#include "test_util.hpp"

namespace scorediff {
namespace {

TEST(Inpainting, UnknownCoordinatesFollowTheConditionalGaussian) {
  torch::Tensor mean = torch::tensor({0.5, -1.0, 0.0}, torch::kFloat64);
  torch::Tensor cov = torch::tensor({{1.0, 0.8, 0.3}, {0.8, 1.0, 0.5}, {0.3, 0.5, 1.0}}, torch::kFloat64);
  auto gaussian = std::make_shared<AnalyticGaussian>(mean, cov);
  ProcessOptions po;
  po.name = "vp";
  auto process = make_process(po);
  ScoreFn score = gaussian_score_fn(gaussian, process);

  const int64_t n = 4000;
  const double known_value = 1.2;
  torch::Tensor known = torch::zeros({n, 3}, torch::kFloat32);
  known.select(1, 0).fill_(known_value);
  torch::Tensor mask = torch::tensor({{1.0f, 0.0f, 0.0f}});
  PcOptions o;
  o.steps = 500;
  at::Generator gen = make_generator(21);
  torch::Tensor x = process->prior_sample(n, 3, gen);
  SampleResult r = sample_pc_inpaint(score, *process, x, {known, mask}, o, gen);
  torch::Tensor s = r.samples.to(torch::kFloat64);

  EXPECT_TRUE(torch::equal(r.samples.select(1, 0), known.select(1, 0)));
  // x_u | x_k ~ N(μ_u + Σ_uk Σ_kk⁻¹ (x_k − μ_k), Σ_uu − Σ_uk Σ_kk⁻¹ Σ_ku).
  const double dk = known_value - 0.5;
  const double cond_mean[2] = {-1.0 + 0.8 * dk, 0.0 + 0.3 * dk};
  const double cond_cov[2][2] = {{1 - 0.64, 0.5 - 0.24}, {0.5 - 0.24, 1 - 0.09}};
  torch::Tensor u = s.slice(1, 1, 3);
  torch::Tensor centred = u - u.mean(0);
  torch::Tensor sample_cov = centred.t().mm(centred) / (n - 1);
  for (int j = 0; j < 2; ++j) {
    double se = std::sqrt(cond_cov[j][j] / n);
    EXPECT_NEAR(u.select(1, j).mean().item<double>(), cond_mean[j], 4 * se) << j;
    // Var of a sample variance ≈ 2σ⁴/n.
    EXPECT_NEAR(sample_cov[j][j].item<double>(), cond_cov[j][j], 4 * std::sqrt(2.0 / n) * cond_cov[j][j] + 0.01) << j;
  }
  EXPECT_NEAR(sample_cov[0][1].item<double>(), cond_cov[0][1], 0.04);
}

TEST(Inpainting, RejectsMismatchedShapes) {
  ProcessOptions po;
  po.name = "vp";
  auto process = make_process(po);
  auto gaussian = std::make_shared<AnalyticGaussian>(torch::zeros({2}, torch::kFloat64), torch::eye(2, torch::kFloat64));
  ScoreFn score = gaussian_score_fn(gaussian, process);
  at::Generator gen = make_generator(1);
  torch::Tensor x = torch::randn({4, 2});
  PcOptions o;
  o.steps = 2;
  EXPECT_THAT_ERROR(sample_pc_inpaint(score, *process, x, {torch::zeros({4, 3}), torch::ones({1, 2})}, o, gen),
                    "known images have shape [4, 3]");
  EXPECT_THAT_ERROR(sample_pc_inpaint(score, *process, x, {torch::zeros({4, 2}), torch::ones({2, 2})}, o, gen),
                    "the mask has shape [2, 2]");
}

}  // namespace
}  // namespace scorediff
