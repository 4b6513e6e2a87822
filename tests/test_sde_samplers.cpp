// Every reverse-time sampler, driven by the exact score of an 8-mode Gaussian mixture under each
// process, reproduces the mixture (DESIGN §6): SWD ≤ 1.5 × the data-vs-data SWD at 5 000 samples, mode
// weights within ±0.03, no NaN; and the fast solvers do it within their NFE budgets.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/metrics/metrics.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/samplers/ode.hpp"
#include "scorediff/samplers/predictor_corrector.hpp"
#include "scorediff/samplers/registry.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

constexpr int64_t kSamples = 5000;
constexpr int64_t kProjections = 200;

std::shared_ptr<const NoiseProcess> sde_process_named(const std::string& name) {
  ProcessOptions o;
  o.name = name;
  o.sigma_min = name == "edm" ? 0.002 : 0.01;
  o.sigma_max = name == "edm" ? 80.0 : 40.0;
  return make_process(o);
}

struct Quality {
  double swd_ratio, weight_error;
  int64_t nan, nfe;
};

Quality sample_quality(const std::string& sampler, const std::string& process_name, SampleOptions o = {},
                       uint64_t seed = 11) {
  auto mixture = eight_gaussians();
  auto process = sde_process_named(process_name);
  o.sampler = sampler;
  o.n = kSamples;
  check_sampler(o, *process);
  auto gen = make_generator(seed);
  SampleResult r = run_sampler(o, mixture_score_fn(mixture, process), *process, 2, gen, /*quiet=*/true);
  // At 5 000 points the SWD is dominated by the multinomial noise of the mode weights (one data set
  // can sit twice as far from the mixture as another), so both sides average over 4 fresh data sets.
  double swd = 0, floor = 0;
  for (int i = 0; i < 4; ++i) {
    torch::Tensor data = mixture->sample(kSamples, gen).to(torch::kFloat64);
    torch::Tensor data2 = mixture->sample(kSamples, gen).to(torch::kFloat64);
    auto metric_gen = make_generator(seed + 1 + i);
    swd += sliced_wasserstein(r.samples.to(torch::kFloat64), data, kProjections, metric_gen) / 4;
    auto metric_gen2 = make_generator(seed + 1 + i);
    floor += sliced_wasserstein(data2, data, kProjections, metric_gen2) / 4;
  }
  auto w = mode_weights(r.samples, mixture->means());
  double err = 0;
  for (double wi : w) err = std::max(err, std::abs(wi - 0.125));
  return {swd / floor, err, count_non_finite(r.samples), r.nfe};
}

void expect_reproduces(const Quality& q, const std::string& what) {
  EXPECT_LE(q.swd_ratio, 1.5) << what;
  EXPECT_LE(q.weight_error, 0.03) << what;
  EXPECT_EQ(q.nan, 0) << what;
  std::printf("%-34s SWD ratio %.3f  max weight error %.4f  NFE %ld\n", what.c_str(), q.swd_ratio, q.weight_error,
              static_cast<long>(q.nfe));
}

}  // namespace

void expect_every_sampler_reproduces(const std::string& process) {
  for (const auto& sampler : samplers_for(*sde_process_named(process))) {
    if (samplers().get(sampler).kind == SamplerKind::Langevin) continue;  // own step counts (test_samplers)
    // A consistency model's sampler: with a diffusion model's Tweedie mean it draws blurred points (test_consistency).
    if (!samplers().get(sampler).final_denoise) continue;
    expect_reproduces(sample_quality(sampler, process), sampler + " / " + process);
  }
}

TEST(SdeSamplers, EverySamplerReproducesTheMixtureUnderVe) { expect_every_sampler_reproduces("ve"); }
TEST(SdeSamplers, EverySamplerReproducesTheMixtureUnderVp) { expect_every_sampler_reproduces("vp"); }
TEST(SdeSamplers, EverySamplerReproducesTheMixtureUnderSubVp) { expect_every_sampler_reproduces("subvp"); }
TEST(SdeSamplers, EverySamplerReproducesTheMixtureUnderEdm) { expect_every_sampler_reproduces("edm"); }
TEST(SdeSamplers, EverySamplerReproducesTheMixtureUnderFlow) { expect_every_sampler_reproduces("flow"); }

// Issue 25: the flow process with the mixture's exact velocity (its probability-flow drift), 20 Euler steps in t.
TEST(SdeSamplers, FlowEulerWithTheExactVelocity) {
  SampleOptions o;
  o.nfe = 20;
  o.denoise = false;
  Quality q = sample_quality("ode-euler", "flow", o);
  EXPECT_LE(q.swd_ratio, 1.5);
  expect_reproduces(q, "ode-euler 20 steps / flow");
  EXPECT_EQ(q.nfe, 20);
}

TEST(SdeSamplers, FastSolversWithinTheirBudgets) {
  for (std::string process : {"vp", "ve"}) {
    SampleOptions rk45;
    rk45.rtol = rk45.atol = 1e-5;
    Quality q = sample_quality("ode-rk45", process, rk45);
    expect_reproduces(q, "ode-rk45 rtol=atol=1e-5 / " + process);
    EXPECT_LT(q.nfe, 200) << process;
    SampleOptions dpm;
    dpm.nfe = 20;
    q = sample_quality("dpm-solver++", process, dpm);
    expect_reproduces(q, "dpm-solver++ 20 NFE / " + process);
    EXPECT_EQ(q.nfe, 20);
    SampleOptions edm;
    edm.nfe = 35;
    q = sample_quality("edm", process, edm);
    expect_reproduces(q, "edm 35 NFE / " + process);
    EXPECT_EQ(q.nfe, 35);
  }
}

// The higher-order multistep solvers within 1.3x the floor at 20 NFE (19 steps and the final denoising), and
// without blowing up at 10 (issue 25 asks 1.3x at 10 NFE: not reached yet, docs/sde.md has the figures).
TEST(SdeSamplers, HigherOrderSolversAtTwentyAndTenNfe) {
  for (std::string process : {"vp", "ve", "edm", "flow"}) {
    for (std::string sampler : {"dpm-solver++3m", "unipc"}) {
      for (int64_t nfe : {20, 10}) {
        SampleOptions o;
        o.nfe = nfe;
        Quality q = sample_quality(sampler, process, o);
        std::printf("%-34s SWD ratio %.3f\n", (sampler + " " + std::to_string(nfe) + " NFE / " + process).c_str(),
                    q.swd_ratio);
        EXPECT_LE(q.swd_ratio, nfe == 20 ? 1.3 : 3.0) << sampler << " " << nfe << " / " << process;
        EXPECT_LE(q.weight_error, 0.03) << sampler << " / " << process;
        EXPECT_EQ(q.nan, 0);
        EXPECT_EQ(q.nfe, nfe);
      }
    }
  }
}

// Issue 25: at 10 NFE a grid to the process' σ_min spends part of its log-SNR range where the mixture's modes
// (std 0.5) hardly change (`experiment few-step` prints how much); a log-SNR grid that ends there reaches 1.3x. The ends (3M 0.02,
// UniPC 0.07) are those `experiment few-step` selects on sample seeds 5, 6, 7 (its "where the grid ends"); this
// checks seed 11.
TEST(SdeSamplers, HigherOrderSolversAtTenNfeWithAFewStepGrid) {
  for (std::string process : {"vp", "ve", "edm"}) {
    for (std::string sampler : {"dpm-solver++3m", "unipc"}) {
      SampleOptions o;
      o.nfe = 10;
      o.grid = "log-snr";
      const double sigma_end = sampler == "unipc" ? 0.07 : 0.02;
      o.t_end = sde_process_named(process)->t_of_sigma(torch::tensor({sigma_end}, torch::kFloat64)).item<double>();
      Quality q = sample_quality(sampler, process, o);
      std::printf("%-46s SWD ratio %.3f\n",
                  (sampler + " 10 NFE, log-SNR to " + std::to_string(sigma_end).substr(0, 4) + " / " + process).c_str(),
                  q.swd_ratio);
      EXPECT_LE(q.swd_ratio, 1.3) << sampler << " / " << process;
      EXPECT_LE(q.weight_error, 0.03) << sampler << " / " << process;
      EXPECT_EQ(q.nan, 0);
      EXPECT_EQ(q.nfe, 10);
    }
  }
}

TEST(SdeSamplers, StochasticOptionsStillReproduce) {
  SampleOptions churn;
  // Churn adds noise that more steps have to remove: Karras et al. pair it with 256 steps on ImageNet.
  churn.s_churn = 10;
  churn.nfe = 101;
  expect_reproduces(sample_quality("edm", "edm", churn), "edm s_churn=10, 101 NFE / edm");
  SampleOptions ddpm;
  ddpm.eta = 1;
  expect_reproduces(sample_quality("ddim", "vp", ddpm), "ddim eta=1 / vp");
  SampleOptions pc;
  pc.predictor = "em";
  pc.corrector_steps = 2;
  expect_reproduces(sample_quality("pc", "ve", pc), "pc em + 2 langevin / ve");
}

TEST(SdeSamplers, NfeCountsAndGrids) {
  auto vp = sde_process_named("vp");
  SampleOptions o;
  o.sampler = "pc";
  o.nfe = 101;
  o.corrector_steps = 1;
  GridOptions d = grid_options(o, *vp);
  EXPECT_EQ(d.steps, 50);  // (101 − 1 final) / (1 predictor + 1 corrector)
  o.sampler = "edm";
  o.nfe = 35;
  d = grid_options(o, *vp);
  EXPECT_EQ(d.steps, 17);
  EXPECT_EQ(d.grid, GridKind::Karras);
  o.sampler = "dpm-solver++";
  o.nfe = 0;
  d = grid_options(o, *vp);
  EXPECT_EQ(d.steps, 19);
  EXPECT_EQ(d.grid, GridKind::LogSnr);
  o.denoise = false;
  EXPECT_EQ(grid_options(o, *vp).steps, 20);
}

TEST(SdeSamplers, RejectOptionsThatDoNotFit) {
  auto ve = sde_process_named("ve");
  auto vp = sde_process_named("vp");
  SampleOptions o;
  o.sampler = "ancestral";
  EXPECT_THAT_ERROR(check_sampler(o, *ve), "does not fit process 've'; samplers for 've': ");
  o.sampler = "ald";
  EXPECT_THAT_ERROR(check_sampler(o, *vp), "does not fit process 'vp'");
  o.sampler = "pc";
  o.predictor = "ancestral";
  EXPECT_THAT_ERROR(check_sampler(o, *ve), "needs process 'vp'");
  o = SampleOptions{};
  o.sampler = "ode-heun";
  o.nfe = 2;
  EXPECT_THAT_ERROR(check_sampler(o, *vp), "sample.nfe = 2 is too small for sampler 'ode-heun': it needs at least 3");
  o.nfe = 0;
  o.t_end = 2.0;
  EXPECT_THAT_ERROR(check_sampler(o, *vp), "sample.t_end = 2 is outside [t_min, t_max]");
  auto mixture = eight_gaussians();
  ScoreFn score = mixture_score_fn(mixture, vp);
  auto gen = make_generator(1);
  torch::Tensor x = torch::randn({10, 2});
  Rk45SamplerOptions rk45;
  rk45.rtol = 0;
  EXPECT_THAT_ERROR(sample_ode_rk45(score, *vp, x, rk45), "rtol must be > 0");
  PcOptions pc;
  pc.snr = -0.1;
  EXPECT_THAT_ERROR(sample_pc(score, *vp, x, pc, gen), "snr must be >= 0");
  GridOptions d;
  d.steps = 0;
  EXPECT_THAT_ERROR(sample_em(score, *vp, x, d, gen), "at least 1 step");
  d = GridOptions{};
  EXPECT_THAT_ERROR(sample_ancestral(score, *ve, x, d, gen), "needs process 'vp', not 've'");
}
