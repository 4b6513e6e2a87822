// Score SDEs: VE, VP, sub-VP and EDM closed forms against their forward SDE (finite differences and a
// Monte-Carlo simulation), time grids, and the RK45 integrator against closed-form ODE solutions.
#include <gtest/gtest.h>

#include <cmath>

#include "scorediff/core/rng.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/ode_solver.hpp"
#include "scorediff/process/time_grid.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

std::vector<std::shared_ptr<const NoiseProcess>> all_processes() {
  std::vector<std::shared_ptr<const NoiseProcess>> out;
  for (std::string name : {"ve", "vp", "subvp", "edm", "flow"}) {
    ProcessOptions o;
    o.name = name;
    o.sigma_min = name == "edm" ? 0.002 : 0.01;
    o.sigma_max = name == "edm" ? 80.0 : 40.0;
    out.push_back(make_process(o));
  }
  return out;
}

torch::Tensor times_of(const NoiseProcess& p, int64_t n) {
  return torch::linspace(p.t_min(), p.t_max(), n, torch::kFloat64);
}

}  // namespace

TEST(ScoreSde, SigmaInverseRoundTrips) {
  for (const auto& p : all_processes()) {
    torch::Tensor t = times_of(*p, 50);
    EXPECT_TRUE(torch::allclose(p->t_of_sigma(p->sigma(t)), t, 1e-9, 1e-10)) << p->name();
    EXPECT_TRUE(torch::allclose(p->sigma(t), p->std(t) / p->mean_coef(t), 1e-12)) << p->name();
  }
}

TEST(ScoreSde, VpClosedForms) {
  VPProcess vp(0.1, 20.0, 1e-3);
  torch::Tensor t = torch::tensor({0.001, 0.3, 1.0}, torch::kFloat64);
  torch::Tensor m = torch::exp(-0.25 * t * t * 19.9 - 0.05 * t);
  EXPECT_TRUE(torch::allclose(vp.mean_coef(t), m, 1e-12));
  EXPECT_TRUE(torch::allclose(vp.std(t), torch::sqrt(1 - m * m), 1e-12));
  EXPECT_TRUE(torch::allclose(vp.diffusion(t), torch::sqrt(0.1 + t * 19.9), 1e-12));
  VPProcess sub(0.1, 20.0, 1e-3, true);
  EXPECT_TRUE(torch::allclose(sub.std(t), 1 - m * m, 1e-12));
  EXPECT_TRUE(torch::allclose(sub.diffusion(t), torch::sqrt((0.1 + t * 19.9) * (1 - m.pow(4))), 1e-12));
  EXPECT_NEAR(vp.prior_logp(torch::zeros({1, 3}, torch::kFloat64)).item<double>(), -1.5 * std::log(2 * M_PI), 1e-12);
}

TEST(ScoreSde, MomentsFollowTheForwardSdeByFiniteDifferences) {
  // Linear drift f = k(t) x: dm/dt = k m and d s²/dt = 2k s² + g².
  for (const auto& p : all_processes()) {
    const double lo = p->t_min(), hi = p->t_max();
    torch::Tensor t = lo + (hi - lo) * torch::tensor({0.05, 0.2, 0.5, 0.8, 0.95}, torch::kFloat64);
    const double h = 1e-6 * (hi - lo);
    torch::Tensor k = p->drift(torch::ones({5, 1}, torch::kFloat64), t).squeeze(1);
    torch::Tensor dm = (p->mean_coef(t + h) - p->mean_coef(t - h)) / (2 * h);
    torch::Tensor dv = (p->std(t + h).pow(2) - p->std(t - h).pow(2)) / (2 * h);
    EXPECT_TRUE(torch::allclose(dm, k * p->mean_coef(t), 1e-5, 1e-9)) << p->name();
    EXPECT_TRUE(torch::allclose(dv, 2 * k * p->std(t).pow(2) + p->diffusion(t).pow(2), 1e-5, 1e-9)) << p->name();
  }
}

TEST(ScoreSde, MarginalsMatchAMonteCarloSimulationOfTheForwardSde) {
  // 20 000 paths of the forward SDE from x₀ = 1.5 (plus the process' own noise at its first time), by
  // Euler–Maruyama at midpoint times; mean and variance at 5 times within 3 standard errors of m x₀, s².
  const int64_t paths = 20000, steps = 1000;
  const double x0 = 1.5;
  for (const auto& p : all_processes()) {
    auto gen = make_generator(7);
    const double start = p->name() == "edm" ? p->t_min() : 0.0;
    const double end = p->t_max();
    // Steps uniform in t; for flow uniform in log(1 − t), since its rates 1/(1 − t) grow a thousandfold by t_max.
    const bool flow = p->name() == "flow";
    auto time_at = [&](double f) {
      return flow ? 1 - (1 - start) * std::pow((1 - end) / (1 - start), f) : start + f * (end - start);
    };
    std::vector<double> checks;
    for (double f : {0.1, 0.3, 0.5, 0.7, 1.0}) checks.push_back(time_at(f));
    torch::Tensor ts = torch::full({1}, start, torch::kFloat64);
    torch::Tensor x = p->mean_coef(ts).item<double>() * x0 +
                      p->std(ts).item<double>() * torch::randn({paths, 1}, gen, torch::kFloat64);
    size_t next_check = 0;
    double t = start;
    for (int64_t i = 1; i <= steps && next_check < checks.size(); ++i) {
      double f = static_cast<double>(i) / steps;
      double t_new = i == steps ? end : time_at(f);
      double dt = t_new - t;
      torch::Tensor mid = torch::full({paths}, t + dt / 2, torch::kFloat64);
      torch::Tensor g = p->diffusion(mid).unsqueeze(1);
      // Exponential integrator for the linear drift: exact for the mean, O(dt²) for the variance.
      torch::Tensor k = p->drift(torch::ones({paths, 1}, torch::kFloat64), mid);
      x = x * torch::exp(k * dt) + g * std::sqrt(dt) * torch::randn({paths, 1}, gen, torch::kFloat64);
      t = t_new;
      if (std::abs(t - checks[next_check]) < 1e-9 * (end - start)) {
        torch::Tensor tc = torch::full({1}, t, torch::kFloat64);
        double mean = x0 * p->mean_coef(tc).item<double>(), var = p->std(tc).pow(2).item<double>();
        double sample_mean = x.mean().item<double>(), sample_var = x.var().item<double>();
        double se_mean = std::sqrt(var / paths), se_var = var * std::sqrt(2.0 / (paths - 1));
        EXPECT_LT(std::abs(sample_mean - mean), 3 * se_mean) << p->name() << " t=" << t;
        EXPECT_LT(std::abs(sample_var - var), 3 * se_var) << p->name() << " t=" << t;
        ++next_check;
      }
    }
    EXPECT_EQ(next_check, checks.size()) << p->name();
  }
}

TEST(ScoreSde, PriorMatchesTheMarginalAtTmax) {
  for (const auto& p : all_processes()) {
    torch::Tensor t1 = torch::full({1}, p->t_max(), torch::kFloat64);
    double s = p->std(t1).item<double>();
    auto gen = make_generator(3);
    torch::Tensor x = p->prior_sample(100000, 2, gen, torch::kFloat64);
    EXPECT_NEAR(x.std().item<double>() / s, 1.0, 0.01) << p->name();
    torch::Tensor point = torch::tensor({{0.3, -0.2}}, torch::kFloat64);
    double expected = -std::log(2 * M_PI * s * s) - point.pow(2).sum().item<double>() / (2 * s * s);
    EXPECT_NEAR(p->prior_logp(point).item<double>(), expected, 1e-3) << p->name();
  }
}

TEST(ScoreSde, TimeGrids) {
  ProcessOptions o;
  o.name = "vp";
  auto vp = make_process(o);
  auto uniform = time_grid(*vp, 10, GridKind::Uniform);
  ASSERT_EQ(uniform.size(), 11u);
  EXPECT_DOUBLE_EQ(uniform.front(), 1.0);
  EXPECT_DOUBLE_EQ(uniform.back(), 1e-3);
  EXPECT_NEAR(uniform[1] - uniform[0], -(1 - 1e-3) / 10, 1e-12);
  auto karras = time_grid(*vp, 10, GridKind::Karras, 7.0);
  auto log_snr = time_grid(*vp, 10, GridKind::LogSnr);
  std::vector<double> root, logs;
  for (double t : karras) root.push_back(std::pow(vp->sigma_at(t), 1 / 7.0));
  for (double t : log_snr) logs.push_back(std::log(vp->sigma_at(t)));
  for (size_t i = 2; i < root.size(); ++i) {
    EXPECT_NEAR(root[i] - root[i - 1], root[1] - root[0], 1e-9);
    EXPECT_NEAR(logs[i] - logs[i - 1], logs[1] - logs[0], 1e-9);
  }
  for (size_t i = 1; i < karras.size(); ++i) EXPECT_LT(karras[i], karras[i - 1]);
  EXPECT_THAT_ERROR(time_grid(*vp, 10, GridKind::Uniform, 7.0, 1.5), "outside [t_min, t_max]");
  EXPECT_THAT_ERROR(time_grid(*vp, 0, GridKind::Uniform), "at least one step");
  EXPECT_THAT_ERROR(parse_grid("cosine"), "karras, log-snr, uniform");
}

TEST(Rk45, SolvesLinearSystemsToTolerance) {
  // dy/dt = A y with A a rotation-plus-decay: y(t) = e^{−t/2} R(t) y₀, integrated backwards and forwards.
  OdeFn f = [](const torch::Tensor& y, double) {
    return torch::stack({-0.5 * y.select(1, 0) - y.select(1, 1), y.select(1, 0) - 0.5 * y.select(1, 1)}, 1);
  };
  torch::Tensor y0 = torch::tensor({{1.0, 0.0}, {0.5, 2.0}}, torch::kFloat64);
  for (double tol : {1e-4, 1e-7}) {
    Rk45Options o;
    o.rtol = o.atol = tol;
    Rk45Result r = integrate_rk45(f, y0, 0.0, 3.0, o);
    double c = std::exp(-1.5), cs = std::cos(3.0), sn = std::sin(3.0);
    torch::Tensor exact = c * torch::stack({y0.select(1, 0) * cs - y0.select(1, 1) * sn,
                                            y0.select(1, 0) * sn + y0.select(1, 1) * cs}, 1);
    EXPECT_LT((r.y - exact).abs().max().item<double>(), 30 * tol) << tol;
    Rk45Result back = integrate_rk45(f, r.y, 3.0, 0.0, o);
    EXPECT_LT((back.y - y0).abs().max().item<double>(), 100 * tol) << tol;
    EXPECT_EQ(r.nfe, 2 + 6 * (r.accepted + r.rejected));
  }
  Rk45Options bad;
  bad.rtol = 0;
  EXPECT_THAT_ERROR(integrate_rk45(f, y0, 0, 1, bad), "rtol must be > 0");
}
