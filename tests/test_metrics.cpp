// metrics: sliced Wasserstein against closed forms; mode weights.
#include <gtest/gtest.h>

#include "scorediff/core/error.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/metrics/metrics.hpp"

using namespace scorediff;

TEST(SlicedWasserstein, IdenticalSetsGiveZero) {
  auto gen = make_generator(1), proj = make_generator(2);
  torch::Tensor a = torch::randn({3000, 2}, gen);
  EXPECT_NEAR(sliced_wasserstein(a, a, 128, proj), 0.0, 1e-12);
  // Order does not matter.
  torch::Tensor shuffled = a.index_select(0, torch::randperm(3000, gen));
  EXPECT_NEAR(sliced_wasserstein(a, shuffled, 128, proj), 0.0, 1e-12);
}

TEST(SlicedWasserstein, ShiftedSetGivesTheShift) {
  auto gen = make_generator(3), proj = make_generator(4);
  for (int64_t d : {2, 8}) {
    // Shifting moves every sorted projection by exactly θᵀc, so few points and many directions give
    // ‖c‖ up to the Monte-Carlo average over directions (relative sd ≈ 0.5% here).
    torch::Tensor a = torch::randn({200, d}, gen, torch::kFloat64);
    torch::Tensor c = torch::randn({d}, gen, torch::kFloat64);
    c = 1.7 * c / c.norm();
    EXPECT_NEAR(sliced_wasserstein(a, a + c, 20000, proj), 1.7, 0.02) << "D=" << d;
  }
}

TEST(SlicedWasserstein, ScaledGaussiansGiveTheClosedForm) {
  // N(0, I) vs N(0, s²I): every projection is N(0, 1) vs N(0, s²), whose W₂ is |1 − s|, so
  // SWD = √(D · (1 − s)²) = √D |1 − s| (here D = 2, s = 2).
  auto gen = make_generator(5), proj = make_generator(6);
  torch::Tensor a = torch::randn({20000, 2}, gen, torch::kFloat64);
  torch::Tensor b = 2.0 * torch::randn({30000, 2}, gen, torch::kFloat64);  // unequal sizes on purpose
  EXPECT_NEAR(sliced_wasserstein(a, b, 64, proj), std::sqrt(2.0), 0.05);
}

TEST(SlicedWasserstein, SameSeedSameProjections) {
  auto gen = make_generator(7);
  torch::Tensor a = torch::randn({500, 3}, gen), b = torch::randn({500, 3}, gen);
  auto p1 = make_generator(8), p2 = make_generator(8);
  EXPECT_EQ(sliced_wasserstein(a, b, 16, p1), sliced_wasserstein(a, b, 16, p2));
  EXPECT_THROW(sliced_wasserstein(a, torch::randn({5, 2}), 16, p1), Error);
}

TEST(ModeWeights, NearestMeanFractionsIgnoringNaN) {
  torch::Tensor means = torch::tensor({{5.0, 5.0}, {-5.0, -5.0}});
  torch::Tensor x = torch::tensor({{4.0, 6.0}, {-1.0, -2.0}, {-7.0, -3.0}, {static_cast<double>(NAN), 0.0}, {0.5, 0.6}});
  auto w = mode_weights(x, means);
  EXPECT_DOUBLE_EQ(w[0], 0.5);
  EXPECT_DOUBLE_EQ(w[1], 0.5);
  EXPECT_EQ(count_non_finite(x), 1);
}
