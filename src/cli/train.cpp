// scorediff train: train a score model from a preset or TOML file, then sample, measure and draw.
#include <fmt/core.h>

#include "cli/common.hpp"
#include "scorediff/pipeline/run_report.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff::cli {

void add_train_command(CLI::App& app) {
  struct Args {
    ConfigArgs config;
    std::string out;
    bool resume = false;
    bool no_sample = false;
    int64_t stop_at = -1;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("train", "Train a score model; writes checkpoints, train.jsonl, samples, figures and report.md");
  add_config_options(cmd, args->config, "swiss-roll");
  cmd->add_option("-o,--out", args->out, "run directory (default runs/<run.name>)");
  cmd->add_flag("--resume", args->resume, "continue from <out>/last.safetensors, bit for bit");
  cmd->add_flag("--no-sample", args->no_sample, "skip sampling and figures after training");
  cmd->add_option("--stop-at", args->stop_at, "checkpoint and stop after this step (continue later with --resume)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([args] {
    Config config = resolve_config(args->config);
    if (dry_run(args->config, config)) return;
    std::filesystem::path out = args->out.empty() ? std::filesystem::path("runs") / config.run.name : std::filesystem::path(args->out);
    TrainedRun run = train_run(config, out, {args->resume, args->config.quiet, args->stop_at});
    nlohmann::json result = {{"run_dir", out.string()},
                             {"checkpoint", (out / "last.safetensors").string()},
                             {"steps", run.config.train.steps},
                             {"train_seconds", run.seconds},
                             {"parameters", run.parameters},
                             {"final_loss", run.log.empty() ? nlohmann::json(nullptr) : run.log.back()["loss"]}};
    if (!args->no_sample && (args->stop_at < 0 || args->stop_at >= run.config.train.steps)) {
      Report report("scorediff run: " + run.config.run.name);
      RunSummary summary = finish_run(run, out, args->config.quiet, report);
      report.save(out / "report.md");
      result["metrics"] = summary.metrics_json();
      result["nfe"] = summary.nfe;
      result["report"] = (out / "report.md").string();
    }
    fmt::print("{}\n", result.dump());
  });
}

}  // namespace scorediff::cli
