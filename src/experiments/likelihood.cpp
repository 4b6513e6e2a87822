// Seed 003: log-likelihoods by the probability-flow ODE against closed forms: N(μ, Σ) in D = 2 and
// D = 16 under VP and VE, and the mog2 mixture under VP, each with the exact divergence and with
// Hutchinson's estimator, all driven by the exact score.
#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/likelihood/ode_likelihood.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/plot/figure.hpp"

namespace scorediff {
namespace {

struct Case {
  std::string name, process;
  int64_t dim;
};

// The configuration's process (so --set process.* applies) under the case's name.
std::shared_ptr<const NoiseProcess> process_named(ProcessOptions o, const std::string& name) {
  o.name = name;
  validate(o);
  return make_process(o);
}

std::string pm(const MeanSe& v) { return fmt::format("{:.4f} ± {:.4f}", v.mean, v.se); }

}  // namespace

nlohmann::json run_likelihood(const ExperimentContext& ctx) {
  // VE: σ_max ≫ the data's spread, so N(0, σ_max² I) is the marginal at t = 1.
  Config config = experiment_config("swiss-roll-vp", ctx, {"process.sigma_min=0.01", "process.sigma_max=50"});
  const auto seed = static_cast<uint64_t>(config.run.seed);
  constexpr int64_t n = 1000;
  const std::vector<Case> cases = {{"gaussian", "vp", 2}, {"gaussian", "vp", 16}, {"gaussian", "ve", 2},
                                   {"gaussian", "ve", 16}, {"mog2", "vp", 2},     {"mog2", "ve", 2}};
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  Checks checks;
  torch::Tensor mog2_points;
  Progress progress("likelihood", static_cast<int64_t>(cases.size()), "case", ctx.quiet);
  for (const Case& c : cases) {
    at::Generator gen = make_generator(derive_seed(seed, fmt::format("likelihood-{}-{}", c.name, c.dim)));
    auto process = process_named(config.process, c.process);
    torch::Tensor x, closed_form;
    ScoreFn score;
    torch::Tensor t0 = torch::full({1}, process->t_min(), torch::kFloat64);
    if (c.name == "gaussian") {
      // A random SPD covariance with eigenvalues spread over about two orders of magnitude.
      torch::Tensor a = torch::randn({c.dim, c.dim}, gen, torch::kFloat64) / std::sqrt(static_cast<double>(c.dim));
      torch::Tensor cov = 0.8 * a.matmul(a.t()) + 0.2 * torch::eye(c.dim, torch::kFloat64);
      auto g = std::make_shared<AnalyticGaussian>(torch::randn({c.dim}, gen, torch::kFloat64), cov);
      x = g->sample(n, gen);
      score = gaussian_score_fn(g, process);
      closed_form = -g->log_prob(x, process->mean_coef(t0), process->std(t0));
    } else {
      auto m = std::make_shared<GaussianMixture>(torch::tensor({0.2, 0.8}, torch::kFloat64),
                                                 torch::tensor({{5.0, 5.0}, {-5.0, -5.0}}, torch::kFloat64),
                                                 torch::ones({2, 2}, torch::kFloat64));
      x = m->sample(n, gen).to(torch::kFloat64);
      score = mixture_score_fn(m, process);
      closed_form = -m->log_prob(x, process->mean_coef(t0), process->std(t0));
    }
    LikelihoodOptions exact_o;
    LikelihoodResult exact = ode_log_likelihood(score, *process, x, exact_o, gen);
    LikelihoodOptions hutch_o;
    hutch_o.divergence = "hutchinson";
    LikelihoodResult hutch = ode_log_likelihood(score, *process, x, hutch_o, gen);
    MeanSe ode = mean_se(-exact.log_prob), h = mean_se(-hutch.log_prob), truth = mean_se(closed_form);
    MeanSe gap = mean_se(-exact.log_prob - closed_form), h_gap = mean_se(hutch.log_prob - exact.log_prob);
    const double per_dim = std::abs(gap.mean) / static_cast<double>(c.dim);
    const std::string key = fmt::format("{}-d{}-{}", c.name, c.dim, c.process);
    metrics[key] = {{"nll_ode_exact", ode.mean},         {"nll_ode_exact_se", ode.se},
                    {"nll_hutchinson", h.mean},          {"nll_hutchinson_se", h.se},
                    {"nll_closed_form", truth.mean},     {"abs_gap_per_dim", per_dim},
                    {"hutchinson_minus_exact", h_gap.mean}, {"hutchinson_minus_exact_se", h_gap.se},
                    {"nfe_exact", exact.nfe},            {"nfe_hutchinson", hutch.nfe}};
    checks.at_most(key + "_abs_gap_per_dim", per_dim, 0.01).below(key + "_hutchinson_z", std::abs(h_gap.mean) / h_gap.se, 3);
    rows.push_back({c.name, std::to_string(c.dim), c.process, pm(ode), pm(truth), num(per_dim), pm(h),
                    fmt::format("{:.2f}", std::abs(h_gap.mean) / h_gap.se), std::to_string(exact.nfe / 1)});
    if (c.name == "mog2" && c.process == "vp")
      mog2_points = torch::stack({closed_form, -exact.log_prob}, 1).to(torch::kFloat32);
    progress.update(static_cast<int64_t>(rows.size()));
  }
  progress.finish();
  Figure fig(ctx.out / "nll_vs_closed_form.png", 640, 600);
  Range range = bounding_range({mog2_points}, 0.05);
  range.x0 = range.y0 = std::min(range.x0, range.y0);
  range.x1 = range.y1 = std::max(range.x1, range.y1);
  fig.scatter(1, "mog2 (VP): PF-ODE NLL (y) vs closed form (x), per point", {{mog2_points, "", palette(0), 0.6}},
              range);
  fig.save();

  Report report("Likelihoods by the probability-flow ODE (seed 003)");
  report.paragraph(fmt::format(
      "−log p(x) of {} held-out points per case, from the PF-ODE solved by RK45 (rtol = atol = 10⁻⁵, per-point error "
      "control) with the exact score of the data under the process, against the closed form of the same density at "
      "the data's time t_min (VP {}, VE {}). Gaussians have a random full covariance. VE uses σ from {} to {}. "
      "Hutchinson uses one Rademacher probe per point, fixed along its path; its column 'z' is |mean difference "
      "from the exact divergence| / its standard error (acceptance: < 3). The acceptance bound on |gap| is 0.01 "
      "nats/dim.",
      n, num(process_named(config.process, "vp")->t_min()), num(process_named(config.process, "ve")->t_min()),
      num(config.process.sigma_min), num(config.process.sigma_max)));
  report.table({"data", "D", "process", "NLL, PF-ODE exact", "NLL, closed form", "|gap| / D", "NLL, Hutchinson", "z",
                "NFE"},
               rows);
  report.image("nll_vs_closed_form.png", "Per point: the ODE's NLL against the closed form (mog2, VP)");
  report.paragraph(
      "Per point, the ODE and the closed form differ only by the prior's mismatch with the true marginal at t = 1 (a "
      "term linear in x_T) and the solver's error; both average out in the mean. The same numbers come from "
      "`scorediff likelihood --analytic <config>` for any dataset with a known density.");
  report.heading("Acceptance");
  checks.add_to(report);
  metrics["checks"] = checks.to_json();
  report.save(ctx.out / "report.md");
  write_metrics(ctx, metrics);
  return metrics;
}

}  // namespace scorediff
