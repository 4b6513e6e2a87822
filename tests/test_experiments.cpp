// experiments: each one end to end (training included), at its default settings where that takes a few
// seconds, shortened with --set otherwise, with assertions that fail when its result is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numeric>

#include "scorediff/experiments/experiment.hpp"
#include "scorediff/process/auto_noise.hpp"
#include "scorediff/samplers/registry.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

nlohmann::json run(const std::string& name, const TempDir& dir, std::vector<std::string> sets = {}, int64_t seeds = 0) {
  ExperimentContext ctx{dir.path(), std::move(sets), 0, 1, true, false, seeds, {}};
  nlohmann::json metrics = experiments().get(name).run(ctx);
  std::ifstream in(dir / "metrics.json");
  EXPECT_EQ(nlohmann::json::parse(in), metrics);
  EXPECT_TRUE(std::filesystem::exists(dir / "report.md"));
  return metrics;
}

// metrics.json carries the experiment's acceptance verdicts, and every one holds.
void expect_checks_hold(const nlohmann::json& m, size_t count) {
  ASSERT_TRUE(m.contains("checks")) << m.dump();
  EXPECT_EQ(m["checks"].size(), count) << m["checks"].dump();
  for (const auto& [name, check] : m["checks"].items()) {
    EXPECT_TRUE(check["holds"].get<bool>()) << name << ": " << check.dump();
    EXPECT_TRUE(check.contains("value") && check.contains("bound") && check.contains("relation")) << name;
  }
}

}  // namespace

TEST(Experiments, CircleScoreMatchesTheExactOne) {
  TempDir dir;
  auto m = run("circle", dir);
  EXPECT_GE(m["score_cosine"].get<double>(), 0.9);
  expect_checks_hold(m, 1);
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
  expect_checks_hold(m, 4);
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
  expect_checks_hold(m, 3);
}

// The comparison experiments, shortened with --set.

TEST(Experiments, ObjectivesTrainEachObjectiveForItsFixedStepsAndLearnTheScore) {
  TempDir dir;
  auto m = run("objectives", dir, {"train.steps=3000", "sample.n=200", "sample.steps_per_level=5", "data.n_train=500"});
  for (const char* key : {"dsm-gaussian", "dsm-laplace", "dsm-student-t", "esm", "ism", "ssm", "ssm-vr", "sure"})
    for (const char* dataset : {"mog2", "swiss-roll"}) {
      ASSERT_TRUE(m.contains(key)) << key;
      // The steps follow from the fixed relative cost, not from this machine's speed.
      const double cost = m[key]["cost"][dataset].get<double>();
      EXPECT_EQ(m[key]["steps"][dataset].get<int64_t>(), std::llround(3000 / cost)) << key << " " << dataset;
      EXPECT_EQ(m[key]["nan_count"][dataset], 0) << key << " " << dataset;
    }
  // The fixed costs of src/experiments/objectives.cpp, so the same seed trains the same steps on any machine.
  EXPECT_EQ(m["dsm-gaussian"]["steps"]["mog2"], 3000);
  EXPECT_EQ(m["ism"]["steps"]["mog2"], 339);         // 3 000 / 8.848
  EXPECT_EQ(m["esm"]["steps"]["swiss-roll"], 29);    // 3 000 / 102.9
  // On mog2 the reference is the exact score, and DSM and ESM learn it in 3 000 steps (a zero score has
  // relative Fisher divergence 1; measured 0.08 and 0.022).
  EXPECT_LT(m["dsm-gaussian"]["relative_fisher"]["mog2"].get<double>(), 0.2);
  EXPECT_LT(m["esm"]["relative_fisher"]["mog2"].get<double>(), 0.1);
  EXPECT_TRUE(std::filesystem::exists(dir / "samples.png"));
}

TEST(Experiments, NoiseLevelsAndWeightingShowWhatTheyReport) {
  TempDir a, b;
  auto levels = run("noise-levels", a,
                    {"train.steps=300", "train.warmup=10", "sample.n=500", "sample.steps=300", "data.n_train=1000"});
  for (const char* sigma : {"0.1", "0.3", "0.5", "1"}) {
    ASSERT_TRUE(levels.contains(sigma)) << levels.dump();
    EXPECT_EQ(levels[sigma]["nan_count"], 0);
  }
  // A model trained at one σ learns that σ's score: the larger σ, the smoother the target and the smaller the
  // relative error; and the Tweedie step brings the σ = 1 samples closer to the clean data.
  EXPECT_LT(levels["1"]["relative_fisher"].get<double>(), levels["0.1"]["relative_fisher"].get<double>());
  EXPECT_LT(levels["1"]["relative_fisher"].get<double>(), 0.1);
  EXPECT_LT(levels["1"]["swd"].get<double>(), levels["1"]["swd_without_tweedie"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(a / "noise_levels.png"));
  auto weighting = run("weighting", b,
                       {"train.steps=300", "train.warmup=10", "sample.n=200", "sample.steps_per_level=5", "data.n_train=500"});
  for (const char* key : {"uniform", "sigma2", "snr"}) {
    ASSERT_TRUE(weighting.contains(key));
    EXPECT_EQ(weighting[key]["loss_per_level"].size(), 10u);
    EXPECT_EQ(weighting[key]["relative_fisher_per_level"].size(), 10u);
  }
  // At the largest level (σ = 5) σ² weighting has learned the score (a zero score costs D/2 = 1 there) and the
  // unweighted loss has not; its samples are correspondingly far better.
  EXPECT_LT(weighting["sigma2"]["loss_per_level"][0].get<double>(), 0.5);
  EXPECT_LT(weighting["sigma2"]["loss_per_level"][0].get<double>(),
            weighting["uniform"]["loss_per_level"][0].get<double>() - 0.2);
  EXPECT_LT(weighting["sigma2"]["swd"].get<double>(), 0.5 * weighting["uniform"]["swd"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(b / "loss_per_scale.png"));
}

TEST(Experiments, CostVsDimShowsIsmGrowingWithTheDimension) {
  TempDir dir;
  auto m = run("cost-vs-dim", dir);
  for (const char* key : {"dsm", "ssm", "ism"})
    for (const char* dim : {"2", "8", "32", "128", "512"}) EXPECT_TRUE(m[key].contains(dim)) << key << dim;
  // Its results are timings, which tests do not assert (STYLE 10): the experiment's own checks carry the
  // verdict into metrics.json, and here only that they are there and consistent with the table.
  EXPECT_EQ(m["checks"].size(), 2u);
  EXPECT_DOUBLE_EQ(m["checks"]["ism_ratio_growth"]["value"].get<double>(), m["ism_ratio_growth"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(dir / "cost.png"));
}

TEST(Experiments, SamplersSweepEverySamplerAndLikelihoodMeetsTheBound) {
  TempDir a, b;
  auto samplers = run("samplers", a, {"train.steps=50", "sample.n=200", "data.n_train=500"});
  const double floor = samplers["swd_data_vs_data"]["8gaussians"].get<double>();
  for (const auto& name : samplers_for(*make_process(load_config("swiss-roll-vp").process))) {
    if (scorediff::samplers().get(name).kind == SamplerKind::Langevin) continue;
    ASSERT_TRUE(samplers["8gaussians"].contains(name)) << name;
    ASSERT_TRUE(samplers["swiss-roll"].contains(name)) << name;
    // With the exact score every sampler reaches the data at its largest budget (200 points: a noisy floor).
    const auto& sweep = samplers["8gaussians"][name];
    double last = NAN;
    int64_t largest = 0;
    for (const auto& [nfe, swd] : sweep.items())
      if (std::stoll(nfe) > largest) largest = std::stoll(nfe), last = swd.get<double>();
    EXPECT_LT(last, 2.0 * floor) << name << " at " << largest << " NFE";
  }
  // The NFE reaches the sampler: 4 Heun steps from EDM's σ_max (9 NFE) are far worse than 499 (999 NFE).
  EXPECT_GT(samplers["8gaussians"]["edm"]["9"].get<double>(), 3 * samplers["8gaussians"]["edm"]["999"].get<double>());
  EXPECT_LT(samplers["8gaussians"]["dpm-solver++"]["100"].get<double>(), 1.5 * floor);
  // VP and VE models with em and ode-rk45, three bounds each; and every sampler with the exact score.
  EXPECT_EQ(samplers["checks"].size(), 12u + samplers["8gaussians"].size());
  EXPECT_TRUE(std::filesystem::exists(a / "swd_vs_nfe.png"));
  auto likelihood = run("likelihood", b);
  expect_checks_hold(likelihood, 12);
  for (const char* key : {"gaussian-d2-vp", "gaussian-d16-vp", "gaussian-d2-ve", "gaussian-d16-ve", "mog2-d2-vp",
                          "mog2-d2-ve"}) {
    ASSERT_TRUE(likelihood.contains(key)) << key;
    EXPECT_LT(likelihood[key]["abs_gap_per_dim"].get<double>(), 0.01) << key;
  }
}

TEST(Experiments, LikelihoodUsesTheConfiguredProcess) {
  // --set process.* reaches the experiment: a VP with a smaller β_max changes every VP number.
  TempDir a, b;
  auto base = run("likelihood", a);
  auto changed = run("likelihood", b, {"process.beta_max=10"});
  EXPECT_NE(base["gaussian-d2-vp"]["nll_ode_exact"], changed["gaussian-d2-vp"]["nll_ode_exact"]);
  EXPECT_EQ(base["gaussian-d2-ve"]["nll_ode_exact"], changed["gaussian-d2-ve"]["nll_ode_exact"]);
}

TEST(Experiments, EbmNormalisesItsEnergyAndIsNoBetterThanTheTruth) {
  TempDir dir;
  auto m = run("ebm", dir, {"train.steps=1500", "sample.n=500", "sample.steps_per_level=20"});
  // mog2 at σ_min: the exact NLL is log(2πe(1 + σ²)) + H(0.2, 0.8) per point, about 3.345 nats. No normalised
  // density beats the truth on its own samples (Gibbs' inequality): a wrong log Z fails this.
  const auto& mog2 = m["mog2"];
  EXPECT_NEAR(mog2["nll_true"].get<double>(), 3.345, 0.05);
  EXPECT_GE(mog2["nll"].get<double>(), mog2["nll_true"].get<double>() - 3 * mog2["nll_standard_error"].get<double>() - 0.02);
  EXPECT_LT(mog2["total_variation"].get<double>(), 0.5);
}

TEST(Experiments, MnistEmaWritesWhatItReturnsAndFdFallsAlongTraining) {
  // A tiny U-Net on 16×16 digits (its classifier is trained once into runs/ of the working directory).
  TempDir dir;
  auto m = run("mnist-ema", dir,
               {"train.steps=80", "train.warmup=10", "sample.n=32", "sample.nfe=11", "data.image_size=16",
                "model.channels=8", "model.attention=[]", "data.n_train=1000"});
  // metrics.json holds the floor, the timings and the checks, not only the evaluations (run() compares them).
  for (const char* key : {"evaluations", "fd_cls_real", "train_seconds", "eval_seconds", "checks"})
    EXPECT_TRUE(m.contains(key)) << key;
  const auto& e = m["evaluations"];
  ASSERT_EQ(e.size(), 10u);  // every 8 steps
  const double first = e["8"]["fd_ema"].get<double>(), last = e["80"]["fd_ema"].get<double>();
  EXPECT_LT(last, 0.5 * first);  // training improves the samples (measured 1 731 -> 579)
  EXPECT_NE(e["80"]["fd_ema"], e["80"]["fd_raw"]);  // two sets of weights
  EXPECT_LT(m["fd_cls_real"].get<double>(), last);  // held-out digits sit below an 80-step model
  EXPECT_EQ(m["checks"]["evaluations"]["value"].get<double>(), 10.0);
}

TEST(Experiments, TablesMatchTheirHeldOutRows) {
  // The full experiment (three tables, about 40 s): SWD and correlation error within 1.5x of the
  // train-vs-held-out floor; 30 training steps instead of 6000 break the correlation checks (ratios
  // 2.3 to 3.8, docs/tables.md).
  TempDir dir;
  auto m = run("tables", dir);
  expect_checks_hold(m, 9);
  for (const char* table : {"breast-cancer", "wine", "digits"}) {
    EXPECT_LE(m[table]["swd_ratio"].get<double>(), 1.5) << table;
    EXPECT_LE(m[table]["correlation_error"].get<double>(), 1.5 * m[table]["correlation_error_floor"].get<double>()) << table;
    EXPECT_TRUE(std::filesystem::exists(dir / (std::string(table) + "-marginals.png"))) << table;
  }
  EXPECT_TRUE(std::filesystem::exists(dir / "digits-samples.png"));
}

TEST(Experiments, AutoNoiseResolvesFromTheDataAndSamplesNearIt) {
  // The experiment on seeds 0 and 1 instead of 0-4 (8 Swiss-roll-preset runs: 2 data sets × preset and
  // auto × 2 seeds, under 3 minutes). With Song & Ermon's one-level step and shell count the Swiss roll's
  // auto runs scattered around 2x the floor (docs/sde.md); the test holds the mean of the Swiss roll's
  // auto runs to the 1.5x, every auto run to 2x, the presets' means to 1.5x, and the resolved
  // values to the functions of the data they come from: σ_min = √0.05 times the noise floor, which on
  // these data is their noise (two moons 0.05; the roll 0.1 over its axis stds 6.62 and 6.95).
  TempDir dir;
  auto m = run("auto-noise", dir, {}, 2);
  for (const char* data : {"swiss-roll", "two-moons"}) {
    const auto& preset = m[std::string(data) + "-preset"];
    const auto& automatic = m[std::string(data) + "-auto"];
    EXPECT_LE(preset["swd_ratio"].get<double>(), 1.5) << data;
    const auto ratios = automatic["swd_ratios"].get<std::vector<double>>();
    ASSERT_EQ(ratios.size(), 2u) << data;
    for (double r : ratios) EXPECT_LE(r, 2.0) << data;
    EXPECT_NEAR(automatic["swd_ratio"].get<double>(), std::accumulate(ratios.begin(), ratios.end(), 0.0) / 2, 1e-12);
    EXPECT_EQ(automatic["nan_samples"].get<int64_t>(), 0) << data;
    EXPECT_GT(automatic["sigma_max"].get<double>(), 2.5) << data;  // standardised / unit-scale data
    EXPECT_LT(automatic["sigma_max"].get<double>(), 5.0) << data;
    const double noise = std::string(data) == "two-moons" ? 0.05 : 0.0147;
    EXPECT_NEAR(automatic["sigma_min"].get<double>(), std::sqrt(0.05) * noise, 0.1 * std::sqrt(0.05) * noise) << data;
    // In 2-D the variance rule asks for more levels than the shell rule's.
    EXPECT_GT(automatic["levels"].get<int64_t>(), ladder_levels(automatic["sigma_max"].get<double>(),
                                                                automatic["sigma_min"].get<double>(), level_ratio(2)))
        << data;
  }
  EXPECT_TRUE(m["checks"]["swd_ratio_swiss-roll_auto"]["holds"].get<bool>());
}

TEST(Experiments, LambdaTTrainsEachWeightingAndMeasuresItsLikelihood) {
  // The full experiment (four VP runs and their PF-ODE NLL, about 80 s): samples within 2x the floor,
  // no NLL below the true density's beyond noise, and the likelihood weighting with importance
  // sampling better than with uniform t (0.45 nats here, 16 standard errors).
  TempDir dir;
  auto m = run("lambda-t", dir);
  expect_checks_hold(m, 8);
  EXPECT_LT(m["likelihood-is"]["nll"].get<double>(), m["likelihood"]["nll"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(dir / "samples.png"));
}

TEST(Experiments, NcsnAndDdpmReachTheFloorAndOnlyDdpmSurvivesATenthOfTheSteps) {
  // The full experiment (two Swiss-roll runs of 12 000 steps, about a minute): at 1 000 NFE both sit
  // within 2x the data-vs-data floor; at 100 NFE annealed Langevin's 10 steps per level at eps = 1e-5
  // cannot mix (4.7x the floor here) while each ancestral step draws the exact Gaussian posterior (1.3x).
  TempDir dir;
  auto m = run("ncsn-ddpm", dir);
  expect_checks_hold(m, 4);
  EXPECT_EQ(m["ddpm_full"]["nfe"].get<int64_t>(), 1000);
  EXPECT_EQ(m["ncsn_full"]["nfe"].get<int64_t>(), 1001);  // 10 levels x 100 steps and the final Tweedie step
  EXPECT_GT(m["ncsn_tenth"]["swd_ratio"].get<double>(), 2.0);
  EXPECT_LT(m["ddpm_tenth"]["swd_ratio"].get<double>(), m["ncsn_tenth"]["swd_ratio"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(dir / "samples.png"));
}

TEST(Experiments, NcsnAndDdpmOnMnistSampleDigitsOfEveryClass) {
  // Shortened (16x16 digits, 16 base channels, 400 steps, 200 samples at 500 NFE; about 2.5 minutes):
  // both models' samples are digits (FD-cls below a tenth of uniform noise's) of every class (each at
  // least 2 % of the samples), and 50 annealed-Langevin steps in all leave NCSN's samples far worse.
  TempDir dir;
  auto m = run("ncsn-ddpm-mnist", dir,
               {"data.image_size=16", "model.attention=[]", "model.channels=16", "train.steps=400", "sample.n=200",
                "sample.steps_per_level=50"});
  expect_checks_hold(m, 6);
  EXPECT_GT(m["ncsn_tenth"]["fd_cls"].get<double>(), 2 * m["ncsn_full"]["fd_cls"].get<double>());
  EXPECT_LT(m["fd_cls_real"].get<double>(), m["ddpm_full"]["fd_cls"].get<double>());
  for (const char* png : {"ncsn_full.png", "ncsn_tenth.png", "ddpm_full.png", "ddpm_tenth.png"})
    EXPECT_TRUE(std::filesystem::exists(dir / png)) << png;
}

TEST(Experiments, MemorisationCopiesFallAsTheTrainingSetGrows) {
  // Shortened (16x16 digits, 16 base channels, 800 steps at learning rate 2e-3, sets of 32 and 256;
  // about 2.5 minutes): the model trained on 32 digits copies them (half its samples have d1/d2 < 1/3,
  // and its samples sit closer to its training digits than to held-out ones); the one on 256 does not.
  TempDir dir;
  auto m = run("memorisation", dir,
               {"data.n_train=256", "data.image_size=16", "model.attention=[]", "model.channels=16",
                "train.steps=800", "train.lr=2e-3", "sample.n=64"});
  expect_checks_hold(m, 2);
  ASSERT_TRUE(m.contains("32") && m.contains("256")) << m.dump();
  EXPECT_GE(m["32"]["copy_fraction"].get<double>(), 0.25);
  EXPECT_LT(m["32"]["median_nearest_train_over_nearest_held_out"].get<double>(),
            m["256"]["median_nearest_train_over_nearest_held_out"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(dir / "pairs.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "copy_fraction.png"));
}

TEST(Experiments, FashionCollapseReadsRealImagesAsCoveringAndNoiseAsUnrecognisable) {
  // Shortened (16x16 images, 8 and 16 base channels, 200 steps, 64 samples at 10 Langevin steps per level):
  // the measure, not the collapse, is what a short run can check. Held-out images must cover the classes
  // and uniform noise must not count as any class; every recorded state must follow from its own figures
  // by the rule fixed in the experiment; the bigger variant doubles the channels and adds dropout.
  TempDir dir;
  auto m = run("fashion-collapse", dir,
               {"data.image_size=16", "data.n_train=2000", "model.attention=[]", "model.channels=8",
                "train.steps=200", "train.warmup=20", "sample.n=64", "sample.steps_per_level=10"});
  expect_checks_hold(m, 6);
  EXPECT_GE(m["held_out"]["effective_classes"].get<double>(), 8.0);
  EXPECT_EQ(m["uniform_noise"]["state"], "unrecognisable");
  EXPECT_EQ(m["seed"]["channels"].get<int64_t>(), 8);
  EXPECT_EQ(m["bigger-dropout"]["channels"].get<int64_t>(), 16);
  EXPECT_EQ(m["bigger-dropout"]["dropout"].get<double>(), 0.1);
  const double fd_limit = m["fd_cls_unrecognisable_above"].get<double>();
  EXPECT_LT(m["held_out"]["fd_cls"].get<double>(), fd_limit);
  EXPECT_GT(m["uniform_noise"]["fd_cls"].get<double>(), fd_limit);
  for (const char* variant : {"seed", "bigger-dropout"}) {
    const auto& evaluations = m[variant]["evaluations"];
    ASSERT_EQ(evaluations.size(), 4u) << variant;
    for (const auto& [step, e] : evaluations.items()) {
      double h = 0, top = 0, total = 0;
      for (double p : e["recognised_class_fractions"].get<std::vector<double>>()) {
        if (p > 0) h -= p * std::log(p);
        top = std::max(top, p);
        total += p;
      }
      const double recognised = e["recognised_fraction"].get<double>();
      EXPECT_NEAR(total, recognised > 0 ? 1.0 : 0.0, 1e-9) << variant << " " << step;
      EXPECT_NEAR(e["effective_classes"].get<double>(), std::exp(h), 1e-9) << variant << " " << step;
      const char* state = recognised < 0.1 || e["fd_cls"].get<double>() > fd_limit ? "unrecognisable"
                          : std::exp(h) < 5 || top > 0.5                             ? "collapsed"
                                                                                      : "covers";
      EXPECT_EQ(e["state"], state) << variant << " " << step;
    }
  }
  for (const char* file : {"classes.png", "seed_samples.png", "bigger-dropout_samples.png"})
    EXPECT_TRUE(std::filesystem::exists(dir / file)) << file;
}

TEST(Experiments, EbmCdGetsTheModeWeightsWithMetropolisMoves) {
  // Shortened (1 500 steps of 20 Langevin steps instead of 4 000 of 40; about 2 minutes): CD with the
  // Metropolis-Hastings moves puts 0.2 +- 0.05 on the (5,5) mode and reaches the true NLL within 0.1 nats;
  // without them the chains cannot leave their basins and the model drives that mode's mass to zero.
  TempDir dir;
  auto m = run("ebm-cd", dir, {"train.steps=1500", "objective.sgld_steps=20"});
  expect_checks_hold(m, 3);
  EXPECT_NEAR(m["cd"]["weight_55"].get<double>(), 0.2, 0.05);
  EXPECT_LE(std::abs(m["cd"]["nll_gap"].get<double>()), 0.1);
  EXPECT_NEAR(m["cd"]["buffer_weight_55"].get<double>(), 0.2, 0.05);
  EXPECT_LT(m["cd-short-run"]["weight_55"].get<double>(), 0.05);
  EXPECT_GT(m["cd-short-run"]["nll_gap"].get<double>(), 1.0);
  EXPECT_NEAR(m["truth"]["weight_55"].get<double>(), 0.2, 1e-6);
  EXPECT_TRUE(std::filesystem::exists(dir / "ebm_cd.png"));
}

TEST(Experiments, EbmMnistDetectsFashionAndItsChainsBecomeDigits) {
  // Shortened (150 steps, 8 base channels for both the energy CNN and the U-Net; about 2 minutes):
  // -U(x) of the CD energy still separates MNIST test digits from Fashion-MNIST and noise, descending the
  // energy removes noise, and the replay buffer's chains have moved from uniform noise towards the digits' ink.
  TempDir dir;
  auto m = run("ebm-mnist", dir, {"train.steps=150", "model.channels=8"});
  expect_checks_hold(m, 1);
  EXPECT_GE(m["auroc"]["energy"]["fashion-mnist"].get<double>(), 0.95);
  EXPECT_GE(m["auroc"]["energy"]["uniform-noise"].get<double>(), 0.95);
  EXPECT_GT(m["denoising"]["psnr_denoised"].get<double>(), m["denoising"]["psnr_noisy"].get<double>());
  EXPECT_LT(m["buffer_mean_pixel"].get<double>(), 0.35);  // uniform restarts: 0.5
  for (const char* png : {"sgld_samples.png", "buffer.png", "denoising.png", "ood.png"})
    EXPECT_TRUE(std::filesystem::exists(dir / png)) << png;
}

TEST(Experiments, FewStepReflowAndConsistencyModelSampleInOneOrTwoSteps) {
  // `experiment few-step` at a quarter of the steps: 2-rectified flow at 1 step ≤ half the flow's SWD, consistency
  // model ≤ 2× the floor at 2 NFE and 3× at 1 (Swiss roll); reflow straightens the 8 Gaussians' flow too; 3M and
  // UniPC at 10 NFE, exact score, within 1.3× under VP, VE and EDM at the grid end the sweep selects (6 checks).
  TempDir dir;
  auto m = run("few-step", dir, {"train.steps=3000", "sample.n=2000"});
  expect_checks_hold(m, 9);
  EXPECT_LT(m["8gaussians"]["reflow_one_step_ratio"].get<double>(), 0.5);
  // Every method ran at 10 NFE, and the consistency model at 1.
  for (const char* key : {"teacher_edm", "teacher_dpm3m", "teacher_unipc", "flow_heun", "reflow_euler", "consistency"})
    EXPECT_TRUE(m["swiss-roll"][key]["swd"].contains("10")) << key;
  EXPECT_EQ(m["swiss-roll"]["consistency"]["nfe_spent"]["1"].get<int64_t>(), 1);
  for (const char* png : {"swd_vs_nfe.png", "grid_end.png"}) EXPECT_TRUE(std::filesystem::exists(dir / png)) << png;
}
