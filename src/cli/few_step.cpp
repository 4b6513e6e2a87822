// Few-step models from a trained one (docs/few-step.md; the runs themselves in pipeline/few_step.hpp):
//   scorediff distill: consistency distillation of a trained edm/ve model (Song et al. 2023, Algorithm 2), or
//     consistency training without a teacher (Algorithm 3): a model that samples in 1 to 4 network evaluations;
//   scorediff reflow: rectified flow's reflow (Liu et al. 2023): (noise, sample) pairs from a flow's ODE, a new
//     flow trained on them, whose straighter paths take fewer Euler steps; --distill trains the 1-step map.
#include <fmt/core.h>

#include "cli/common.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/few_step.hpp"

namespace scorediff::cli {
namespace {

// The run's own defaults, then the user's --set (which may change any of them), then the --seed, --threads and
// --device shortcuts.
std::vector<std::string> run_sets(std::vector<std::string> sets, const ConfigArgs& args) {
  sets.insert(sets.end(), args.sets.begin(), args.sets.end());
  if (args.seed >= 0) sets.push_back(fmt::format("run.seed={}", args.seed));
  if (args.threads >= 0) sets.push_back(fmt::format("run.threads={}", args.threads));
  if (!args.device.empty()) sets.push_back("run.device=" + args.device);
  return sets;
}

// The teacher's EMA weights, on this run's device and threads.
LoadedModel load_teacher(const std::string& ckpt, const ConfigArgs& args) {
  std::vector<std::string> sets;
  for (const auto& s : run_sets({}, args))
    if (s.rfind("run.device=", 0) == 0 || s.rfind("run.threads=", 0) == 0) sets.push_back(s);
  return load_trained(ckpt, true, sets);
}

// The teacher's configuration, renamed, with `sets` applied and validated.
Config student_config(const LoadedModel& teacher, const std::string& suffix, const std::vector<std::string>& sets) {
  Config config = teacher.config;
  require(config.model.classes == 0, "class-conditional teachers are not supported yet (model.classes = {})",
          config.model.classes);
  config.run.name += suffix;
  Schema schema = config.schema();
  for (const auto& s : sets) schema.set(s);
  config.validate();
  return config;
}

std::filesystem::path out_dir(const std::string& out, const Config& config) {
  return out.empty() ? std::filesystem::path("runs") / config.run.name : std::filesystem::path(out);
}

struct RunArgs {
  ConfigArgs config;
  std::string ckpt;
  std::string out;
  bool resume = false;
  bool no_sample = false;
  int64_t stop_at = -1;
};

void add_run_options(CLI::App* cmd, RunArgs& args) {
  add_config_options(cmd, args.config, "");
  cmd->add_option("-o,--out", args.out, "run directory (default runs/<run.name>)");
  cmd->add_flag("--resume", args.resume, "continue from <out>/last.safetensors, bit for bit");
  cmd->add_flag("--no-sample", args.no_sample, "skip sampling and figures after training");
  cmd->add_option("--stop-at", args.stop_at, "checkpoint and stop after this step (continue later with --resume)")
      ->check(CLI::NonNegativeNumber);
}

}  // namespace

void add_distill_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand(
      "distill",
      "Consistency model: distil a trained edm/ve model (--ckpt) or train one without a teacher (--config); samples "
      "in 1-4 steps with sampler 'consistency'");
  add_run_options(cmd, *args);
  cmd->add_option("--ckpt", args->ckpt,
                  "teacher checkpoint (edm or ve process): consistency distillation with its Heun steps; without it, "
                  "consistency training of --config from scratch");
  cmd->callback([args] {
    const bool distilling = !args->ckpt.empty();
    require(distilling != !args->config.config.empty(),
            distilling ? "give --ckpt (distillation: the student's configuration is the teacher's) or --config "
                         "(consistency training), not both"
                       : "give --ckpt TEACHER (consistency distillation) or --config PRESET (consistency training)");
    const std::vector<std::string> sets = run_sets(consistency_sets(), args->config);
    std::optional<LoadedModel> teacher;
    Config config;
    if (distilling) {
      teacher.emplace(load_teacher(args->ckpt, args->config));
      require(teacher->config.model.param != "consistency",
              "--ckpt '{}' is a consistency model already; distil a diffusion model", args->ckpt);
      config = student_config(*teacher, "-cd", sets);
    } else {
      config = load_config(args->config.config, sets);
    }
    fill_consistency_boundary(config);
    if (dry_run(args->config, config)) return;
    const auto out = out_dir(args->out, config);
    TrainRunOptions options(args->resume, args->config.quiet, args->stop_at);
    TrainedRun run = distill_run(config, teacher ? teacher->model : ScoreModel(nullptr), out, options);
    print_run_result(run, out, args->config.quiet, !args->no_sample,
           {{"teacher", distilling ? nlohmann::json(args->ckpt) : nlohmann::json(nullptr)}});
  });
}

void add_reflow_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto pairs = std::make_shared<int64_t>(10000);
  auto one_step = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "reflow",
      "Rectified flow's reflow: (noise, sample) pairs from a flow model's ODE, then a flow trained on them (straighter "
      "paths, fewer steps); --distill trains the one-step map");
  add_run_options(cmd, *args);
  cmd->add_option("--ckpt", args->ckpt, "the flow model to straighten (process 'flow')")->required();
  cmd->add_option("--pairs", *pairs, "pairs drawn with the model's ODE (ode-rk45 at sample.rtol, sample.atol)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  cmd->add_flag("--distill", *one_step, "train only at t = t_max: the one-step map noise -> sample (ode-euler, 1 NFE)");
  cmd->callback([args, pairs, one_step] {
    require(args->config.config.empty(), "reflow's configuration is the flow model's: --config does not apply (use --set)");
    LoadedModel flow = load_teacher(args->ckpt, args->config);
    require(flow.config.process.name == "flow", "reflow needs a flow model (process.name = 'flow'); '{}' has '{}'",
            args->ckpt, flow.config.process.name);
    Config config = student_config(flow, *one_step ? "-distilled" : "-reflow",
                                   run_sets(reflow_sets(*flow.prepared.process, *one_step), args->config));
    if (dry_run(args->config, config)) return;
    const auto out = out_dir(args->out, config);
    const int64_t dim = flow.prepared.train_data.size(1);
    // The pairs are kept next to the run, so that --resume trains on the same ones.
    ReflowPairs drawn;
    if (args->resume) {
      drawn = load_pairs(out / "pairs.safetensors", dim);
    } else {
      drawn = reflow_pairs(config, flow.model, flow.prepared.process, dim, *pairs, args->config.quiet);
      save_pairs(drawn, out / "pairs.safetensors");
    }
    TrainRunOptions options(args->resume, args->config.quiet, args->stop_at);
    TrainedRun run = reflow_run(config, flow.model, drawn, out, options);
    print_run_result(run, out, args->config.quiet, !args->no_sample, {{"flow", args->ckpt}, {"pairs", drawn.x0.size(0)}});
  });
}

}  // namespace scorediff::cli
