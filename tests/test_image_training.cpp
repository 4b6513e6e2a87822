// A short image run end to end: a small U-Net on 14×14 MNIST under the EDM recipe of the mnist preset.
// The loss falls, samples are finite and in range, grids are written along the run, a resumed run
// with dropout continues bit for bit, and the Python twin of the U-Net (bench/peers/unet_peer.py) loads
// the checkpoint and gives the same output.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/metrics/metrics.hpp"
#include "scorediff/pipeline/run_report.hpp"
#include "scorediff/pipeline/training.hpp"
#include "test_util.hpp"

namespace scorediff {
namespace {

Config tiny_image_config(int64_t steps) {
  return load_config("mnist", {"data.image_size=14", "data.n_train=2000", "model.channels=8", "model.channel_mult=[1,2]",
                               "model.attention=[7]", "model.fourier_features=16", fmt::format("train.steps={}", steps),
                               "train.batch=32", "train.log_every=25", "train.warmup=20", "train.ckpt_every=0",
                               "train.lr=2e-3", "train.schedule=constant", "model.conv_precision=float32", "sample.s_churn=0",
                               "sample.n=16", "sample.nfe=11", "run.name=tiny-images"});
}

TEST(ImageTraining, ShortRunLossFallsAndSamplesAreFinite) {
  TempDir dir;
  Config config = tiny_image_config(300);
  config.train.sample_every = 150;
  config.train.ckpt_every = 150;
  TrainRunOptions options;
  options.quiet = true;
  TrainedRun run = train_run(config, dir.path(), options);
  ASSERT_EQ(run.log.size(), 12u);
  const double first = run.log.front()["loss"].get<double>();
  const double last = (run.log[10]["loss"].get<double>() + run.log[11]["loss"].get<double>()) / 2;
  EXPECT_LT(last, 0.7 * first) << "first window " << first << ", last two " << last;
  EXPECT_EQ(run.log.back()["skipped"].get<int64_t>(), 0);

  Report report("tiny");
  RunSummary summary = finish_run(run, dir.path(), true, report);
  torch::Tensor samples = read_npy(dir / "samples.npy");
  EXPECT_EQ(samples.sizes(), (std::vector<int64_t>{16, 196}));
  EXPECT_EQ(count_non_finite(samples), 0);
  // Pixels live in [−1, 1]; a model this small and short overshoots a little, a diverging one by far.
  EXPECT_LE(samples.abs().max().item<double>(), 4.0);
  // Most of an MNIST digit is background (−1): the mean pixel tells a learned image from noise.
  EXPECT_NEAR(samples.mean().item<double>(), run.prepared.train_data.mean().item<double>(), 0.25);
  EXPECT_EQ(summary.metrics_json()["non_finite"].get<int64_t>(), 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "samples.png"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "samples" / "step-150.png"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "samples" / "step-300.png"));

  // Autoguidance of the U-Net by its own step-150 EMA weights: s_guide + w (s_model − s_guide).
  LoadedModel early = load_trained(dir / "ckpt" / "step-150.safetensors", true);
  Config guided = run.config;
  guided.sample.guide = "step-150";
  guided.sample.guidance = 2.5;
  auto gen = make_generator(5);
  torch::Tensor x = torch::randn({4, 196}, gen), t = torch::full({4}, 1.5);
  torch::NoGradGuard no_grad;
  torch::Tensor s_model = model_score_fn(run.ema_model, run.prepared.process)(x, t);
  torch::Tensor s_guide = model_score_fn(early.model, run.prepared.process)(x, t);
  torch::Tensor s = sampling_score_fn(guided, run.ema_model, run.prepared, dir.path())(x, t);
  EXPECT_TRUE(torch::allclose(s, s_guide + 2.5 * (s_model - s_guide), 1e-4, 1e-4));
  EXPECT_GT((s_model - s_guide).abs().max().item<double>(), 1e-2);
}

// A 30-step run with dropout trained straight through (first) and one stopped at step 15 and resumed (second),
// the resumed part under `change` applied to the config.
std::pair<TrainedRun, TrainedRun> straight_and_resumed(const TempDir& straight, const TempDir& interrupted,
                                                       const std::function<void(Config&)>& change = {}) {
  Config config = tiny_image_config(30);
  config.model.dropout = 0.2;
  TrainRunOptions options;
  options.quiet = true;
  TrainedRun a = train_run(config, straight.path(), options);
  options.stop_at = 15;
  TrainedRun stopped = train_run(config, interrupted.path(), options);
  EXPECT_EQ(stopped.steps, 15);  // its speed counts the steps it did, not train.steps
  EXPECT_EQ(a.steps, 30);
  options.stop_at = -1;
  options.resume = true;
  if (change) change(config);
  TrainedRun b = train_run(config, interrupted.path(), options);
  EXPECT_EQ(b.steps, 30);
  return {std::move(a), std::move(b)};
}

TEST(ImageTraining, ResumeWithDropoutContinuesBitForBit) {
  TempDir straight, interrupted;
  auto [a, b] = straight_and_resumed(straight, interrupted);
  auto pb = b.model->named_parameters();
  for (const auto& item : a.model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  auto eb = b.ema_model->named_parameters();
  for (const auto& item : a.ema_model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), eb[item.key()])) << item.key();
}

TEST(ImageTraining, ResumeMaySwitchToChannelsLast) {
  // The layout is not part of the run's definition (checkpoint.cpp): a run checkpointed in NCHW continues in
  // channels-last with the same dropout masks, close to the run that stayed in NCHW (float32: the two layouts
  // differ in summation order only).
  TempDir straight, interrupted;
  auto [a, b] = straight_and_resumed(straight, interrupted, [](Config& c) { c.model.channels_last = true; });
  auto pb = b.model->named_parameters();
  double worst = 0, largest = 0;
  for (const auto& item : a.model->named_parameters()) {
    worst = std::max(worst, (item.value() - pb[item.key()]).abs().max().item<double>());
    largest = std::max(largest, item.value().abs().max().item<double>());
  }
  EXPECT_LT(worst, 1e-4 * largest);  // measured 2.8e-6 of 1.04
}

TEST(ImageTraining, PythonTwinOfTheUnetGivesTheSameOutput) {
  // The benchmark peer must be the same network: it loads this checkpoint's EMA weights (safetensors)
  // and evaluates the same inputs. Debian's python3-torch is installed by scripts/setup.sh.
  TempDir dir;
  Config config = tiny_image_config(20);
  config.model.dropout = 0.1;
  TrainRunOptions options;
  options.quiet = true;
  train_run(config, dir.path(), options);
  LoadedModel loaded = load_trained(dir / "last.safetensors", true);
  auto gen = make_generator(3);
  torch::Tensor x = torch::randn({6, 196}, gen), log_sigma = torch::linspace(-5.0, 4.0, 6);
  torch::Tensor out;
  {
    torch::NoGradGuard no_grad;
    out = loaded.model->network().forward(x, log_sigma);
  }
  write_npy(dir / "input.npy", torch::cat({x, log_sigma.unsqueeze(1)}, 1));
  write_npy(dir / "output.npy", out);
  CliResult r = run_command(fmt::format("/usr/bin/python3 '{}/bench/peers/unet_peer.py' check last.safetensors input.npy output.npy",
                                        SCOREDIFF_SOURCE_DIR),
                            dir.path());
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_LE(j["max_abs_diff"].get<double>(), 1e-4) << r.out;
  EXPECT_GT(j["max_abs_output"].get<double>(), 0.05) << r.out;  // a trained network: its output is not zero
}

}  // namespace
}  // namespace scorediff
