// scorediff train: train a score model from a preset or TOML file, then sample, measure and draw.
#include <fmt/core.h>

#include "cli/common.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff::cli {

void add_train_command(CLI::App& app) {
  struct Args {
    ConfigArgs config;
    std::string out;
    bool resume = false;
    bool no_sample = false;
    int64_t stop_at = -1;
    int nproc = 1;
    DistOptions dist;
    double timeout_s = 30;
    int max_restarts = 0;
    int restart = 0;  // set by the supervisor for the workers it starts again
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("train", "Train a score model; writes checkpoints, train.jsonl, samples, figures and report.md");
  add_config_options(cmd, args->config, "swiss-roll");
  cmd->add_option("-o,--out", args->out, "run directory (default runs/<run.name>)");
  cmd->add_flag("--resume", args->resume, "continue from <out>/last.safetensors, bit for bit");
  cmd->add_flag("--no-sample", args->no_sample, "skip sampling and figures after training");
  cmd->add_option("--stop-at", args->stop_at, "checkpoint and stop after this step (continue later with --resume)")
      ->check(CLI::NonNegativeNumber);
  const char* group = "Data parallel (docs/distributed.md)";
  cmd->add_option("--nproc", args->nproc, "train with this many worker processes on this machine (c10d, Gloo)")
      ->check(CLI::Range(1, 256))
      ->group(group);
  cmd->add_option("--world-size", args->dist.world_size, "workers in a multi-machine job (with --rank, --master-addr)")
      ->check(CLI::Range(1, 4096))
      ->group(group);
  cmd->add_option("--rank", args->dist.rank, "this worker's rank in [0, --world-size); rank 0 writes the run")
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  cmd->add_option("--master-addr", args->dist.master_addr, "address of rank 0's rendezvous (default 127.0.0.1)")
      ->group(group);
  cmd->add_option("--master-port", args->dist.master_port, "port of rank 0's rendezvous (default 29500)")
      ->check(CLI::Range(1, 65535))
      ->group(group);
  cmd->add_option("--timeout", args->timeout_s, "seconds a worker waits for the others in one step before it stops")
      ->check(CLI::Range(1.0, 86400.0) & finite())
      ->group(group);
  cmd->add_option("--max-restarts", args->max_restarts,
                  "start the workers again from the last checkpoint after a failure, at most this many times")
      ->check(CLI::Range(0, 1000))
      ->group(group);
  cmd->add_option("--backend", args->dist.backend,
                  "how gradients are summed: auto (NCCL for CUDA tensors where built with it, else Gloo), gloo, nccl")
      ->group(group);
  cmd->add_option("--restart", args->restart)->check(CLI::Range(0, 1000))->group("");  // the supervisor's
  // Set by the launcher (train --nproc) for each worker: its index among this machine's workers.
  cmd->add_option("--local-rank", args->dist.local_rank)->check(CLI::NonNegativeNumber)->group("");
  cmd->add_option("--local-world", args->dist.local_world)->check(CLI::Range(1, 256))->group("");
  cmd->callback([args, cmd] {
    Config config = resolve_config(args->config);
    if (dry_run(args->config, config)) return;
    const bool joins = cmd->count("--world-size") + cmd->count("--rank") + cmd->count("--master-addr") +
                           cmd->count("--master-port") > 0;
    require(args->nproc == 1 || !joins,
            "--nproc starts the workers of this machine; --world-size, --rank, --master-addr and --master-port join a "
            "job started elsewhere: use one or the other");
    require(args->dist.rank < args->dist.world_size, "--rank {} must be smaller than --world-size {}", args->dist.rank,
            args->dist.world_size);
    {  // one line for a backend this build or device cannot use, before any worker starts
      DistOptions check = args->dist;
      check.world_size = std::max(args->nproc, args->dist.world_size);
      check.local_world = std::max(args->nproc, args->dist.local_world);
      place_worker(config.run.device, check);
    }
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(args->timeout_s * 1000));
    const std::filesystem::path out =
        args->out.empty() ? std::filesystem::path("runs") / config.run.name : std::filesystem::path(args->out);
    if (args->nproc > 1) {
      require(data_parallel_available(), "this scorediff was built without c10d/Gloo (install libgloo-dev and rebuild)");
      require(config.train.batch >= args->nproc, "train.batch = {} is smaller than --nproc {}", config.train.batch,
              args->nproc);
      launch_local_workers(args->nproc, args->max_restarts, out, std::chrono::seconds(10), args->config.quiet);
      return;
    }
    if (args->max_restarts > 0) {  // this machine's worker (or the one process), supervised
      supervise_worker(args->dist.rank, args->max_restarts, out, std::chrono::seconds(10), args->config.quiet);
      return;
    }
    TrainRunOptions options(args->resume, args->config.quiet, args->stop_at);
    options.dist = args->dist;
    options.dist.timeout = timeout;
    options.restart = args->restart;
    TrainedRun run = train_run(config, out, options);
    if (options.dist.rank != 0) return;  // rank 0 samples, reports and prints the result
    nlohmann::json extra = nlohmann::json::object();
    if (options.dist.active())
      extra = {{"world_size", options.dist.world_size},
               {"backend", run.backend},
               {"allreduce_seconds", run.communication_seconds}};
    print_run_result(run, out, args->config.quiet, !args->no_sample, extra);
  });
}

}  // namespace scorediff::cli
