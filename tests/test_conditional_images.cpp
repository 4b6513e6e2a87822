// Short versions of the issue-24 image experiments: conditional-mnist must learn its labels (a model that ignores
// them fails), and sdedit must trade faithfulness for realism along sigma_start and round-trip through encode.
#include <gtest/gtest.h>

#include "scorediff/experiments/experiment.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

// 16x16 digits, 16 base channels, no attention, 400 steps, one thread.
nlohmann::json run_short(const std::string& name, const TempDir& dir, std::vector<std::string> sets) {
  std::vector<std::string> all{"data.image_size=16", "model.attention=[]", "model.channels=16", "train.steps=400"};
  all.insert(all.end(), sets.begin(), sets.end());
  ExperimentContext ctx{dir.path(), all, 0, 1, true, false, 0, {}};
  return experiments().get(name).run(ctx);
}

}  // namespace

TEST(ConditionalImages, ConditionalMnistLearnsItsLabelsAndBothGuidancesRaiseTheirAccuracy) {
  // Shortened (16x16 digits, 16 base channels, 400 steps, 200 samples; about 2.5 minutes on one thread). A model
  // that ignores its label samples each class at about the 10 % of chance at every w and scale, and fails.
  TempDir dir;
  const nlohmann::json m = run_short("conditional-mnist", dir, {"sample.n=200"});
  auto accuracy = [&](const char* kind, const char* key) { return m[kind][key]["label_accuracy"].get<double>(); };
  EXPECT_GE(accuracy("cfg", "0"), 0.3) << m.dump();
  EXPECT_GE(accuracy("cfg", "3"), 0.7);
  EXPECT_GE(accuracy("cfg", "3") - accuracy("cfg", "0"), 0.2);
  EXPECT_GE(accuracy("classifier_guidance", "3") - accuracy("cfg", "0"), 0.2);
  EXPECT_LT(m["cfg"]["3"]["fd_cls"].get<double>(), m["cfg"]["0"]["fd_cls"].get<double>());
  ASSERT_EQ(m["cfg"]["0"]["fd_cls_per_class"].size(), 10u);
  EXPECT_EQ(m["checks"].size(), 4u);
  for (const char* png : {"tradeoff.png", "classes_w0.png", "classes_best.png"})
    EXPECT_TRUE(std::filesystem::exists(dir / png)) << png;
}

TEST(ConditionalImages, SdeditTradesFaithfulnessForRealismAndEncodeDecodeReturnsTheDigits) {
  // Shortened (as above, 60 guides). A score that ignored the guide would sit far from it at every sigma_start;
  // one that copied it would never become more realistic.
  TempDir dir;
  const nlohmann::json m = run_short("sdedit", dir, {"sample.n=60"});
  ASSERT_EQ(m["checks"].size(), 3u) << m.dump();
  for (const auto& [name, check] : m["checks"].items()) EXPECT_TRUE(check["holds"].get<bool>()) << name << check.dump();
  const auto& edits = m["edits"];
  EXPECT_LT(edits.front()["distance"].get<double>(), 0.1) << m.dump();  // σ_start = 0.1 keeps the guide
  EXPECT_GT(edits.back()["distance"].get<double>(), 0.2);                // σ_max forgets it
  EXPECT_TRUE(std::filesystem::exists(dir / "tradeoff.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "edits.png"));
}
