// scorediff likelihood: negative log-likelihood of held-out points through the probability-flow ODE
// (exact or Hutchinson divergence), with standard errors; bits per dimension for dequantised 8-bit data.
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "cli/score_source.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/likelihood/ode_likelihood.hpp"

namespace scorediff::cli {

void add_likelihood_command(CLI::App& app) {
  struct Args {
    ScoreSourceArgs source;
    std::string data, out;
    int64_t n = 1000;
    LikelihoodOptions o;
    bool dequantize = false;
    double scale = 2.0, offset = -1.0;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "likelihood", "NLL (nats) of held-out points by the probability-flow ODE, with standard errors; bits/dim");
  add_score_source_options(cmd, args->source, "override a config key (any key with --analytic)");
  cmd->add_option("-d,--data", args->data, "points .npy [N, D] (default: --n fresh samples of the run's dataset)");
  cmd->add_option("-n,--n", args->n, "fresh held-out samples when --data is not given")->capture_default_str()->check(
      CLI::PositiveNumber);
  cmd->add_option("--divergence", args->o.divergence, "exact (D backward passes) or hutchinson")
      ->capture_default_str()
      ->check(CLI::IsMember({"exact", "hutchinson"}));
  cmd->add_option("--probe", args->o.probe, "hutchinson probe distribution")
      ->capture_default_str()
      ->check(CLI::IsMember({"gaussian", "rademacher"}));
  cmd->add_option("--probes", args->o.probes, "hutchinson probes per evaluation")->capture_default_str()->check(
      CLI::PositiveNumber);
  cmd->add_option("--rtol", args->o.rtol, "RK45 relative tolerance (> 0)")->capture_default_str()->check(finite());
  cmd->add_option("--atol", args->o.atol, "RK45 absolute tolerance (> 0)")->capture_default_str()->check(finite());
  cmd->add_option("--batch", args->o.batch, "points solved together")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--t-start", args->o.t_start, "the data's time (default: the process' t_min)")->check(finite());
  cmd->add_flag("--dequantize", args->dequantize,
                "--data holds 8-bit levels 0..255: dequantise uniformly, map to scale*u + offset, report bits/dim");
  cmd->add_option("--scale", args->scale, "dequantised data: y = scale * u + offset")->capture_default_str()->check(finite());
  cmd->add_option("--offset", args->offset, "dequantised data: offset")->capture_default_str()->check(finite());
  cmd->add_option("-o,--out", args->out, "also write the per-point NLL .npy [N]");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->callback([args] {
    require(args->o.rtol > 0 && args->o.rtol < 1, "--rtol must be in (0, 1), got {}", args->o.rtol);
    require(args->o.atol > 0, "--atol must be > 0, got {}", args->o.atol);
    require(args->scale > 0, "--scale must be > 0, got {}", args->scale);
    require(!args->dequantize || !args->data.empty(), "--dequantize needs --data with 8-bit levels");
    if (!args->out.empty()) check_output_file(args->out);
    ScoreSource source = load_score_source(args->source, {}, {"data."});
    const Config& config = source.loaded.config;
    const Prepared& p = source.loaded.prepared;
    const NoiseProcess& process = *p.process;
    if (args->o.t_start != 0) process.check_time(args->o.t_start, "--t-start");
    const int64_t dim = p.train_data.size(1);
    at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "likelihood"));
    torch::Tensor x;
    if (args->data.empty()) {
      at::Generator data_gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "held-out"));
      x = p.dataset->sample(args->n, data_gen);
    } else {
      x = read_points(args->data, dim);
    }
    x = x.to(torch::kFloat64);
    if (args->dequantize) x = dequantize(x, args->scale, args->offset, gen);
    Progress progress("likelihood", x.size(0), "point", args->quiet);
    auto start = std::chrono::steady_clock::now();
    LikelihoodResult r = ode_log_likelihood(source.score, process, x, args->o, gen,
                                            [&progress](int64_t done, int64_t) { progress.update(done); });
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.finish(fmt::format("{} NFE", r.nfe));
    torch::Tensor nll = -r.log_prob;
    MeanSe m = mean_se(nll);
    nlohmann::json result = {{"n", x.size(0)},
                             {"dim", dim},
                             {"nll", m.mean},
                             {"nll_se", m.se},
                             {"nll_per_dim", m.mean / static_cast<double>(dim)},
                             {"divergence", args->o.divergence},
                             {"nfe", r.nfe},
                             {"seconds", seconds},
                             {"score", source.analytic ? "analytic" : args->source.raw ? "raw" : "ema"}};
    if (args->dequantize) {
      MeanSe b = mean_se(bits_per_dim(nll, dim, args->scale));
      result["bpd"] = b.mean;
      result["bpd_se"] = b.se;
    }
    if (const GaussianMixture* truth = p.dataset->mixture(); truth != nullptr && !args->dequantize) {
      // The closed form at the data's time, for datasets with a known density.
      double t0 = args->o.t_start > 0 ? args->o.t_start : process.t_min();
      torch::Tensor t = torch::full({1}, t0, torch::kFloat64);
      MeanSe exact = mean_se(-truth->log_prob(x, process.mean_coef(t), process.std(t)));
      result["closed_form_nll"] = exact.mean;
      result["closed_form_nll_se"] = exact.se;
    }
    if (!args->out.empty()) {
      write_npy(args->out, nll.to(torch::kFloat32));
      result["out"] = args->out;
    }
    fmt::print("{}\n", result.dump());
  });
}

}  // namespace scorediff::cli
