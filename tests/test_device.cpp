// One device for the whole path: train → sample → eval with run.device taken from one place, the
// SCOREDIFF_TEST_DEVICE environment variable ("cpu" when unset). On a machine with a GPU and a CUDA LibTorch,
// `SCOREDIFF_TEST_DEVICE=cuda build/scorediff_tests --gtest_filter='Device.*'` runs the same path there.
#include <gtest/gtest.h>

#include <cstdlib>

#include "scorediff/core/rng.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/samplers/registry.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

std::string test_device() {
  const char* value = std::getenv("SCOREDIFF_TEST_DEVICE");
  return value != nullptr && *value != '\0' ? value : "cpu";
}

}  // namespace

TEST(Device, TrainSampleEvalOnTheConfiguredDevice) {
  const std::string device = test_device();
  TempDir dir;
  Config config = load_config("swiss-roll-vp", {"run.device=" + device, "data.name=8gaussians", "train.steps=1500",
                                                "train.warmup=50", "data.n_train=2000", "model.width=64",
                                                "model.depth=2", "sample.n=2000", "sample.nfe=100"});
  TrainedRun run = train_run(config, dir.path(), {false, true});
  const c10::Device expected = parse_device(device);
  EXPECT_EQ(run.prepared.train_data.device(), expected);
  EXPECT_EQ(run.ema_model->parameters().front().device(), expected);
  for (const std::string sampler : {"em", "ode-heun", "edm"}) {  // a stochastic, an ODE and a churn-capable sampler
    Config c = run.config;
    c.sample.sampler = sampler;
    at::Generator gen = make_generator(derive_seed(0, "sample"), expected);
    ScoreFn score = sampling_score_fn(c, run.ema_model, run.prepared, dir.path());
    SampleResult r = run_sampler(c.sample, score, *run.prepared.process, 2, gen, /*quiet=*/true);
    EXPECT_EQ(r.samples.device(), expected) << sampler;
    SampleMetrics m = evaluate_samples(*run.prepared.dataset, r.samples.to(torch::kCPU), 0);
    EXPECT_EQ(m.nan_count, 0) << sampler;
    // A 1 500-step model is rough, but its samples are far closer to the 8 modes (radius 4) than its starting
    // noise N(0, I) is, and every mode gets about its 1/8.
    SampleMetrics start = evaluate_samples(*run.prepared.dataset, torch::randn({2000, 2}), 0);
    EXPECT_LT(m.swd, 0.35 * start.swd) << sampler;
    for (double w : m.mode_weights) EXPECT_NEAR(w, 0.125, 0.04) << sampler;
  }
  // The checkpoint loads back onto the same device and samples there from the command line's code path.
  LoadedModel loaded = load_trained(dir / "last.safetensors");
  EXPECT_EQ(loaded.model->parameters().front().device(), expected);
}
