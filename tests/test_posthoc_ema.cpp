// Post-hoc EMA (Karras et al. 2024): σ_rel ↔ γ against the paper's values, the power-function EMA against its
// closed-form average, the least-squares reconstruction against EMAs tracked directly, and the run-level path
// (snapshots written along training, restored on resume, combined into a checkpoint).
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/io/safetensors.hpp"
#include "scorediff/pipeline/posthoc.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/train/adam.hpp"
#include "scorediff/train/posthoc_ema.hpp"
#include "test_util.hpp"

using namespace scorediff;

TEST(PosthocEma, SigmaRelAndGammaAgreeWithTheEdm2Values) {
  // EDM2 (§3): σ_rel = 0.05 and 0.10 are γ = 16.97 and 6.94.
  EXPECT_NEAR(power_ema_gamma(0.05), 16.97, 0.005);
  EXPECT_NEAR(power_ema_gamma(0.10), 6.94, 0.005);
  for (double s : {0.01, 0.05, 0.08, 0.1, 0.2, 0.28})
    EXPECT_NEAR(power_ema_sigma_rel(power_ema_gamma(s)), s, 1e-12 * s) << s;
  EXPECT_NEAR(power_ema_gamma(power_ema_sigma_rel(0.0)), 0.0, 1e-9);
  EXPECT_THAT_ERROR(power_ema_gamma(0.3), "outside");
  EXPECT_THAT_ERROR(power_ema_gamma(0.0), "outside");
  EXPECT_THAT_ERROR(power_ema_gamma(std::nan("")), "outside");
}

TEST(PosthocEma, PowerFunctionEmaIsTheTauToTheGammaWeightedAverage) {
  // θ(τ) = τ: the continuous average (γ+1)/t^(γ+1) ∫₀^t τ^γ · τ dτ = t (γ+1)/(γ+2); the recursion's discrete
  // weights approach it as t grows. And the standard deviation of the profile is σ_rel · t: θ(τ) = τ² gives the
  // second moment, t² (γ+1)/(γ+3).
  const double gamma = power_ema_gamma(0.1);
  torch::Tensor theta = torch::zeros({2}, torch::kFloat64);
  Ema ema = Ema::power_function({theta}, gamma);
  const int64_t t = 4000;
  for (int64_t step = 1; step <= t; ++step) {
    theta[0] = static_cast<double>(step);
    theta[1] = static_cast<double>(step) * static_cast<double>(step);
    ema.update({theta}, step);
  }
  const double mean = ema.shadow()[0][0].item<double>(), second = ema.shadow()[0][1].item<double>();
  EXPECT_NEAR(mean / t, (gamma + 1) / (gamma + 2), 2e-3);
  EXPECT_NEAR(second / (double(t) * t), (gamma + 1) / (gamma + 3), 2e-3);
  EXPECT_NEAR(std::sqrt(second - mean * mean) / t, 0.1, 2e-3);
}

namespace {

// Snapshots of EMAs with the given γ every `every` steps up to `last` of a smooth 3-vector trajectory; and the
// EMA of `target_gamma` tracked directly along the same trajectory.
struct Tracked {
  std::vector<PowerEmaSnapshot> snapshots;
  std::vector<torch::Tensor> values;
  torch::Tensor direct;
};

Tracked track(const std::vector<double>& gammas, int64_t every, int64_t last, double target_gamma) {
  torch::Tensor theta = torch::zeros({3}, torch::kFloat64);
  std::vector<Ema> emas;
  for (double g : gammas) emas.push_back(Ema::power_function({theta}, g));
  Ema direct = Ema::power_function({theta}, target_gamma);
  Tracked out;
  for (int64_t step = 1; step <= last; ++step) {
    const double s = static_cast<double>(step);
    theta[0] = std::sin(s / 150.0);
    theta[1] = std::cos(s / 410.0) + 0.3 * std::sin(s / 37.0);
    theta[2] = s / 1000.0;
    for (Ema& e : emas) e.update({theta}, step);
    direct.update({theta}, step);
    if (step % every == 0)
      for (size_t k = 0; k < gammas.size(); ++k) {
        out.snapshots.push_back({step, gammas[k]});
        out.values.push_back(emas[k].shadow()[0].clone());
      }
  }
  out.direct = direct.shadow()[0].clone();
  return out;
}

torch::Tensor combine(const Tracked& tracked, const std::vector<double>& x) {
  torch::Tensor sum = torch::zeros({3}, torch::kFloat64);
  for (size_t i = 0; i < x.size(); ++i) sum += x[i] * tracked.values[i];
  return sum;
}

}  // namespace

TEST(PosthocEma, ASnapshotsOwnProfileIsReconstructedByItself) {
  const std::vector<double> gammas = {power_ema_gamma(0.05), power_ema_gamma(0.10)};
  const Tracked tracked = track(gammas, 100, 2000, gammas[1]);
  const std::vector<double> x = posthoc_ema_coefficients(tracked.snapshots, 2000, gammas[1]);
  ASSERT_EQ(x.size(), tracked.snapshots.size());
  const torch::Tensor reconstructed = combine(tracked, x);
  EXPECT_TRUE(torch::allclose(reconstructed, tracked.direct, 1e-6, 1e-6)) << reconstructed << tracked.direct;
}

TEST(PosthocEma, AnUntrackedLengthMatchesTheEmaTrackedDirectly) {
  // σ_rel 0.07 and 0.15 at the end, and 0.08 at an earlier step, from σ_rel 0.05 / 0.10 snapshots every 50
  // steps. The direct EMA moves by ~1 over the run; the reconstruction is within 1 % of that.
  const std::vector<double> gammas = {power_ema_gamma(0.05), power_ema_gamma(0.10)};
  for (const auto& [sigma, step] : std::vector<std::pair<double, int64_t>>{{0.07, 3000}, {0.15, 3000}, {0.08, 1500}}) {
    const Tracked tracked = track(gammas, 50, step, power_ema_gamma(sigma));
    const torch::Tensor reconstructed = combine(tracked, posthoc_ema_coefficients(tracked.snapshots, step, power_ema_gamma(sigma)));
    EXPECT_LT((reconstructed - tracked.direct).abs().max().item<double>(), 1e-2) << sigma << reconstructed << tracked.direct;
    // Not trivially close: the two tracked lengths themselves are further away.
    const Tracked other = track(gammas, step, step, gammas[1]);
    EXPECT_GT((other.values[1] - tracked.direct).abs().max().item<double>(), 2e-2) << sigma;
  }
}

namespace {

Config posthoc_config(int64_t steps) {
  return load_config("swiss-roll", {fmt::format("train.steps={}", steps), "train.warmup=5", "data.n_train=300",
                                    "model.width=16", "model.depth=2", "train.batch=32", "train.ckpt_every=20",
                                    "train.posthoc_sigma_rels=[0.05, 0.1]", "train.posthoc_every=10"});
}

}  // namespace

TEST(PosthocEma, ARunWritesSnapshotsResumesThemAndCombinesThemIntoACheckpoint) {
  TempDir straight, interrupted;
  TrainRunOptions options;
  options.quiet = true;
  TrainedRun a = train_run(posthoc_config(40), straight.path(), options);
  for (int step : {10, 20, 30, 40}) EXPECT_TRUE(std::filesystem::exists(straight / "posthoc" / fmt::format("step-{}.safetensors", step))) << step;
  // Interrupted at 25 and resumed: the power-function EMAs are part of the checkpoint, so the snapshots agree.
  options.stop_at = 25;
  train_run(posthoc_config(40), interrupted.path(), options);
  options.stop_at = -1;
  options.resume = true;
  train_run(posthoc_config(40), interrupted.path(), options);
  const TensorFile sa = read_safetensors(straight / "posthoc" / "step-40.safetensors");
  const TensorFile sb = read_safetensors(interrupted / "posthoc" / "step-40.safetensors");
  ASSERT_EQ(sa.tensors.size(), sb.tensors.size());
  for (size_t i = 0; i < sa.tensors.size(); ++i) EXPECT_TRUE(torch::equal(sa.tensors[i].second, sb.at(sa.tensors[i].first))) << sa.tensors[i].first;

  // σ_rel 0.10 at the last step is that snapshot's second EMA; the model.* tensors are the run's last ones.
  const PosthocEma r = write_posthoc_ema(straight.path(), 0.10, 0, straight / "ema-0.10.safetensors");
  EXPECT_EQ(r.step, 40);
  EXPECT_EQ(r.snapshots.size(), 8u);
  EXPECT_LT(r.relative_error, 1e-6);
  const TensorFile out = read_safetensors(straight / "ema-0.10.safetensors");
  const TensorFile last = read_safetensors(straight / "last.safetensors");
  int compared = 0;
  for (const auto& [name, tensor] : out.tensors) {
    if (name.rfind("ema.", 0) == 0) {
      EXPECT_TRUE(torch::allclose(tensor, sa.at("posthoc.1." + name.substr(4)), 1e-5, 1e-5)) << name;
      ++compared;
    } else if (name.rfind("model.", 0) == 0) {
      EXPECT_TRUE(torch::equal(tensor, last.at(name))) << name;
    }
  }
  EXPECT_GT(compared, 3);
  // An earlier checkpointed step uses only the snapshots up to it.
  const PosthocEma early = write_posthoc_ema(straight.path(), 0.07, 20, straight / "early.safetensors");
  EXPECT_EQ(early.snapshots.size(), 4u);
  EXPECT_EQ(early.base.filename(), "step-20.safetensors");
  EXPECT_THAT_ERROR(write_posthoc_ema(straight.path(), 0.07, 25, straight / "x.safetensors"),
                    "no post-hoc EMA snapshot of step 25");
  EXPECT_THAT_ERROR(write_posthoc_ema(straight.path(), 0.07, 10, straight / "x.safetensors"), "no checkpoint of step 10");
  EXPECT_THAT_ERROR(write_posthoc_ema(straight.path(), 0.07, 0, straight / "last.safetensors"), "the run's own");
  EXPECT_THAT_ERROR(write_posthoc_ema(straight.path(), 0.07, 0, straight / "ckpt" / "step-20.safetensors"), "the run's own");
  EXPECT_FALSE(std::filesystem::exists(straight / "x.safetensors"));
  // A fresh run in the same folder clears the earlier run's snapshots: 20 steps leave none past step 20.
  train_run(posthoc_config(20), straight.path(), TrainRunOptions(false, true));
  EXPECT_FALSE(std::filesystem::exists(straight / "posthoc" / "step-30.safetensors"));
  EXPECT_EQ(write_posthoc_ema(straight.path(), 0.1, 0, straight / "again.safetensors").snapshots.size(), 4u);
  EXPECT_THAT_ERROR(write_posthoc_ema(straight.path(), 0.4, 0, straight / "x.safetensors"), "outside");
  TempDir plain;
  train_run(load_config("swiss-roll", {"train.steps=5", "data.n_train=300", "model.width=16", "model.depth=2"}), plain.path(),
            TrainRunOptions(false, true));
  EXPECT_THAT_ERROR(write_posthoc_ema(plain.path(), 0.1, 0, plain / "x.safetensors"), "no post-hoc EMA snapshots");
  EXPECT_FALSE(std::filesystem::exists(plain / "x.safetensors"));
}
