// Noise levels from the data: distances against brute force, the level ratio against its defining
// probability (Monte Carlo in 2-D) and against Song & Ermon 2020's CIFAR-10 ladder, the Langevin step
// against the step they report, and "auto" through the configuration, a run and --dry-run.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/process/auto_noise.hpp"
#include "test_util.hpp"

using namespace scorediff;

TEST(AutoNoise, DistancesMatchBruteForce) {
  at::Generator gen = make_generator(3);
  torch::Tensor x = torch::randn({1100, 3}, gen, torch::kFloat64);  // more rows than one distance block
  torch::Tensor d = (x.unsqueeze(1) - x.unsqueeze(0)).pow(2).sum(2).sqrt();
  EXPECT_NEAR(largest_pairwise_distance(x), d.max().item<double>(), 1e-9);
  torch::Tensor off = d + torch::eye(1100, torch::kFloat64) * 1e9;
  EXPECT_NEAR(median_nearest_neighbour(x, x), std::get<0>(off.min(1)).median().item<double>(), 1e-9);
  // A duplicate row is skipped like the point itself: its nearest neighbour is the next distinct one.
  torch::Tensor pts = torch::tensor({{0.0, 0.0}, {0.0, 0.0}, {3.0, 4.0}}, torch::kFloat64);
  EXPECT_NEAR(median_nearest_neighbour(pts.slice(0, 0, 1), pts), 5.0, 1e-12);
}

TEST(AutoNoise, LevelRatioSolvesTheShellCriterion) {
  for (int64_t d : {1, 2, 13, 64, 784, 3072}) {
    const double gamma = level_ratio(d);
    EXPECT_GT(gamma, 1.0) << d;
    EXPECT_NEAR(shell_probability(d, gamma), 0.5, 1e-9) << d;
  }
  // The probability itself, by Monte Carlo in 2-D: ‖x‖ of x ~ N(0, γ² I) inside [0, √2 + 3/√2].
  at::Generator gen = make_generator(5);
  const double gamma = 2.0;
  torch::Tensor r = (gamma * torch::randn({400000, 2}, gen, torch::kFloat64)).norm(2, 1);
  const double inside = (r <= std::sqrt(2.0) + 3 / std::sqrt(2.0)).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(shell_probability(2, gamma), inside, 0.003);
  // Song & Ermon 2020 use 232 levels from 50 to 0.01 for CIFAR-10 (D = 3072), ratio 5000^(1/231) =
  // 1.03756, from the Gaussian approximation of the norm; the exact chi distribution gives nearly the same.
  EXPECT_NEAR(level_ratio(3072), 1.03756, 0.002);
  EXPECT_NEAR(static_cast<double>(ladder_levels(50, 0.01, level_ratio(3072))), 232.0, 6.0);
  EXPECT_EQ(ladder_levels(8.0, 1.0, 2.0), 4);  // 8, 4, 2, 1
  EXPECT_EQ(ladder_levels(9.0, 1.0, 2.0), 5);  // ratio at most 2
}

TEST(AutoNoise, LangevinStepIsSongAndErmonsForCifar) {
  // Their CIFAR-10 setting: σ_L = 0.01, T = 5, ratio 5000^(1/231); they report ε = 6.2e-6.
  const double gamma = std::pow(5000.0, 1.0 / 231), eps = langevin_step(gamma, 0.01, 5);
  EXPECT_NEAR(eps, 6.2e-6, 0.1e-6);
  const double gap = std::abs(langevin_step_criterion(eps, gamma, 0.01, 5) - 1);
  for (double f : {0.9, 0.98, 1.02, 1.1})
    EXPECT_LE(gap, std::abs(langevin_step_criterion(eps * f, gamma, 0.01, 5) - 1) + 1e-12) << f;
}

TEST(AutoNoise, AutoResolvesFromTheDataAndTheRunKeepsNumbers) {
  Config config = load_config("swiss-roll", {"process.sigma_max=auto", "process.sigma_min=auto", "process.levels=auto",
                                             "sample.eps=auto", "train.steps=2", "model.width=16", "sample.n=16",
                                             "sample.steps_per_level=2"});
  EXPECT_TRUE(config.process.sigma_max_auto && config.sample.eps_auto);
  EXPECT_NE(config.to_toml().find("sigma_max = \"auto\""), std::string::npos);
  EXPECT_THAT_ERROR(load_config("swiss-roll", {"process.sigma_max=autox"}), "process.sigma_max");
  EXPECT_THAT_ERROR(load_config("swiss-roll", {"process.sigma_max=\"big\""}), "expects a number or \"auto\"");
  Config resolved = config;
  Prepared p = prepare(resolved);
  ASSERT_EQ(p.notes.size(), 4u);
  EXPECT_FALSE(resolved.process.sigma_max_auto || resolved.process.sigma_min_auto || resolved.process.levels_auto ||
               resolved.sample.eps_auto);
  // The first 2000 of the 5000 training points (drawn by the "auto-noise" stream) decide sigma_max.
  EXPECT_GT(resolved.process.sigma_max, 3.0);
  EXPECT_LT(resolved.process.sigma_max, largest_pairwise_distance(p.train_data) + 1e-9);
  EXPECT_EQ(resolved.process.levels, ladder_levels(resolved.process.sigma_max, resolved.process.sigma_min, level_ratio(2)));
  EXPECT_NE(p.notes[0].find("technique 1"), std::string::npos);

  TempDir dir;
  TrainedRun run = train_run(config, dir.path(), {false, true});
  LoadedModel loaded = load_trained(dir / "last.safetensors");
  EXPECT_DOUBLE_EQ(loaded.config.process.sigma_max, resolved.process.sigma_max);
  EXPECT_DOUBLE_EQ(loaded.config.sample.eps, resolved.sample.eps);
  EXPECT_FALSE(loaded.config.process.levels_auto);
  // Resuming with the same "auto" settings resolves to the same numbers, so it is allowed.
  Config more = config;
  more.train.steps = 3;
  EXPECT_NO_THROW(train_run(more, dir.path(), {true, true}));

  CliResult r = run_cli("train --dry-run --set process.sigma_max=auto --set process.levels=auto", dir.path());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("# process.sigma_max = "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# process.levels = "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("sigma_max = \"auto\""), std::string::npos) << r.out;  // the resolved numbers instead
  EXPECT_EQ(r.out.find("levels = \"auto\""), std::string::npos) << r.out;
}
