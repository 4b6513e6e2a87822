#include "cli/score_source.hpp"

#include <fmt/core.h>

#include "scorediff/core/runtime.hpp"
#include "scorediff/models/analytic.hpp"

namespace scorediff::cli {

void add_score_source_options(CLI::App* cmd, ScoreSourceArgs& args, const std::string& set_help) {
  auto* ckpt = cmd->add_option("--ckpt", args.ckpt, "checkpoint (.safetensors)");
  auto* analytic = cmd->add_option("--analytic", args.analytic,
                                   "no model: the exact score of this config's dataset (preset or TOML file), for "
                                   "datasets with a known density");
  ckpt->excludes(analytic);
  cmd->add_option("-s,--set", args.sets, set_help);
  cmd->add_option("--seed", args.seed, "seed (default: the run's)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", args.threads, "intra-op threads (default: the run's)")->check(CLI::PositiveNumber);
  cmd->add_flag("--raw", args.raw, "use the raw weights instead of the EMA");
}

ScoreSource load_score_source(const ScoreSourceArgs& args, std::vector<std::string> sets,
                              const std::vector<std::string>& allowed_prefixes) {
  require(!args.ckpt.empty() || !args.analytic.empty(), "needs --ckpt or --analytic");
  sets.insert(sets.begin(), args.sets.begin(), args.sets.end());
  if (args.seed >= 0) sets.push_back(fmt::format("run.seed={}", args.seed));
  if (args.threads > 0) sets.push_back(fmt::format("run.threads={}", args.threads));
  ScoreSource source;
  LoadedModel& loaded = source.loaded;
  if (!args.analytic.empty()) {
    loaded.config = load_config(args.analytic, sets);
    loaded.prepared = prepare(loaded.config);
    const auto& dataset = loaded.prepared.dataset;
    require(dataset->mixture() != nullptr,
            "--analytic needs a dataset with a known density (mog2, 8gaussians, mixture, circle, swiss-roll), not '{}'",
            loaded.config.data.name);
    source.score = loaded.prepared.reference;
    source.analytic = true;
    return source;
  }
  loaded = load_trained(args.ckpt, !args.raw);
  loaded.config = with_command_sets(std::move(loaded.config), sets, allowed_prefixes);
  set_threads(static_cast<int>(loaded.config.run.threads), workload_of(loaded.config.model));
  source.score = sampling_score_fn(loaded.config, loaded.model, loaded.prepared, run_dir_of(args.ckpt));
  return source;
}

}  // namespace scorediff::cli
