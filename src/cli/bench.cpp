// scorediff bench: the front end of the benchmarks in bench/src (library code): the Python peer's toy
// configuration by default, --unet, --roofline, --scaling. Prints a table, or one JSON line with --json.
#include <fmt/core.h>

#include "benchmarks.hpp"
#include "cli/common.hpp"
#include "scorediff/io/files.hpp"

namespace scorediff::cli {

void add_bench_command(CLI::App& app) {
  struct Args {
    bench::BenchOptions options;
    bool json = false, unet = false, roofline = false, scaling = false;
  };
  auto args = std::make_shared<Args>();
  bench::BenchOptions& o = args->options;
  CLI::App* cmd = app.add_subcommand("bench", "Throughput of the Python peer's configuration (train steps/s, sampling evals/s)");
  cmd->add_option("--steps", o.steps, "training steps (--unet: 20)")->capture_default_str()->check(CLI::Range(1, 100000000));
  cmd->add_option("--batch", o.batch, "batch size (--unet: 64; --roofline: 4096)")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--threads", o.threads, "intra-op threads")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--points", o.points, "sampled points")->capture_default_str()->check(CLI::Range(1, 100000000));
  cmd->add_option("--levels", o.levels, "noise levels")->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_option("--steps-per-level", o.steps_per_level, "Langevin steps per level")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--eps", o.eps, "annealed Langevin eps")->capture_default_str()->check(CLI::Range(1e-30, 1e6));
  cmd->add_option("--seed", o.seed, "seed")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "print one JSON line (default: a table)");
  cmd->add_flag("--unfused", o.unfused, "train the MLP through ATen's autograd graph instead of the fused step; --unet: ATen's GroupNorm and SiLU instead of the fused kernels (before/after)");
  cmd->add_flag("--roofline", args->roofline, "GEMM GFLOP/s at the MLP's shapes and the fraction the MLP forward and forward+backward reach (batch 4096)");
  cmd->add_option("--precision", o.precision, "sampling: the MLP's hidden products in float32 or bfloat16")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_flag("--scaling", args->scaling, "time against batch size, data dimension and sampled points (log-log slopes)");
  CLI::Option* plot = cmd->add_option("--plot", o.plot, "--roofline, --scaling: also write the figure to this PNG");
  cmd->add_flag("--unet", args->unet, "the fashion-mnist preset's U-Net instead (training steps/s, sampling images/s)");
  cmd->add_option("--images", o.images, "--unet: images sampled")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--profile", o.profile,
                  "--unet: also profile 3 training steps by operator into this chrome-trace JSON (bench/summarize.py profile "
                  "FILE prints the table)");
  cmd->add_option("--profile-sampling", o.profile_sampling,
                  "--unet: also profile one more sampling of --images images into this chrome-trace JSON");
  cmd->add_option("-s,--set", o.sets, "--unet: override a key of the fashion-mnist preset (e.g. model.conv_precision=float32)");
  cmd->footer("\nThe kernels (GEMM, activations, optimiser) have their own Google Benchmark program: build/scorediff_kernel_bench");
  cmd->callback([args, cmd, plot] {
    bench::BenchOptions o = args->options;
    require(args->roofline + args->scaling + args->unet <= 1, "bench: choose at most one of --roofline, --scaling, --unet");
    require(plot->count() == 0 || args->roofline || args->scaling, "bench: --plot needs --roofline or --scaling");
    require(o.sets.empty() || args->unet, "bench: --set applies to --unet only");
    require((o.profile.empty() && o.profile_sampling.empty()) || args->unet,
            "bench: --profile and --profile-sampling apply to --unet only");
    if (!o.profile.empty()) check_output_file(o.profile);
    if (!o.profile_sampling.empty()) check_output_file(o.profile_sampling);
    if (!o.plot.empty()) check_output_file(o.plot);
    bench::BenchResult result;
    if (args->roofline) {
      o.batch = cmd->count("--batch") ? o.batch : 0;
      result = bench::bench_roofline(o);
    } else if (args->scaling) {
      result = bench::bench_scaling(o);
    } else if (args->unet) {
      o.steps = cmd->count("--steps") ? o.steps : 20;
      o.batch = cmd->count("--batch") ? o.batch : 64;
      result = bench::bench_unet(o);
    } else {
      result = bench::bench_toy(o);
    }
    fmt::print("{}", args->json ? result.record.dump() + "\n" : result.table);
  });
}

}  // namespace scorediff::cli
