#include <fmt/core.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <sstream>

#include "benchmarks.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/models/unet.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/samplers/registry.hpp"
#include "timing.hpp"

namespace scorediff::bench {

// Runs f under LibTorch's profiler and writes the chrome trace to path.
template <class F>
void write_profile(const std::string& path, F&& f) {
  std::ostringstream trace;
  {
    torch::autograd::profiler::RecordProfile guard(trace);
    f();
  }
  write_file_atomic(path, trace.str());
}

// The U-Net half of the bench: same recipe as training (EDM loss, Adam, clipping, EMA, dropout), on the
// real data; two warm-up steps are not timed, as in the peer.
BenchResult bench_unet(const BenchOptions& args) {
  const int64_t steps = args.steps, batch = args.batch;
  std::vector<std::string> sets{fmt::format("train.steps={}", steps + 2),    fmt::format("train.batch={}", batch),
                                fmt::format("run.threads={}", args.threads), fmt::format("run.seed={}", args.seed),
                                fmt::format("sample.n={}", args.images),     "data.n_train=4096"};
  sets.insert(sets.end(), args.sets.begin(), args.sets.end());
  Config config = load_config("fashion-mnist", sets);
  Prepared p = prepare(config);
  const auto seed = static_cast<uint64_t>(config.run.seed);
  at::Generator init = make_generator(derive_seed(seed, "init"));
  ScoreModel model = make_model(config.model, p.train_data.size(1), init);
  if (auto* unet = dynamic_cast<UnetImpl*>(&model->network())) unet->set_fused_norm(!args.unfused);
  Trainer trainer(model, p.process, make_objective(config.objective), level_count(config.objective, *p.process),
                  p.train_data, config.train, seed);
  for (int i = 0; i < 2; ++i) trainer.step();
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) trainer.step();
  const double train_s = seconds_since(start);
  if (!args.profile.empty())  // after the timed steps, so that the profiler's overhead stays out of them
    write_profile(args.profile, [&] {
      for (int i = 0; i < 3; ++i) trainer.step();
    });
  model->eval();
  at::Generator gen = make_generator(derive_seed(seed, "sample"), p.train_data.device());
  start = std::chrono::steady_clock::now();
  SampleResult result =
      run_sampler(config.sample, model_score_fn(model, p.process), *p.process, p.train_data.size(1), gen, true);
  const double sample_s = seconds_since(start);
  if (!args.profile_sampling.empty())  // a second sampling, after the timed one
    write_profile(args.profile_sampling, [&] {
      run_sampler(config.sample, model_score_fn(model, p.process), *p.process, p.train_data.size(1), gen, true);
    });
  nlohmann::json out = {{"impl", "scorediff"},
                        {"torch", TORCH_VERSION},
                        {"threads", args.threads},
                        {"batch", batch},
                        {"conv_precision", config.model.conv_precision},
                        {"fused_norm", !args.unfused},
                        {"train_steps_per_s", steps / train_s},
                        {"sample_images_per_s", args.images / sample_s},
                        {"images", args.images},
                        {"nfe", result.nfe}};
  BenchResult result_out;
  result_out.record = out;
  result_out.table = fmt::format("scorediff bench --unet ({} thread(s), LibTorch {}, convolutions in {})\n",
                                 args.threads, TORCH_VERSION, config.model.conv_precision);
  result_out.table += fmt::format("  train: {:>8.2f} steps/s   ({} steps, batch {})\n", steps / train_s, steps, batch);
  result_out.table += fmt::format("  sample: {:>7.2f} images/s  ({} images, {} NFE)\n", args.images / sample_s,
                                  args.images, result.nfe);
  return result_out;
}

}  // namespace scorediff::bench
