// scorediff sample: draw samples from a checkpoint (EMA weights by default) into a .npy file.
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/pipeline/sampling.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff::cli {

void add_sample_command(CLI::App& app) {
  struct Args {
    std::string ckpt, config, out = "samples.npy", sampler;
    std::vector<std::string> sets;
    int64_t n = -1, seed = -1, threads = -1;
    bool raw = false, quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("sample", "Sample from a trained checkpoint; writes .npy and reports NFE");
  auto* ckpt = cmd->add_option("--ckpt", args->ckpt, "checkpoint (.safetensors)");
  auto* analytic = cmd->add_option("--analytic", args->config,
                                   "no model: the exact score of this config's mixture dataset (preset or TOML file)");
  ckpt->excludes(analytic);
  cmd->add_option("-o,--out", args->out, "output .npy")->capture_default_str();
  cmd->add_option("--sampler", args->sampler, "sampler (" + join_names(samplers().names()) + "); default from the checkpoint's config");
  cmd->add_option("-n,--n", args->n, "number of samples (sample.n)");
  cmd->add_option("--seed", args->seed, "sampling seed (default: the run's seed)");
  cmd->add_option("--threads", args->threads, "intra-op threads (default: the run's)")->check(CLI::PositiveNumber);
  cmd->add_option("-s,--set", args->sets, "override a [sample] key, e.g. --set sample.eps=1e-5 (any key with --analytic)");
  cmd->add_flag("--raw", args->raw, "use the raw weights instead of the EMA");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->callback([args] {
    require(!args->ckpt.empty() || !args->config.empty(), "sample needs --ckpt or --analytic");
    check_output_file(args->out);
    std::vector<std::string> sets = args->sets;
    if (!args->sampler.empty()) sets.push_back("sample.sampler=" + args->sampler);
    if (args->n >= 0) sets.push_back(fmt::format("sample.n={}", args->n));
    if (args->seed >= 0) sets.push_back(fmt::format("run.seed={}", args->seed));
    if (args->threads > 0) sets.push_back(fmt::format("run.threads={}", args->threads));
    LoadedModel loaded;
    ScoreFn score;
    if (!args->config.empty()) {
      loaded.config = load_config(args->config, sets);
      loaded.prepared = prepare(loaded.config);
      const auto& dataset = loaded.prepared.dataset;
      require(dataset->mixture() != nullptr,
              "--analytic needs a dataset with a known density (mog2, 8gaussians, mixture, circle, swiss-roll), not '{}'",
              loaded.config.data.name);
      score = mixture_score_fn(std::shared_ptr<const GaussianMixture>(dataset, dataset->mixture()), loaded.prepared.process);
    } else {
      loaded = load_trained(args->ckpt, !args->raw);
      Schema schema = loaded.config.schema();
      for (const auto& s : sets) {
        require(s.rfind("sample.", 0) == 0 || s.rfind("run.seed", 0) == 0 || s.rfind("run.threads", 0) == 0,
                "sample --set accepts [sample] keys only, got '{}'", s);
        schema.set(s);
      }
      loaded.config.validate();
      set_threads(static_cast<int>(loaded.config.run.threads));
      score = model_score_fn(loaded.model, loaded.prepared.process);
    }
    const Prepared& p = loaded.prepared;
    std::filesystem::path out(args->out);
    at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(loaded.config.run.seed), "sample"),
                                       p.train_data.device());
    auto start = std::chrono::steady_clock::now();
    SampleResult result = run_sampler(loaded.config.sample, score, *p.process, p.train_data.size(1), gen, args->quiet);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_npy(out, result.samples.to(torch::kCPU));
    fmt::print("{}\n", nlohmann::json({{"samples", out.string()},
                                        {"n", result.samples.size(0)},
                                        {"sampler", loaded.config.sample.sampler},
                                        {"nfe", result.nfe},
                                        {"seconds", seconds},
                                        {"score", !args->config.empty() ? "analytic" : args->raw ? "raw" : "ema"},
                                        {"step", loaded.step}})
                           .dump());
  });
}

}  // namespace scorediff::cli
