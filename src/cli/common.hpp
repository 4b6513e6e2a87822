// Options every sub-command that builds a configuration shares: --config, --set, --seed, --threads,
// --device, --dry-run, --quiet.
#pragma once
#include <CLI/CLI.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scorediff/pipeline/config.hpp"

namespace scorediff {
struct TrainedRun;
}

namespace scorediff::cli {

struct ConfigArgs {
  std::string config;
  std::vector<std::string> sets;
  int64_t seed = -1;
  int64_t threads = -1;
  std::string device;
  bool dry_run = false;
  bool quiet = false;
};

// Every value of a number option is finite: CLI11's Range, PositiveNumber and NonNegativeNumber let NaN through,
// and PositiveNumber lets inf through.
const CLI::Validator& finite();

void add_config_options(CLI::App* command, ConfigArgs& args, const std::string& default_config);
// The preset or file, then --set in order, then the --seed/--threads/--device shortcuts; validated.
Config resolve_config(const ConfigArgs& args);
// --dry-run: print the resolved configuration and return true (the command then stops).
bool dry_run(const ConfigArgs& args, Config& config);

// The result line of a training command (train, distill, reflow): run directory, checkpoint, steps done, training
// time, parameters, final loss and `extra`. A run that reached train.steps is first sampled, measured and reported
// (out/report.md) when `sample` is set, and its metrics join the line.
void print_run_result(TrainedRun& run, const std::filesystem::path& out, bool quiet, bool sample,
                      const nlohmann::json& extra);

void add_train_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_experiment_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_density_command(CLI::App& app);
void add_denoise_command(CLI::App& app);
void add_likelihood_command(CLI::App& app);
void add_train_classifier_command(CLI::App& app);
void add_inpaint_command(CLI::App& app);
void add_encode_command(CLI::App& app);
void add_distill_command(CLI::App& app);
void add_reflow_command(CLI::App& app);
void add_posthoc_command(CLI::App& app);

// The process' command line as main received it (train --nproc starts its workers with it).
void remember_command_line(int argc, char** argv);
const std::vector<std::string>& command_line();

// Thrown to end the program with this exit status and no further message (the message was printed).
struct ExitStatus {
  int status;
};

// train --nproc N: runs this command line again as N worker processes on this machine (loopback
// rendezvous on a free port, each with --rank i --world-size N), forwards Ctrl-C and SIGTERM to them, and
// when one fails names it and stops the rest (those still running after `grace` get SIGTERM, then
// SIGKILL). After a failure it starts them again, up to max_restarts times, each time on a fresh port and with
// --restart K (they resume from the last checkpoint); never after bad input (2) or an interrupt (130). Each
// restart is a line in <out>/train.jsonl. Returns when every worker succeeded; throws ExitStatus otherwise.
void launch_local_workers(int nproc, int max_restarts, const std::filesystem::path& out,
                          std::chrono::milliseconds grace, bool quiet);
// train --world-size N --rank R --max-restarts M: this machine's worker of a multi-machine job, run as a child
// and started again (with --restart K) after a failure, as launch_local_workers does for its group; rank 0's
// supervisor logs the restarts.
void supervise_worker(int rank, int max_restarts, const std::filesystem::path& out, std::chrono::milliseconds grace,
                      bool quiet);

}  // namespace scorediff::cli
