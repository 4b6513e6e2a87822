// Flow matching (issue 25 §1): the flow process' probability-flow drift is the closed-form velocity of a
// Gaussian, the velocity parametrisation turns that velocity into the exact score, the conditional flow-matching
// loss is DSM with the flow weighting on the same draws, and a velocity MLP trained by it samples the 8-mode
// mixture with 20 Euler steps.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/metrics/metrics.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/train/trainer.hpp"
#include "test_util.hpp"
#include "test_velocity_mlp.hpp"

using namespace scorediff;

namespace {

torch::Tensor gaussian_mean() { return torch::tensor({0.3, -0.5}, torch::kFloat64); }
torch::Tensor gaussian_var() { return torch::tensor({0.25, 1.0}, torch::kFloat64); }

// E[ε − x₀ | x_t] for x₀ ~ N(μ, diag c²) on the flow path: x_t = (1 − t)μ + √V z with V = (1 − t)² c² + t², so
// the velocity is d/dt of that map at fixed z: −μ + (t − (1 − t) c²)/V · (x − (1 − t) μ).
torch::Tensor gaussian_velocity(const torch::Tensor& x, const torch::Tensor& t) {
  const torch::Tensor tt = t.reshape({-1, 1}), mean = gaussian_mean(), var = gaussian_var();
  torch::Tensor v = (1 - tt).pow(2) * var + tt * tt;
  return -mean + (tt - (1 - tt) * var) / v * (x - (1 - tt) * mean);
}

// A network that returns the exact velocity E[ε − x₀ | x] of the Gaussian from what ScoreModel gives it (x/m and
// log σ, no input scaling): for the flow process the closed form above, for others ((m + s) E[ε|x] − x)/m from
// the exact score (x₀ = (x − s ε)/m). ScoreModel's velocity parametrisation must turn it into the exact score.
struct ExactVelocityNet : ScoreNetworkImpl {
  ExactVelocityNet(std::shared_ptr<const NoiseProcess> process, std::shared_ptr<const AnalyticGaussian> gaussian)
      : process(std::move(process)), gaussian(std::move(gaussian)) {}
  torch::Tensor forward(const torch::Tensor& x_hat, const torch::Tensor& log_sigma, const torch::Tensor&) override {
    torch::Tensor t = process->t_of_sigma(torch::exp(log_sigma));
    torch::Tensor m = process->mean_coef(t), s = process->std(t);
    torch::Tensor x = x_hat * m.reshape({-1, 1});
    if (process->name() == "flow") return gaussian_velocity(x, t);
    torch::Tensor eps = -s.reshape({-1, 1}) * gaussian->score(x, m, s);
    return ((m + s).reshape({-1, 1}) * eps - x) / m.reshape({-1, 1});
  }
  std::shared_ptr<const NoiseProcess> process;
  std::shared_ptr<const AnalyticGaussian> gaussian;
};

}  // namespace

TEST(Flow, ProbabilityFlowDriftIsTheGaussiansVelocity) {
  auto process = flow_process();
  EXPECT_DOUBLE_EQ(process->t_max(), 0.99);
  EXPECT_DOUBLE_EQ(process->sigma_at(0.5), 1.0);
  auto gaussian = std::make_shared<AnalyticGaussian>(gaussian_mean(), torch::diag(gaussian_var()));
  ScoreFn score = gaussian_score_fn(gaussian, process);
  auto gen = make_generator(2);
  torch::Tensor x = torch::randn({200, 2}, gen, torch::kFloat64);
  torch::Tensor t = 0.001 + 0.998 * torch::rand({200}, gen, torch::kFloat64);
  torch::Tensor drift = probability_flow_drift(score, *process, x, t);
  EXPECT_TRUE(torch::allclose(drift, gaussian_velocity(x, t), 1e-9, 1e-9));
}

TEST(Flow, VelocityParametrisationGivesTheExactScore) {
  auto gaussian = std::make_shared<AnalyticGaussian>(gaussian_mean(), torch::diag(gaussian_var()));
  ProcessOptions vp;
  vp.name = "vp";
  for (const auto& process : {flow_process(), make_process(vp)}) {
    ScoreModel model(std::make_shared<ExactVelocityNet>(process, gaussian), Parametrisation::Velocity, 0.0);
    auto gen = make_generator(4);
    torch::Tensor x = torch::randn({100, 2}, gen, torch::kFloat64);
    torch::Tensor t = process->t_min() + (process->t_max() - process->t_min()) * torch::rand({100}, gen, torch::kFloat64);
    torch::Tensor m = process->mean_coef(t), s = process->std(t);
    EXPECT_TRUE(torch::allclose(model->score(x, m, s, t), gaussian->score(x, m, s), 1e-8, 1e-8)) << process->name();
  }
}

TEST(Flow, FlowMatchingIsDsmWithTheFlowWeighting) {
  for (std::string name : {"flow", "vp", "edm"}) {
    ProcessOptions po;
    po.name = name;
    auto process = make_process(po);
    // Any differentiable score will do: an affine map of x and t.
    auto gen = make_generator(9);
    torch::Tensor a = torch::randn({3, 3}, gen), b = torch::randn({3}, gen);
    ScoreFn score = [&](const torch::Tensor& x, const torch::Tensor& t) {
      return torch::matmul(x, a) + t.reshape({-1, 1}) * b;
    };
    torch::Tensor x0 = 1.5 * torch::randn({512, 3}, gen);
    ObjectiveOptions cfm;
    cfm.name = "cfm";
    cfm.sigma_sampling = name == "edm" ? "log-normal" : "time";
    ObjectiveOptions dsm = cfm;
    dsm.name = "dsm";
    dsm.weighting = "flow";
    auto g1 = make_generator(21), g2 = make_generator(21);
    torch::Tensor flow_loss = make_objective(cfm)(score, *process, x0, g1).loss;
    torch::Tensor dsm_loss = make_objective(dsm)(score, *process, x0, g2).loss;
    EXPECT_TRUE(torch::allclose(flow_loss, dsm_loss, 1e-4, 1e-4)) << name;
    // ... and the flow weighting is (s (m + s)/m)², σ² on the flow process alone.
    torch::Tensor t = process->t_min() + (process->t_max() - process->t_min()) * torch::tensor({0.2, 0.5, 0.9}, torch::kFloat64);
    torch::Tensor m = process->mean_coef(t), s = process->std(t);
    torch::Tensor w = loss_weight(dsm, *process, t, s);
    EXPECT_TRUE(torch::allclose(w, (s * (m + s) / m).pow(2), 1e-12)) << name;
    EXPECT_EQ(torch::allclose(w, process->sigma(t).pow(2), 1e-6), name == "flow") << name;
  }
  ObjectiveOptions bad;
  bad.name = "cfm";
  bad.sigma_sampling = "importance";
  EXPECT_THAT_ERROR(validate(bad, *flow_process()), "objective.name = 'cfm' draws times");
  bad.sigma_sampling = "time";
  bad.weighting = "snr";
  EXPECT_THAT_ERROR(validate(bad, *flow_process()), "objective.weighting = 'snr' does not apply");
}

TEST(Flow, TrainedVelocityMlpSamplesTheMixtureWithTwentyEulerSteps) {
  const auto shared_mixture = eight_gaussians();
  const GaussianMixture& mixture = *shared_mixture;
  auto gen = make_generator(5);
  torch::Tensor data = mixture.sample(20000, gen);
  auto process = flow_process();
  ObjectiveOptions oo;
  oo.name = "cfm";
  oo.sigma_sampling = "time";
  ScoreModel model = train_velocity_mlp(process, oo, make_objective(oo), data, data.std().item<double>());
  SampleOptions so;
  so.sampler = "ode-euler";
  so.nfe = 20;
  so.denoise = false;
  so.n = 5000;
  auto sample_gen = make_generator(8);
  torch::Tensor samples = run_sampler(so, model_score_fn(model, process), *process, 2, sample_gen, true).samples;
  auto m1 = make_generator(1), m2 = make_generator(1);
  torch::Tensor fresh = mixture.sample(5000, gen), other = mixture.sample(5000, gen);
  const double swd = sliced_wasserstein(samples.to(torch::kFloat64), fresh.to(torch::kFloat64), 200, m1);
  const double floor = sliced_wasserstein(other.to(torch::kFloat64), fresh.to(torch::kFloat64), 200, m2);
  std::printf("flow matching, 3000 steps, 20 Euler steps: SWD %.4f, data-vs-data %.4f (ratio %.2f)\n", swd, floor,
              swd / floor);
  EXPECT_LT(swd / floor, 3.0);
}
