#include <fmt/core.h>

#include "benchmarks.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/langevin.hpp"
#include "timing.hpp"

namespace scorediff::bench {

// How the cost grows: a training step against batch size and data dimension, one annealed-Langevin
// evaluation against the number of points; the peer's network (3 hidden SiLU layers of 128) throughout.
BenchResult bench_scaling(const BenchOptions& args) {
  Config config = load_config("peer", {fmt::format("run.threads={}", args.threads), "process.levels=2"});
  Prepared p = prepare(config);
  const auto seed = static_cast<uint64_t>(args.seed);
  // Milliseconds per training step on data of dimension dim (standard normal points), batch `batch`.
  auto train_ms = [&](int64_t dim, int64_t batch) {
    Config c = config;
    c.train.batch = batch;
    at::Generator gen = make_generator(derive_seed(seed, "data"));
    torch::Tensor data = torch::randn({4096, dim}, gen);
    at::Generator init = make_generator(derive_seed(seed, "init"));
    ScoreModel model = make_model(c.model, dim, init);
    Trainer trainer(model, p.process, make_objective(c.objective), level_count(c.objective, *p.process), data, c.train,
                    seed);
    const int calls = static_cast<int>(std::clamp<int64_t>(200000 / (batch * std::max<int64_t>(dim, 16)), 5, 200));
    return 1e3 * time_per_call([&] { trainer.step(); }, calls, 3);
  };
  std::vector<double> batches{64, 128, 256, 512, 1024, 2048, 4096}, dims{2, 8, 32, 128, 512},
      points{1000, 2000, 5000, 10000, 20000, 50000, 100000};
  std::vector<double> t_batch, t_dim, t_points;
  for (double b : batches) t_batch.push_back(train_ms(2, static_cast<int64_t>(b)));
  for (double d : dims) t_dim.push_back(train_ms(static_cast<int64_t>(d), 256));
  at::Generator init = make_generator(derive_seed(seed, "init"));
  ScoreModel model = make_model(config.model, 2, init);
  model->eval();
  ScoreFn score = model_score_fn(model, p.process);
  for (double n : points) {
    AnnealedLangevinOptions ald;
    ald.steps_per_level = 5;
    ald.denoise = false;
    at::Generator gen = make_generator(derive_seed(seed, "sample"));
    torch::Tensor x0 = p.process->prior_sample(static_cast<int64_t>(n), 2, gen);
    int64_t nfe = 1;
    const double t = time_per_call([&] { nfe = sample_annealed_langevin(score, *p.process, x0, ald, gen).nfe; }, 1, 3);
    t_points.push_back(1e3 * t / static_cast<double>(nfe));
  }
  nlohmann::json out = {{"threads", args.threads},
                        {"torch", TORCH_VERSION},
                        {"blas", blas_core_name()},
                        {"batch", batches},
                        {"train_ms_by_batch", t_batch},
                        {"slope_batch", log_log_slope(batches, t_batch)},
                        {"dim", dims},
                        {"train_ms_by_dim", t_dim},
                        {"slope_dim", log_log_slope(dims, t_dim)},
                        {"points", points},
                        {"eval_ms_by_points", t_points},
                        {"slope_points", log_log_slope(points, t_points)}};
  std::string table;
  table += fmt::format("scaling of the MLP path ({} thread(s)); slope of log time against log size (1 = linear)\n",
                       args.threads);
  auto rows = [&table](const char* what, const char* unit, const std::vector<double>& x, const std::vector<double>& t) {
    table += fmt::format("  {} (slope {:.2f}):\n", what, log_log_slope(x, t));
    for (size_t i = 0; i < x.size(); ++i)
      table += fmt::format("    {:>8g}  {:>9.3f} {}  {:>8.3f} us per item\n", x[i], t[i], unit, 1e3 * t[i] / x[i]);
  };
  rows("training step against batch size (data dimension 2)", "ms", batches, t_batch);
  rows("training step against data dimension (batch 256)", "ms", dims, t_dim);
  rows("annealed-Langevin evaluation against points", "ms", points, t_points);

  if (!args.plot.empty()) {
    // Each panel: the measured times and the line of slope 1 through the largest size.
    auto linear = [](const std::vector<double>& x, const std::vector<double>& t) {
      std::vector<double> y;
      for (double v : x) y.push_back(t.back() * v / x.back());
      return y;
    };
    Figure figure(args.plot, 1500, 480, 3, 1);
    figure.curves(
        1, "Training step vs batch", "batch", "ms per step",
        {{"measured", batches, t_batch, palette(0)}, {"linear", batches, linear(batches, t_batch), palette(7)}}, true,
        true);
    figure.curves(2, "Training step vs data dimension", "dimension (batch 256)", "ms per step",
                  {{"measured", dims, t_dim, palette(0)}, {"linear", dims, linear(dims, t_dim), palette(7)}}, true,
                  true);
    figure.curves(
        3, "Langevin evaluation vs points", "points", "ms per evaluation",
        {{"measured", points, t_points, palette(0)}, {"linear", points, linear(points, t_points), palette(7)}}, true,
        true);
    figure.save();
    table += fmt::format("  figure: {}\n", args.plot);
  }
  return {out, table};
}

}  // namespace scorediff::bench
