#include <fmt/core.h>

#include "benchmarks.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/models/fused_mlp.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/samplers/langevin.hpp"
#include "timing.hpp"

namespace scorediff::bench {

BenchResult bench_toy(const BenchOptions& args) {
  Config config =
      load_config("peer", {fmt::format("train.steps={}", args.steps), fmt::format("train.batch={}", args.batch),
                           fmt::format("run.threads={}", args.threads), fmt::format("run.seed={}", args.seed),
                           fmt::format("process.levels={}", args.levels)});
  Prepared p = prepare(config);
  const auto seed = static_cast<uint64_t>(config.run.seed);
  at::Generator init = make_generator(derive_seed(seed, "init"));
  ScoreModel model = make_model(config.model, 2, init);
  if (auto* mlp = dynamic_cast<MlpNetworkImpl*>(&model->network())) mlp->set_fused_training(!args.unfused);
  Trainer trainer(model, p.process, make_objective(config.objective), level_count(config.objective, *p.process),
                  p.train_data, config.train, seed);
  auto start = std::chrono::steady_clock::now();
  StepStats last;
  for (int64_t i = 0; i < args.steps; ++i) last = trainer.step();
  const double train_s = seconds_since(start);

  model->eval();
  ScoreFn score = model_score_fn(model, p.process);
  BFloat16Inference bf16(args.precision == "bfloat16");
  at::Generator gen = make_generator(derive_seed(seed, "sample"));
  AnnealedLangevinOptions ald;
  ald.eps = args.eps;
  ald.steps_per_level = args.steps_per_level;
  ald.denoise = false;
  torch::Tensor x = p.process->prior_sample(args.points, 2, gen);
  start = std::chrono::steady_clock::now();
  SampleResult result = sample_annealed_langevin(score, *p.process, x, ald, gen);
  const double sample_s = seconds_since(start);
  const double evals = static_cast<double>(result.nfe);
  BenchResult out;
  out.record = {{"impl", "scorediff"},
                {"torch", TORCH_VERSION},
                {"threads", args.threads},
                {"fused", !args.unfused},
                {"precision", args.precision},
                {"train_steps_per_s", args.steps / train_s},
                {"final_loss", last.loss},
                {"sample_evals_per_s", evals / sample_s},
                {"sample_point_steps_per_s", evals * args.points / sample_s}};
  out.table = fmt::format("scorediff bench ({} thread(s), LibTorch {}, sampling in {})\n", args.threads, TORCH_VERSION,
                          args.precision);
  out.table += fmt::format("  train: {:>10.1f} steps/s   ({} steps, batch {}, final loss {:.4f})\n",
                           args.steps / train_s, args.steps, args.batch, last.loss);
  out.table +=
      fmt::format("  sample: {:>9.1f} evals/s   {:.3g} point-steps/s ({} points, {} levels x {} steps)\n",
                  evals / sample_s, evals * args.points / sample_s, args.points, args.levels, args.steps_per_level);
  return out;
}

}  // namespace scorediff::bench
