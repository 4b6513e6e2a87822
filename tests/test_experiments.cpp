// experiments: the three foundation experiments at their default settings meet the bounds.
// These are end-to-end runs (training included), each a few seconds on one core.
#include <gtest/gtest.h>

#include <fstream>

#include "scorediff/experiments/experiment.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

nlohmann::json run(const std::string& name, const TempDir& dir, std::vector<std::string> sets = {}) {
  ExperimentContext ctx{dir.path(), std::move(sets), 0, 1, true};
  nlohmann::json metrics = experiments().get(name).run(ctx);
  std::ifstream in(dir / "metrics.json");
  EXPECT_EQ(nlohmann::json::parse(in), metrics);
  EXPECT_TRUE(std::filesystem::exists(dir / "report.md"));
  return metrics;
}

}  // namespace

TEST(Experiments, CircleScoreMatchesTheExactOne) {
  TempDir dir;
  auto m = run("circle", dir);
  EXPECT_GE(m["score_cosine"].get<double>(), 0.9);
  EXPECT_TRUE(std::filesystem::exists(dir / "score_field.png"));
}

TEST(Experiments, MogMixingShowsLangevinFailAndAnnealingRecover) {
  TempDir dir;
  auto m = run("mog-mixing", dir);
  auto weights = [&](const char* key) { return m[key]["weights"].get<std::vector<double>>(); };
  EXPECT_NEAR(weights("ald_analytic")[0], 0.2, 0.03);
  EXPECT_NEAR(weights("ald_trained")[0], 0.2, 0.05);
  EXPECT_GT(std::abs(weights("langevin_analytic")[0] - 0.2), 0.10);
  EXPECT_GT(std::abs(weights("langevin_trained")[0] - 0.2), 0.10);
  EXPECT_TRUE(std::filesystem::exists(dir / "mixing.png"));
}

TEST(Experiments, MogMixingWithAnotherMixture) {
  TempDir dir;
  auto m = run("mog-mixing", dir, {"data.weights=[0.6,0.3,0.1]", "data.means=[[0,6],[6,-4],[-6,-4]]", "train.steps=10"});
  EXPECT_EQ(m["true_weights"].size(), 3u);
  auto ald = m["ald_analytic"]["weights"].get<std::vector<double>>();
  EXPECT_NEAR(ald[0], 0.6, 0.03);
  EXPECT_NEAR(ald[1], 0.3, 0.03);
  EXPECT_NEAR(ald[2], 0.1, 0.03);
}

TEST(Experiments, SwissRollSamplesMatchTheData) {
  TempDir dir;
  auto m = run("swiss-roll", dir);
  EXPECT_LE(m["swd"].get<double>(), 2 * m["swd_data_vs_data"].get<double>());
  EXPECT_EQ(m["nan_count"], 0);
  EXPECT_LE(m["max_radius_ratio"].get<double>(), 1.5);
  EXPECT_GT(m["train_seconds"].get<double>(), 0.0);
}
