// The fashion-ablation experiment (issue 26), shortened: its variants' keys, steps, seed and reuse.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include "scorediff/experiments/experiment.hpp"
#include "test_util.hpp"

using namespace scorediff;

TEST(FashionAblation, TrainsEachVariantWithItsKeysOnTheSelectionSeedAndReusesThem) {
  // Shortened (16x16 images, 8 channels, 10 steps, 48 samples at 5 NFE): what a short run can check is that
  // each variant trains with its own keys and step count on the selection seed, is measured, and that
  // --resume reuses finished variants instead of training them again.
  TempDir dir;
  ExperimentContext ctx{dir.path(),
                        {"data.image_size=16", "data.n_train=1000", "model.attention=[]", "model.channels=8",
                         "train.steps=10", "train.warmup=2", "train.ckpt_every=5", "sample.n=48", "sample.nfe=5"},
                        0, 1, true, false, 0, {"preset", "steps-1.5x-dropout-0"}};
  const nlohmann::json m = experiments().get("fashion-ablation").run(ctx);
  EXPECT_EQ(m["selection_seed"].get<int64_t>(), 1);
  ASSERT_EQ(m["variants"].size(), 2u) << m.dump();
  EXPECT_EQ(m["variants"][0]["variant"], "preset");
  EXPECT_EQ(m["variants"][0]["steps"].get<int64_t>(), 10);
  EXPECT_EQ(m["variants"][1]["steps"].get<int64_t>(), 15);
  for (const auto& v : m["variants"]) {
    EXPECT_TRUE(std::isfinite(v["fd_cls"].get<double>())) << v.dump();
    EXPECT_GT(v["fd_cls"].get<double>(), v["fd_cls_real"].get<double>()) << v.dump();  // 10 steps: far from the floor
    EXPECT_TRUE(std::filesystem::exists(dir / v["variant"].get<std::string>() / "samples.png"));
  }
  auto config_of = [&](const char* variant) {
    std::ifstream in(dir / variant / "config.toml");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_NE(config_of("preset").find("dropout = 0.1"), std::string::npos);
  EXPECT_NE(config_of("steps-1.5x-dropout-0").find("dropout = 0.0"), std::string::npos);
  EXPECT_NE(config_of("preset").find("seed = 1"), std::string::npos);
  ctx.resume = true;
  const nlohmann::json again = experiments().get("fashion-ablation").run(ctx);
  for (size_t i = 0; i < 2; ++i)
    // Reused, not retrained: the same time (recomputed from the run's log, so up to rounding).
    EXPECT_NEAR(again["variants"][i]["train_seconds"].get<double>(), m["variants"][i]["train_seconds"].get<double>(),
                1e-9 * m["variants"][i]["train_seconds"].get<double>()) << i;
}
