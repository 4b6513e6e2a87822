#include "cli/common.hpp"

#include <fmt/core.h>

#include <cmath>
#include <cstdlib>

#include "scorediff/pipeline/prepared.hpp"
#include "scorediff/pipeline/run_report.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff::cli {

void print_run_result(TrainedRun& run, const std::filesystem::path& out, bool quiet, bool sample,
                      const nlohmann::json& extra) {
  nlohmann::json result = {{"run_dir", out.string()},
                           {"checkpoint", (out / "last.safetensors").string()},
                           {"steps", run.steps},
                           {"train_seconds", run.seconds},
                           {"parameters", run.parameters},
                           {"final_loss", run.log.empty() ? nlohmann::json(nullptr) : run.log.back()["loss"]}};
  result.update(extra);
  if (sample && run.steps >= run.config.train.steps) {
    Report report("scorediff run: " + run.config.run.name);
    RunSummary summary = finish_run(run, out, quiet, report);
    report.save(out / "report.md");
    result["metrics"] = summary.metrics_json();
    result["nfe"] = summary.nfe;
    result["report"] = (out / "report.md").string();
  }
  fmt::print("{}\n", result.dump());
}

const CLI::Validator& finite() {
  static const CLI::Validator validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (end == text.c_str()) return {};  // not a number at all: the option's type conversion says so
        return std::isfinite(value) ? std::string() : "value " + text + " is not a finite number";
      },
      "FINITE");
  return validator;
}

void add_config_options(CLI::App* command, ConfigArgs& args, const std::string& default_config) {
  args.config = default_config;
  command->add_option("-c,--config", args.config, "preset name (" + join_names(preset_names()) + ") or TOML file")
      ->capture_default_str();
  command->add_option("-s,--set", args.sets, "override a config key, e.g. --set train.steps=500 (repeatable)")
      ->allow_extra_args(false);
  command->add_option("--seed", args.seed, "seed for every random draw (run.seed)")->check(CLI::NonNegativeNumber);
  command->add_option("--threads", args.threads, "intra-op threads (run.threads)")->check(CLI::Range(1, 1024));
  command->add_option("--device", args.device, "cpu, cuda or cuda:N (run.device)");
  command->add_flag("--dry-run", args.dry_run, "print the resolved configuration and stop");
  command->add_flag("-q,--quiet", args.quiet, "no progress output");
}

Config resolve_config(const ConfigArgs& args) {
  std::vector<std::string> sets = args.sets;
  if (args.seed >= 0) sets.push_back(fmt::format("run.seed={}", args.seed));
  if (args.threads >= 0) sets.push_back(fmt::format("run.threads={}", args.threads));
  if (!args.device.empty()) sets.push_back("run.device=" + args.device);
  return load_config(args.config, sets);
}

bool dry_run(const ConfigArgs& args, Config& config) {
  if (!args.dry_run) return false;
  const ProcessOptions& o = config.process;
  if (o.sigma_min_auto || o.sigma_max_auto || o.levels_auto || config.sample.eps_auto) {
    // "auto" settings come from the data: prepare it and say where each value came from.
    for (const auto& note : prepare(config).notes) fmt::print("# {}\n", note);
  }
  fmt::print("{}", config.to_toml());
  return true;
}

}  // namespace scorediff::cli
