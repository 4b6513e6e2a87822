// Noise levels from the data: distances against brute force, the level ratio against its defining
// probability (Monte Carlo in 2-D) and against Song & Ermon 2020's CIFAR-10 ladder, the ladder's variance
// against their one-level formula and a simulation, the step and level rules against their definitions,
// and "auto" through the configuration, a run and --dry-run.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/toy.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/process/auto_noise.hpp"
#include "scorediff/process/noise_process.hpp"
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

// Noisy manifolds of known thickness: the floor is the noise's std, read where the local figure levels off.
TEST(AutoNoise, NoiseFloorIsTheThicknessOfNoisyManifolds) {
  at::Generator gen = make_generator(11);
  auto floor_of = [](const torch::Tensor& x) { return noise_floor(x.slice(0, 0, 2000), x); };
  // The unit circle with N(0, 0.02²) noise, and the same with 2 000 and 20 000 points.
  for (const int64_t n : {2000, 5000, 20000}) {
    torch::Tensor angle = 2 * M_PI * torch::rand({n}, gen, torch::kFloat64);
    torch::Tensor circle = torch::stack({angle.cos(), angle.sin()}, 1) + 0.02 * torch::randn({n, 2}, gen, torch::kFloat64);
    const NoiseFloor f = floor_of(circle);
    ASSERT_TRUE(f.found) << n;
    EXPECT_NEAR(f.std, 0.02, 0.002) << n;
  }
  // A plane in 3-D, 0.03 thick, tilted: a 2-D manifold, thinnest along its normal.
  torch::Tensor plane = torch::randn({5000, 3}, gen, torch::kFloat64) * torch::tensor({1.0, 1.0, 0.03}, torch::kFloat64);
  const double c = std::cos(0.7), s = std::sin(0.7);
  plane = plane.matmul(torch::tensor({{1.0, 0.0, 0.0}, {0.0, c, s}, {0.0, -s, c}}, torch::kFloat64));
  EXPECT_NEAR(noise_floor(plane.slice(0, 0, 2000), plane).std, 0.03, 0.003);
  // The data sets the experiment uses: two moons (noise 0.05) and the Swiss roll (noise 0.1 before the
  // per-axis standardisation by 6.62 and 6.95, so between 0.0144 and 0.0151 across the curve).
  for (const auto& [name, noise] : std::vector<std::pair<std::string, double>>{{"two-moons", 0.05}, {"swiss-roll", 0.0147}}) {
    DataOptions o;
    o.name = name;
    resolve(o);
    torch::Tensor x = make_dataset(o)->sample(5000, gen).to(torch::kFloat64);
    EXPECT_NEAR(floor_of(x).std, noise, 0.1 * noise) << name;
  }
  // Not found: points on an exact line (no thickness), and 1 000 points in 300 dimensions (no k ≥ 4·D).
  torch::Tensor t = torch::rand({3000, 1}, gen, torch::kFloat64);
  torch::Tensor line = torch::cat({t, 2 * t}, 1);
  EXPECT_FALSE(noise_floor(line.slice(0, 0, 500), line).found);
  torch::Tensor wide = torch::randn({1000, 300}, gen, torch::kFloat64);
  EXPECT_FALSE(noise_floor(wide.slice(0, 0, 100), wide).found);
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

TEST(AutoNoise, LangevinVarianceIsSongAndErmonsOneLevelFormulaAndMatchesSimulation) {
  // One level from γ²σ² on N(0, σ²) (τ = 0) with step ε: Song & Ermon 2020's technique-4 expression
  // (1 − ε/σ²)^{2T}(γ² − s) + s, s = 2ε/(σ² − σ²(1 − ε/σ²)²), times σ².
  const double sigma = 0.01, gamma = std::pow(5000.0, 1.0 / 231);
  for (double eps : {1e-7, 6.2e-6, 3e-5})
    for (int64_t t : {1, 5, 100}) {
      const double u = eps / (sigma * sigma), s = 2 * eps / (sigma * sigma - sigma * sigma * (1 - u) * (1 - u));
      const double theirs = std::pow(1 - u, 2.0 * static_cast<double>(t)) * (gamma * gamma - s) + s;
      EXPECT_NEAR(langevin_variance(gamma * gamma * sigma * sigma, sigma * sigma, eps, t) / (sigma * sigma), theirs, 1e-9)
          << eps << " " << t;
    }
  // The whole ladder on N(0, τ²), against 200 000 chains run with the exact score −x/(τ² + σ_i²).
  const std::vector<double> sigmas = SigmaLadder(0.05, 2.0, 4).levels();
  const double eps = 4e-4, tau = 0.3;
  const int64_t steps = 20;
  at::Generator gen = make_generator(11);
  torch::Tensor x = sigmas.front() * torch::randn({200000}, gen, torch::kFloat64);
  for (double s : sigmas) {
    const double alpha = eps * s * s / (sigmas.back() * sigmas.back()), v = tau * tau + s * s;
    for (int64_t n = 0; n < steps; ++n) x = x - alpha * x / v + std::sqrt(2 * alpha) * torch::randn({200000}, gen, torch::kFloat64);
  }
  const double simulated = x.var().item<double>() / (tau * tau + sigmas.back() * sigmas.back()) - 1;
  const double closed = annealed_variance_error(sigmas, eps, steps, tau);
  EXPECT_GT(std::abs(closed), 0.05);           // a ladder whose error is worth measuring
  EXPECT_NEAR(simulated, closed, 0.01);        // standard error of a variance: √(2/200 000) ≈ 0.003
}

TEST(AutoNoise, LangevinStepMinimisesTheWorstScaleAndLevelsAreTheFewestWithinTolerance) {
  const std::vector<double> sigmas = SigmaLadder(0.003, 3.6, 8).levels();
  const double tau_max = 1.0;
  const int64_t steps = 100;
  const LangevinStep step = langevin_step(sigmas, steps, tau_max);
  EXPECT_NEAR(std::abs(annealed_variance_error(sigmas, step.eps, steps, step.worst_tau)), step.worst_error, 1e-12);
  auto worst = [&](double eps) {  // on a grid finer than the rule's, τ = 0 included
    double w = std::abs(annealed_variance_error(sigmas, eps, steps, 0.0));
    for (int k = 0; k <= 600; ++k)
      w = std::max(w, std::abs(annealed_variance_error(sigmas, eps, steps, 0.003 * std::pow(tau_max / 0.003, k / 600.0))));
    return w;
  };
  EXPECT_NEAR(worst(step.eps), step.worst_error, 2e-3);
  for (double f : {0.7, 0.9, 1.1, 1.4}) EXPECT_GT(worst(step.eps * f), step.worst_error) << f;
  // Song & Ermon's one-level step for this ladder (u = ε/σ_L² ≈ 0.039, measured with their formula above) is
  // far worse over the ladder: the error it leaves on data of scale ~0.4 is the Swiss roll's failure.
  EXPECT_GT(worst(0.039 * 0.003 * 0.003), 3 * step.worst_error);

  const AutoLevels chosen = variance_levels(3.6, 0.003, 8, steps, tau_max);
  EXPECT_TRUE(chosen.reached);
  EXPECT_LE(chosen.step.worst_error, kAutoVarianceTolerance);
  EXPECT_GT(chosen.levels, 8);
  EXPECT_GT(langevin_step(SigmaLadder(0.003, 3.6, chosen.levels - 1).levels(), steps, tau_max).worst_error,
            kAutoVarianceTolerance);
  // The shell rule's count is kept when it is already within the tolerance.
  EXPECT_EQ(variance_levels(3.6, 0.003, 2 * chosen.levels, steps, tau_max).levels, 2 * chosen.levels);
}

TEST(AutoNoise, LargestPrincipalStdIsTheCovariancesTopDirection) {
  at::Generator gen = make_generator(8);
  // Standard deviations 3 and 1 along axes rotated by 30°.
  torch::Tensor z = torch::randn({20000, 2}, gen, torch::kFloat64) * torch::tensor({3.0, 1.0}, torch::kFloat64);
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  torch::Tensor x = z.matmul(torch::tensor({{c, s}, {-s, c}}, torch::kFloat64)) + 5.0;
  EXPECT_NEAR(largest_principal_std(x), 3.0, 0.05);
  // More columns than rows: the Gram matrix's branch gives the covariance's value.
  torch::Tensor wide = torch::randn({30, 50}, gen, torch::kFloat64);
  torch::Tensor centred = wide - wide.mean(0, true);
  const double top = torch::linalg::eigvalsh(centred.t().matmul(centred) / 29.0, "L").max().item<double>();
  EXPECT_NEAR(largest_principal_std(wide), std::sqrt(top), 1e-9);
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
  const int64_t shell = ladder_levels(resolved.process.sigma_max, resolved.process.sigma_min, level_ratio(2));
  const AutoLevels levels = variance_levels(resolved.process.sigma_max, resolved.process.sigma_min, shell, 2,
                                            largest_principal_std(p.train_data));
  // The rule measured its largest scale on 2000 of the points, this on all 5000: nearly the same.
  EXPECT_GE(resolved.process.levels, shell);
  EXPECT_NEAR(static_cast<double>(resolved.process.levels), static_cast<double>(levels.levels), 1.0);
  EXPECT_NEAR(resolved.sample.eps, levels.step.eps, 0.1 * levels.step.eps);
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
