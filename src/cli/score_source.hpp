// Where a command's score comes from: a trained checkpoint (--ckpt, EMA weights unless --raw) or the
// exact score of a dataset with a known density (--analytic CONFIG). Shared by sample, density, denoise.
#pragma once
#include <CLI/CLI.hpp>

#include "scorediff/pipeline/training.hpp"

namespace scorediff::cli {

struct ScoreSourceArgs {
  std::string ckpt, analytic;
  std::vector<std::string> sets;
  int64_t seed = -1, threads = -1;
  bool raw = false;
};

struct ScoreSource {
  LoadedModel loaded;  // config and prepared data/process (and the model, for --ckpt)
  ScoreFn score;
  bool analytic = false;
};

// set_help says which keys --set accepts for this command.
void add_score_source_options(CLI::App* command, ScoreSourceArgs& args, const std::string& set_help);
// With --ckpt, --set may change only keys with one of `allowed_prefixes` (plus run.seed/run.threads);
// with --analytic, any key of the configuration.
ScoreSource load_score_source(const ScoreSourceArgs& args, std::vector<std::string> extra_sets,
                              const std::vector<std::string>& allowed_prefixes);

}  // namespace scorediff::cli
