// Rectified flow's reflow (issue 25 §2): the coupled flow-matching loss uses the given noise of each pair (checked
// against the loss computed by hand on the same draws), a flow trained on pairs of the exact 8-mode flow's ODE
// samples in one Euler step far better than that exact flow does, and `scorediff reflow` runs, resumes and
// refuses bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/metrics/metrics.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/flow_matching.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/train/trainer.hpp"
#include "test_util.hpp"
#include "test_velocity_mlp.hpp"

using namespace scorediff;

namespace {

// One Euler step of the flow from t_max: SWD of its samples over the data-vs-data floor.
double one_step_ratio(const ScoreFn& score, const NoiseProcess& process, const GaussianMixture& mixture) {
  SampleOptions so;
  so.sampler = "ode-euler";
  so.nfe = 1;
  so.denoise = false;
  so.n = 5000;
  auto gen = make_generator(8), data_gen = make_generator(9);
  torch::Tensor samples = run_sampler(so, score, process, 2, gen, true).samples.to(torch::kFloat64);
  torch::Tensor fresh = mixture.sample(5000, data_gen), other = mixture.sample(5000, data_gen);
  auto m1 = make_generator(1), m2 = make_generator(1);
  return sliced_wasserstein(samples, fresh, 200, m1) / sliced_wasserstein(other, fresh, 200, m2);
}

}  // namespace

TEST(Reflow, CoupledLossUsesTheGivenNoise) {
  auto process = flow_process();
  auto gen = make_generator(2);
  torch::Tensor x0 = torch::randn({16, 2}, gen, torch::kFloat64), eps = torch::randn({16, 2}, gen, torch::kFloat64);
  // Any smooth score will do: the loss is a fixed function of it.
  ScoreFn score = [](const torch::Tensor& x, const torch::Tensor& t) { return -x * per_sample(1 + t, x) + 0.3; };
  ObjectiveOptions oo;
  oo.name = "cfm-coupled";
  oo.sigma_sampling = "time";
  Objective coupled = make_coupled_cfm(oo);
  at::Generator a = make_generator(7), b = make_generator(7);
  LossTerms terms = coupled(score, *process, torch::cat({x0, eps}, 1), a);
  torch::Tensor sigma, level;
  sample_sigmas(oo, *process, 16, b, sigma, level);
  torch::Tensor t = process->t_of_sigma(sigma);
  torch::Tensor m = (1 - t).reshape({-1, 1}), s = t.reshape({-1, 1});
  torch::Tensor x = m * x0 + s * eps;
  torch::Tensor velocity = ((m + s) * (-s * score(x, t)) - x) / m;
  torch::Tensor expected = 0.5 * (velocity - (eps - x0)).pow(2).sum(1);
  EXPECT_TRUE(torch::allclose(terms.loss, expected, 1e-12, 1e-12));
  EXPECT_TRUE(torch::equal(terms.sigma, sigma));
  EXPECT_THAT_ERROR(coupled(score, *process, torch::zeros({4, 3}, torch::kFloat64), a), "even width");
  EXPECT_THAT_ERROR(make_objective(oo), "scorediff reflow");
}

TEST(Reflow, PairsOfTheExactFlowTrainAOneStepSampler) {
  // 1-rectified flow: the exact flow of the 8-mode mixture (its closed-form score). One Euler step lands near the
  // mixture's mean. 2-rectified: an MLP trained on (noise, sample) pairs of that flow's ODE.
  auto mixture = eight_gaussians();
  auto process = flow_process();
  ScoreFn exact = mixture_score_fn(mixture, process);
  const double first = one_step_ratio(exact, *process, *mixture);

  auto gen = make_generator(3);
  torch::Tensor z = process->prior_sample(20000, 2, gen, torch::kFloat64);
  SampleOptions ode;
  ode.sampler = "ode-rk45";
  ode.denoise = false;
  ode.n = 20000;
  torch::Tensor x0 = run_sampler(ode, exact, *process, 2, gen, true, false, z).samples;
  const double t_max = process->t_max();
  torch::Tensor eps = (z - (1 - t_max) * x0) / t_max;
  ObjectiveOptions oo;
  oo.name = "cfm-coupled";
  oo.sigma_sampling = "time";
  ScoreModel model = train_velocity_mlp(process, oo, make_coupled_cfm(oo), torch::cat({x0, eps}, 1).to(torch::kFloat32),
                                        x0.std().item<double>());
  const double second = one_step_ratio(model_score_fn(model, process), *process, *mixture);
  std::printf("one Euler step, SWD over the floor: exact (1-rectified) flow %.2f, 2-rectified after 3000 steps %.2f\n",
              first, second);
  EXPECT_GT(first, 5.0);
  EXPECT_LT(second, 0.5 * first);
}

TEST(CliReflow, StraightensATrainedFlowAndResumes) {
  TempDir dir;
  CliResult flow = run_cli("train -c swiss-roll-flow -o flow --set train.steps=300 --set data.n_train=1000 --no-sample -q",
                           dir.path());
  ASSERT_EQ(flow.status, 0) << flow.err;
  const std::string reflow = "reflow --ckpt flow/last.safetensors --pairs 600 --set train.steps=40 --set sample.n=300 -q";
  CliResult whole = run_cli(reflow + " -o whole --no-sample", dir.path());
  ASSERT_EQ(whole.status, 0) << whole.err;
  ASSERT_EQ(run_cli(reflow + " -o split --stop-at 15", dir.path()).status, 0);
  CliResult resumed = run_cli(reflow + " -o split --resume --no-sample", dir.path());
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  TensorFile a = read_safetensors(dir / "whole/last.safetensors"), b = read_safetensors(dir / "split/last.safetensors");
  for (const auto& [name, t] : a.tensors) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  TensorFile pairs = read_safetensors(dir / "whole/pairs.safetensors");
  EXPECT_EQ(pairs.at("x0").sizes(), (std::vector<int64_t>{600, 2}));
  CliResult distilled = run_cli("reflow --ckpt whole/last.safetensors --distill --pairs 300 -o one --set train.steps=20 "
                                "--set sample.n=200 -q", dir.path());
  ASSERT_EQ(distilled.status, 0) << distilled.err;
  EXPECT_NE(distilled.out.find("\"nfe\":1"), std::string::npos) << distilled.out;
  expect_bad_input("reflow --ckpt flow/last.safetensors --pairs 0 -o x", dir.path(), "--pairs");
  expect_bad_input("reflow --ckpt flow/last.safetensors -c swiss-roll -o x", dir.path(), "--config does not apply");
  expect_bad_input("reflow --ckpt missing.safetensors -o x", dir.path(), "missing.safetensors");
  CliResult vp = run_cli("train -c swiss-roll-vp -o vp --set train.steps=5 --no-sample -q", dir.path());
  ASSERT_EQ(vp.status, 0) << vp.err;
  expect_bad_input("reflow --ckpt vp/last.safetensors -o x", dir.path(), "needs a flow model");
  expect_bad_input("train -c swiss-roll-flow --set objective.name=cfm-coupled -o x", dir.path(), "scorediff reflow");
}
