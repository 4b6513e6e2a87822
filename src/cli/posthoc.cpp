// scorediff posthoc-ema: the EMA of any length from a run's post-hoc snapshots (EDM2; train/posthoc_ema.hpp),
// written as a checkpoint that sample, eval and the rest read.
#include <fmt/core.h>

#include <algorithm>

#include "cli/common.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/pipeline/posthoc.hpp"

namespace scorediff::cli {

void add_posthoc_command(CLI::App& app) {
  struct Args {
    std::string run, out;
    double sigma_rel = 0;
    int64_t step = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "posthoc-ema", "An EMA of any length from a run trained with train.posthoc_sigma_rels (Karras et al. 2024)");
  cmd->add_option("--run", args->run, "run directory (holds posthoc/ and the checkpoints)")->required();
  cmd->add_option("--sigma-rel", args->sigma_rel, "EMA length: the averaging profile's std relative to the step")
      ->required()
      ->check(CLI::PositiveNumber & finite());
  cmd->add_option("--step", args->step, "the step to reconstruct at (a checkpointed step; default: the last snapshot)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-o,--out", args->out, "output checkpoint (.safetensors)")->required();
  cmd->callback([args] {
    check_output_file(args->out);
    const PosthocEma r = write_posthoc_ema(args->run, args->sigma_rel, args->step, args->out);
    const auto [low, high] = std::minmax_element(r.coefficients.begin(), r.coefficients.end());
    fmt::print("{}\n", nlohmann::json{{"checkpoint", args->out},
                                      {"base", r.base.string()},
                                      {"step", r.step},
                                      {"sigma_rel", r.sigma_rel},
                                      {"gamma", r.gamma},
                                      {"snapshots", r.snapshots.size()},
                                      {"coefficient_min", *low},
                                      {"coefficient_max", *high},
                                      {"profile_relative_error", r.relative_error}}
                           .dump());
  });
}

}  // namespace scorediff::cli
