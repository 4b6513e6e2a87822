// experiments/toolkit: the Fisher divergence the comparison experiments report, against closed forms.
#include <gtest/gtest.h>

#include "scorediff/data/toy.hpp"
#include "scorediff/experiments/toolkit.hpp"
#include "scorediff/models/analytic.hpp"

using namespace scorediff;

TEST(Toolkit, FisherDivergenceIsZeroForTheTruthAndScalesAsTheError) {
  // Data N(0, I) in 2-D. Under VP every marginal is N(0, I), so the true score at any time is −x and
  // E‖s‖² = D exactly; drawing x̃ without the process' m(t) (x + σε) would give D (1 + σ²) instead.
  DataOptions data;
  data.name = "mixture";
  data.weights = {1.0};
  data.means = {{0.0, 0.0}};
  data.std = {{1.0}};
  resolve(data);
  auto dataset = make_dataset(data);
  for (const std::string process_name : {"vp", "ve"}) {
    ProcessOptions po;
    po.name = process_name;
    po.sigma_max = 10;
    auto process = make_process(po);
    ScoreFn truth = mixture_score_fn(std::shared_ptr<const GaussianMixture>(dataset, dataset->mixture()), process);
    const double sigma = 2.0;
    Fisher exact = fisher_divergence(truth, truth, *process, *dataset, sigma, 20000, 3);
    EXPECT_LT(exact.divergence, 1e-10 * exact.scale) << process_name;  // the model side sees float32 points
    // VP: D = 2 (m = 1/√(1 + σ²) keeps unit variance); VE: the data plus σ² noise, D/(1 + σ²).
    const double expected = process_name == "vp" ? 2.0 : 2.0 / (1 + sigma * sigma);
    EXPECT_NEAR(exact.scale, expected, 0.05 * expected) << process_name;
    ScoreFn zero = [](const torch::Tensor& x, const torch::Tensor&) { return torch::zeros_like(x); };
    Fisher none = fisher_divergence(zero, truth, *process, *dataset, sigma, 20000, 3);
    EXPECT_NEAR(none.divergence / none.scale, 1.0, 1e-9) << process_name;
    ScoreFn shrunk = [truth](const torch::Tensor& x, const torch::Tensor& t) { return 0.9 * truth(x, t); };
    Fisher part = fisher_divergence(shrunk, truth, *process, *dataset, sigma, 20000, 3);
    EXPECT_NEAR(part.divergence / part.scale, 0.01, 1e-5) << process_name;
  }
}
