// Consistency models (issue 25 §3): the consistency parametrisation keeps the boundary condition f(x, σ_min) = x
// exactly, the level grid and the teacher's Heun step match their closed forms, multistep consistency sampling
// with the exact consistency function of a Gaussian gives that Gaussian at 1, 2 and 4 NFE, a student distilled
// from the exact score of the 8-mode mixture samples it in 1 and 2 steps, and distillation resumes bit for bit.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/metrics/metrics.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/consistency.hpp"
#include "scorediff/pipeline/few_step.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/samplers/consistency.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/train/trainer.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

std::shared_ptr<const NoiseProcess> edm_process(double sigma_max = 80.0) {
  ProcessOptions o;
  o.name = "edm";
  o.sigma_min = 0.002;
  o.sigma_max = sigma_max;
  return make_process(o);
}

// f(x, σ) = x + σ² s(x, t(σ)) of a score, as the objective and the sampler read it (m = 1).
torch::Tensor consistency_of(ScoreModel& model, const NoiseProcess& process, const torch::Tensor& x, double sigma) {
  torch::Tensor s = torch::full({x.size(0)}, sigma, x.options());
  torch::Tensor t = process.t_of_sigma(s.to(torch::kFloat64)).to(x.dtype());
  return x + sigma * sigma * model->score(x, torch::ones_like(s), s, t);
}

ModelOptions student_options(double sigma_data) {
  ModelOptions mo;
  mo.width = 128;
  mo.depth = 3;
  mo.param = "consistency";
  mo.sigma_min = 0.002;
  mo.sigma_data = sigma_data;
  return mo;
}

}  // namespace

TEST(Consistency, ParametrisationMeetsTheBoundaryConditionExactly) {
  auto process = edm_process();
  auto gen = make_generator(3);
  ModelOptions mo = student_options(0.5);
  ScoreModel consistency = make_model(mo, 2, gen);
  consistency->to(torch::kFloat64);
  torch::Tensor x = 3 * torch::randn({64, 2}, gen, torch::kFloat64);
  // f(x, σ_min) = x whatever the weights: c_skip = 1 and c_out = 0 there.
  EXPECT_LT((consistency_of(consistency, *process, x, 0.002) - x).abs().max().item<double>(), 1e-12);
  // Away from σ_min it is a network output, not the identity.
  EXPECT_GT((consistency_of(consistency, *process, x, 1.0) - x).abs().max().item<double>(), 1e-2);
  // EDM's denoiser with the same weights breaks the condition (c_out(σ_min) = σ_min σ_d/√(σ_min² + σ_d²) ≠ 0),
  // and equals the consistency form with σ_min = 0.
  ModelOptions denoiser = mo;
  denoiser.param = "denoiser";
  denoiser.sigma_min = 0;
  auto gen2 = make_generator(3);
  ScoreModel edm = make_model(denoiser, 2, gen2);
  edm->to(torch::kFloat64);
  EXPECT_GT((consistency_of(edm, *process, x, 0.002) - x).abs().max().item<double>(), 1e-5);
  consistency->set_boundary_sigma(0.0);
  EXPECT_LT((consistency_of(consistency, *process, x, 0.7) - consistency_of(edm, *process, x, 0.7)).abs().max().item<double>(),
            1e-12);
  EXPECT_THAT_ERROR(make_model([] {
                      ModelOptions o;
                      o.sigma_min = 0.1;
                      o.sigma_data = 1;
                      return o;
                    }(), 2, gen),
                    "model.param = 'consistency' only");
}

TEST(Consistency, LevelsAreEdmsGridAndTheTeacherStepIsHeun) {
  std::vector<double> levels = consistency_levels(0.002, 80.0, 18);
  ASSERT_EQ(levels.size(), 18u);
  EXPECT_DOUBLE_EQ(levels.front(), 0.002);
  EXPECT_DOUBLE_EQ(levels.back(), 80.0);
  const double a = std::pow(0.002, 1 / 7.0), b = std::pow(80.0, 1 / 7.0);
  for (int i = 0; i < 18; ++i) EXPECT_NEAR(levels[i], std::pow(a + i / 17.0 * (b - a), 7), 1e-12 * levels[i]);

  // Gaussian data N(0, τ²): the probability-flow ODE maps x at σ to x √(τ² + σ'²)/√(τ² + σ²) at σ'. Heun's error
  // per step is third order: a step of half the width is ~8 times closer.
  auto process = edm_process();
  const double tau = 0.5;
  ScoreFn exact = [&](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor sigma = process->sigma(t.to(torch::kFloat64)).to(x.dtype());
    return -x / per_sample(sigma * sigma + tau * tau, x);
  };
  auto gen = make_generator(4);
  ModelOptions mo = student_options(tau);
  ScoreModel student = make_model(mo, 2, gen), target = make_model(mo, 2, gen);
  ObjectiveOptions oo;
  oo.name = "consistency";
  ConsistencyObjective objective(oo, exact, ema_target(student, target, process), process);
  EXPECT_TRUE(objective.distilling());
  torch::Tensor x = torch::randn({8, 2}, gen, torch::kFloat64);
  auto error = [&](double from, double to) {
    torch::Tensor f = torch::full({8}, from, torch::kFloat64), t = torch::full({8}, to, torch::kFloat64);
    torch::Tensor truth = x * std::sqrt((tau * tau + to * to) / (tau * tau + from * from));
    return (objective.teacher_step(x, f, t) - truth).abs().max().item<double>();
  };
  const double full = error(1.0, 0.6), half = error(1.0, 0.8);
  EXPECT_LT(full, 0.05);
  EXPECT_GT(full / half, 6.0);
  EXPECT_LT(full / half, 14.0);
}

TEST(Consistency, SamplerWithTheExactConsistencyFunctionDrawsTheGaussian) {
  // Data N(μ, τ²) per coordinate: the exact consistency function f(x, σ) = μ + r(σ)(x − μ), r = √(τ² + σ_min²)/√(τ²
  // + σ²), given to the sampler as the score (f − x)/σ². From N(0, σ_max²), one step gives mean μ(1 − r(σ_max)) and
  // std r(σ_max)σ_max; each later step re-noises to σ_i and maps again; the moments follow in closed form.
  auto process = edm_process();
  const double mu = 1.5, tau = 0.4, smin = 0.002;
  auto r = [&](double sigma) { return std::sqrt((tau * tau + smin * smin) / (tau * tau + sigma * sigma)); };
  ScoreFn score = [&](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor sigma = per_sample(process->sigma(t.to(torch::kFloat64)).to(x.dtype()), x);
    torch::Tensor ratio = torch::sqrt((tau * tau + smin * smin) / (tau * tau + sigma * sigma));
    torch::Tensor f = mu + ratio * (x - mu);
    return (f - x) / (sigma * sigma);
  };
  for (int64_t nfe : {1, 2, 4}) {
    SampleOptions so;
    so.sampler = "consistency";
    so.nfe = nfe;
    GridOptions g = grid_options(so, *process);
    EXPECT_EQ(g.steps, nfe);  // no evaluation is kept back for a final Tweedie step
    EXPECT_FALSE(g.denoise);
    std::vector<double> times = time_grid(*process, g.steps, g.grid, g.rho, g.t_end);
    double mean = 0, var = 80.0 * 80.0;
    for (int64_t i = 0; i < nfe; ++i) {
      if (i > 0) var += times[i] * times[i] - smin * smin;
      const double k = r(times[i]);
      mean = mu + k * (mean - mu);
      var *= k * k;
    }
    auto gen = make_generator(10 + nfe);
    torch::Tensor x = process->prior_sample(40000, 2, gen, torch::kFloat64);
    SampleResult out = sample_consistency(score, *process, x, g, gen);
    EXPECT_EQ(out.nfe, nfe);
    const double n = 80000;
    EXPECT_NEAR(out.samples.mean().item<double>(), mean, 5 * std::sqrt(var / n)) << nfe;
    EXPECT_NEAR(out.samples.var().item<double>(), var, 5 * var * std::sqrt(2 / n)) << nfe;
    // The moments are the data's (τ² + σ_min²) to within the prior's mismatch.
    EXPECT_NEAR(std::sqrt(var), std::sqrt(tau * tau + smin * smin), 0.01) << nfe;
  }
}

namespace {

// Distils the exact score of the 8-mode mixture into a consistency MLP; returns the SWD at 1 and 2 NFE over the
// data-vs-data floor.
std::pair<double, double> distil_mixture(int64_t steps, double* floor_out = nullptr) {
  auto mixture = eight_gaussians();
  auto gen = make_generator(5);
  torch::Tensor data = mixture->sample(20000, gen).to(torch::kFloat32);
  auto process = edm_process(20.0);
  ScoreFn teacher = mixture_score_fn(mixture, process);
  ModelOptions mo = student_options(data.std().item<double>());
  auto init = make_generator(6);
  ScoreModel student = make_model(mo, 2, init), target = make_model(mo, 2, init);
  ObjectiveOptions oo;
  oo.name = "consistency";
  TrainOptions to;
  to.steps = steps;
  to.batch = 256;
  to.lr = 1e-3;
  Objective objective = ConsistencyObjective(oo, teacher, ema_target(student, target, process), process);
  Trainer trainer(student, process, objective, level_count(oo, *process), data, to, 7);
  for (int64_t i = 0; i < steps; ++i) trainer.step();
  ScoreModel model = make_model(mo, 2, init);
  trainer.copy_ema_to(model);
  model->eval();
  torch::Tensor fresh = mixture->sample(5000, gen), other = mixture->sample(5000, gen);
  auto m0 = make_generator(1);
  const double floor = sliced_wasserstein(other, fresh, 200, m0);
  if (floor_out != nullptr) *floor_out = floor;
  double ratio[2];
  for (int64_t nfe : {1, 2}) {
    SampleOptions so;
    so.sampler = "consistency";
    so.nfe = nfe;
    so.n = 5000;
    auto sample_gen = make_generator(8);
    torch::Tensor samples = run_sampler(so, model_score_fn(model, process), *process, 2, sample_gen, true).samples;
    auto m1 = make_generator(1);
    ratio[nfe - 1] = sliced_wasserstein(samples.to(torch::kFloat64), fresh, 200, m1) / floor;
  }
  return {ratio[0], ratio[1]};
}

}  // namespace

TEST(Consistency, DistilledFromTheExactMixtureScoreSamplesInOneAndTwoSteps) {
  double floor = 0;
  auto [one, two] = distil_mixture(3000, &floor);
  std::printf("consistency distillation of the exact 8-mode score, 3000 steps: SWD/floor 1 NFE %.3f, 2 NFE %.3f (floor %.4f)\n",
              one, two, floor);
  // Before the target copied the student's Fourier frequencies (buffers), this gave 10 and 7.
  EXPECT_LT(one, 2.5);
  EXPECT_LT(two, 2.5);
}

TEST(Consistency, DistillationResumesBitForBit) {
  Config config = load_config("swiss-roll-edm", {"train.steps=12", "train.log_every=4", "data.n_train=500",
                                                 "model.param=consistency", "objective.name=consistency",
                                                 "objective.target_decay=0.9", "objective.weighting=uniform",
                                                 "sample.sampler=consistency"});
  config.model.sigma_min = 0.002;
  // The teacher: an exact-looking stand-in, the standard normal's score (any fixed function will do).
  ScoreFn teacher = [](const torch::Tensor& x, const torch::Tensor& t) { return -x / per_sample(1 + t * t, x); };
  TrainRunOptions options(false, true);
  options.objective = [&](ScoreModel student, const Prepared& p, const Config& c) -> Objective {
    auto unused = make_generator(0);
    ScoreModel target = make_model(c.model, 2, unused);
    return ConsistencyObjective(c.objective, teacher, ema_target(student, target, p.process), p.process);
  };
  TempDir whole, split;
  train_run(config, whole.path(), options);
  TrainRunOptions first = options, second = options;
  first.stop_at = 5;
  second.resume = true;
  train_run(config, split.path(), first);
  train_run(config, split.path(), second);
  TensorFile a = read_safetensors(whole / "last.safetensors"), b = read_safetensors(split / "last.safetensors");
  int targets = 0;
  for (const auto& [name, t] : a.tensors) {
    targets += name.rfind("consistency_target.", 0) == 0;
    ASSERT_TRUE(b.contains(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  }
  EXPECT_GT(targets, 0);
  // The target moved away from the student's initial weights, and differs from the student (μ = 0.9).
  EXPECT_FALSE(torch::equal(a.at("consistency_target.net.layer3.weight"), a.at("model.net.layer3.weight")));
}

TEST(Consistency, ConfigurationErrorsNameTheProblem) {
  EXPECT_THAT_ERROR(load_config("swiss-roll-flow", {"objective.name=consistency"}), "m(t) = 1");
  EXPECT_THAT_ERROR(load_config("swiss-roll-edm", {"objective.target_decay=0.5"}), "apply to objective.name = 'consistency'");
  EXPECT_THAT_ERROR(load_config("swiss-roll-edm", {"objective.weighting=ict"}), "'ict' applies to objective.name");
  EXPECT_THAT_ERROR(load_config("swiss-roll-edm", {"objective.name=consistency"}), "weights its pairs");
  EXPECT_THAT_ERROR(load_config("swiss-roll-edm", {"objective.name=consistency", "objective.weighting=uniform", "objective.target_decay=1"}),
                    "objective.target_decay");
  EXPECT_THAT_ERROR(make_objective([] {
                      ObjectiveOptions o;
                      o.name = "consistency";
                      return o;
                    }()),
                    "scorediff distill");
}

TEST(CliDistill, DistilsATrainedTeacherAndSamplesInTwoSteps) {
  TempDir dir;
  const std::string small = "--set train.steps=300 --set data.n_train=1000 --set sample.n=500 -q";
  CliResult teacher = run_cli("train -c swiss-roll-edm -o teacher " + small, dir.path());
  ASSERT_EQ(teacher.status, 0) << teacher.err;
  CliResult cd = run_cli("distill --ckpt teacher/last.safetensors -o cd --set train.steps=200 --set sample.n=500 -q", dir.path());
  ASSERT_EQ(cd.status, 0) << cd.err;
  EXPECT_NE(cd.out.find("\"nfe\":2"), std::string::npos) << cd.out;
  CliResult one = run_cli("sample --ckpt cd/last.safetensors --nfe 1 -n 100 -o one.npy -q", dir.path());
  ASSERT_EQ(one.status, 0) << one.err;
  // --dry-run shows the boundary the run will use (the process' sigma_min), not the 0 that means it.
  CliResult dry = run_cli("distill --ckpt teacher/last.safetensors --dry-run", dir.path());
  ASSERT_EQ(dry.status, 0) << dry.err;
  const auto model = dry.out.find("[model]");
  ASSERT_NE(model, std::string::npos) << dry.out;
  const std::string section = dry.out.substr(model, dry.out.find("\n[", model + 1) - model);
  EXPECT_NE(section.find("sigma_min = 0.002"), std::string::npos) << section;
  CliResult ct = run_cli("distill -c swiss-roll-edm -o ct " + small, dir.path());
  ASSERT_EQ(ct.status, 0) << ct.err;
  expect_bad_input("distill --ckpt teacher/last.safetensors -c swiss-roll-edm -o x", dir.path(), "not both");
  expect_bad_input("distill -o x", dir.path(), "--ckpt TEACHER");
  expect_bad_input("distill --ckpt cd/last.safetensors -o x", dir.path(), "consistency model already");
  expect_bad_input("distill --ckpt missing.safetensors -o x", dir.path(), "missing.safetensors");
  expect_bad_input("distill -c swiss-roll-flow -o x", dir.path(), "m(t) = 1");
}
