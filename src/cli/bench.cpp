// scorediff bench: the configuration of ../shared/peers/toy_dsm.py (same network, objective, batch and
// sampler), timed the same way: training steps/s, then annealed-Langevin evaluations/s.
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/samplers/sampler.hpp"

namespace scorediff::cli {

void add_bench_command(CLI::App& app) {
  struct Args {
    int64_t steps = 2000, batch = 256, threads = 1, points = 10000, levels = 10, steps_per_level = 100, seed = 0;
    double eps = 2e-5;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench", "Throughput of the Python peer's configuration (train steps/s, sampling evals/s)");
  cmd->add_option("--steps", args->steps, "training steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch", args->batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--threads", args->threads, "intra-op threads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--points", args->points, "sampled points")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--levels", args->levels, "noise levels")->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_option("--steps-per-level", args->steps_per_level, "Langevin steps per level")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--eps", args->eps, "annealed Langevin eps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->seed, "seed")->capture_default_str();
  cmd->add_flag("--json", args->json, "print one JSON line (default: a table)");
  cmd->callback([args] {
    Config config = load_config("peer", {fmt::format("train.steps={}", args->steps), fmt::format("train.batch={}", args->batch),
                                         fmt::format("run.threads={}", args->threads), fmt::format("run.seed={}", args->seed),
                                         fmt::format("process.levels={}", args->levels)});
    Prepared p = prepare(config);
    const auto seed = static_cast<uint64_t>(config.run.seed);
    at::Generator init = make_generator(derive_seed(seed, "init"));
    ScoreModel model = make_model(config.model, 2, init);
    Trainer trainer(model, p.process, make_objective(config.objective), level_count(config.objective, *p.process),
                    p.train_data, config.train, seed);
    auto start = std::chrono::steady_clock::now();
    StepStats last;
    for (int64_t i = 0; i < args->steps; ++i) last = trainer.step();
    double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    model->eval();
    ScoreFn score = model_score_fn(model, p.process);
    at::Generator gen = make_generator(derive_seed(seed, "sample"));
    AnnealedLangevinOptions ald;
    ald.eps = args->eps;
    ald.steps_per_level = args->steps_per_level;
    ald.denoise = false;
    torch::Tensor x = p.process->prior_sample(args->points, 2, gen);
    start = std::chrono::steady_clock::now();
    SampleResult result = sample_annealed_langevin(score, *p.process, x, ald, gen);
    double sample_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double evals = static_cast<double>(result.nfe);
    nlohmann::json out = {{"impl", "scorediff"},
                          {"torch", TORCH_VERSION},
                          {"threads", args->threads},
                          {"train_steps_per_s", args->steps / train_s},
                          {"final_loss", last.loss},
                          {"sample_evals_per_s", evals / sample_s},
                          {"sample_point_steps_per_s", evals * args->points / sample_s}};
    if (args->json) {
      fmt::print("{}\n", out.dump());
    } else {
      fmt::print("scorediff bench ({} thread(s), LibTorch {})\n", args->threads, TORCH_VERSION);
      fmt::print("  train: {:>10.1f} steps/s   ({} steps, batch {}, final loss {:.4f})\n", args->steps / train_s,
                 args->steps, args->batch, last.loss);
      fmt::print("  sample: {:>9.1f} evals/s   {:.3g} point-steps/s ({} points, {} levels x {} steps)\n",
                 evals / sample_s, evals * args->points / sample_s, args->points, args->levels, args->steps_per_level);
    }
  });
}

}  // namespace scorediff::cli
