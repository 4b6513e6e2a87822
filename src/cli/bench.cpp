// scorediff bench: the configuration of ../shared/peers/toy_dsm.py (same network, objective, batch and
// sampler), timed the same way: training steps/s, then annealed-Langevin evaluations/s. With --unet, the
// fashion-mnist preset's U-Net against its Python twin (bench/peers/unet_peer.py): training steps/s and
// images/s of the 35-NFE Heun sampler.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "cli/common.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/models/fused.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/langevin.hpp"

namespace scorediff::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The U-Net half of the bench: same recipe as training (EDM loss, Adam, clipping, EMA, dropout), on the
// real data; two warm-up steps are not timed, as in the peer.
template <class Args>
void bench_unet(const Args& args, int64_t steps, int64_t batch) {
  std::vector<std::string> sets{fmt::format("train.steps={}", steps + 2), fmt::format("train.batch={}", batch),
                                fmt::format("run.threads={}", args.threads), fmt::format("run.seed={}", args.seed),
                                fmt::format("sample.n={}", args.images), "data.n_train=4096"};
  sets.insert(sets.end(), args.sets.begin(), args.sets.end());
  Config config = load_config("fashion-mnist", sets);
  Prepared p = prepare(config);
  const auto seed = static_cast<uint64_t>(config.run.seed);
  at::Generator init = make_generator(derive_seed(seed, "init"));
  ScoreModel model = make_model(config.model, p.train_data.size(1), init);
  Trainer trainer(model, p.process, make_objective(config.objective), level_count(config.objective, *p.process),
                  p.train_data, config.train, seed);
  for (int i = 0; i < 2; ++i) trainer.step();
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) trainer.step();
  const double train_s = seconds_since(start);
  model->eval();
  at::Generator gen = make_generator(derive_seed(seed, "sample"));
  start = std::chrono::steady_clock::now();
  SampleResult result = run_sampler(config.sample, model_score_fn(model, p.process), *p.process, p.train_data.size(1), gen, true);
  const double sample_s = seconds_since(start);
  nlohmann::json out = {{"impl", "scorediff"},
                        {"torch", TORCH_VERSION},
                        {"threads", args.threads},
                        {"batch", batch},
                        {"conv_precision", config.model.conv_precision},
                        {"train_steps_per_s", steps / train_s},
                        {"sample_images_per_s", args.images / sample_s},
                        {"images", args.images},
                        {"nfe", result.nfe}};
  if (args.json) {
    fmt::print("{}\n", out.dump());
    return;
  }
  fmt::print("scorediff bench --unet ({} thread(s), LibTorch {}, convolutions in {})\n", args.threads, TORCH_VERSION,
             config.model.conv_precision);
  fmt::print("  train: {:>8.2f} steps/s   ({} steps, batch {})\n", steps / train_s, steps, batch);
  fmt::print("  sample: {:>7.2f} images/s  ({} images, {} NFE)\n", args.images / sample_s, args.images, result.nfe);
}

// Seconds per call of f, best of `repeats` timings of `calls` calls each (after one warm-up call).
template <class F>
double time_per_call(F&& f, int calls, int repeats = 5) {
  f();
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) f();
    best = std::min(best, seconds_since(start) / calls);
  }
  return best;
}

// The roofline of the small-model path: OpenBLAS sgemm GFLOP/s at the MLP's shapes, and the fraction of
// it that the MLP forward (inference path), forward + backward (fused training node) and a sampler
// step reach. FLOPs count the matrix products only (2 m n k each).
template <class Args>
void bench_roofline(const Args& args) {
  set_threads(static_cast<int>(args.threads), Workload::Dense);
  const int64_t batch = args.cmd_batch > 0 ? args.cmd_batch : 4096, width = 128, dim = 2;
  auto gen = make_generator(static_cast<uint64_t>(args.seed));
  nlohmann::json out = {{"threads", args.threads}, {"batch", batch}, {"torch", TORCH_VERSION}, {"blas", blas_core_name()}};
  // sgemm at the hidden layer's shape, both products of the backward pass included.
  torch::Tensor a = torch::randn({batch, width}, gen), w = torch::randn({width, width}, gen), c = torch::empty({batch, width});
  torch::Tensor dw = torch::empty({width, width});
  const double flop_hidden = 2.0 * batch * width * width;
  const double t_nt = time_per_call([&] { at::mm_out(c, a, w.t()); }, 20);
  const double t_tn = time_per_call([&] { at::mm_out(dw, c.t(), a); }, 20);
  const double t_nn = time_per_call([&] { at::mm_out(c, a, w); }, 20);
  const double sgemm = flop_hidden / std::min({t_nt, t_tn, t_nn}) / 1e9;
  out["sgemm_gflops"] = sgemm;
  out["sgemm_gflops_by_layout"] = {{"x_wT", flop_hidden / t_nt / 1e9}, {"gT_h", flop_hidden / t_tn / 1e9}, {"g_w", flop_hidden / t_nn / 1e9}};
  // scorediff's own GEMM (models/fused.hpp), which the MLP path calls, at the same three layouts: the
  // stricter ceiling where it beats OpenBLAS.
  const double o_nt = time_per_call([&] {
    gemm(false, true, batch, width, width, a.data_ptr<float>(), width, w.data_ptr<float>(), width, 0.0f, c.data_ptr<float>(), width);
  }, 20);
  const double o_tn = time_per_call([&] {
    gemm(true, false, width, width, batch, c.data_ptr<float>(), width, a.data_ptr<float>(), width, 0.0f, dw.data_ptr<float>(), width);
  }, 20);
  const double o_nn = time_per_call([&] {
    gemm(false, false, batch, width, width, a.data_ptr<float>(), width, w.data_ptr<float>(), width, 0.0f, c.data_ptr<float>(), width);
  }, 20);
  const double own = flop_hidden / std::min({o_nt, o_tn, o_nn}) / 1e9;
  out["scorediff_gemm_gflops"] = own;
  out["scorediff_gemm_gflops_by_layout"] = {{"x_wT", flop_hidden / o_nt / 1e9}, {"gT_h", flop_hidden / o_tn / 1e9}, {"g_w", flop_hidden / o_nn / 1e9}};

  ModelOptions o;  // the peer's network: x and log(sigma)/4 in, three hidden SiLU layers of 128
  o.width = width;
  o.depth = 3;
  o.embedding = "log-sigma";
  MlpNetworkImpl net(o, dim, gen);
  torch::Tensor x = torch::randn({batch, dim}, gen), log_sigma = torch::log(0.01 + 5 * torch::rand({batch}, gen));
  torch::Tensor v = torch::randn({batch, dim}, gen);
  double forward_flop = 0, backward_flop = 0;
  for (size_t l = 0; l < net.layers().size(); ++l) {
    const auto& weight = net.layers()[l]->weight;
    const double f = 2.0 * batch * weight.size(0) * weight.size(1);
    forward_flop += f;
    backward_flop += l == 0 ? f : 2 * f;  // weight gradient everywhere, input gradient above the first layer
  }
  const double t_forward = time_per_call([&] {
    torch::InferenceMode guard;
    net.forward(x, log_sigma);
  }, 10);
  const double t_train = time_per_call([&] {
    for (auto& p : net.parameters()) p.mutable_grad() = torch::Tensor();
    (net.forward(x, log_sigma) * v).sum().backward();
  }, 10);
  const double fwd = forward_flop / t_forward / 1e9, train = (forward_flop + backward_flop) / t_train / 1e9;
  // A whole training step of the peer's configuration at this batch (the fused DSM step: draws, forward, loss,
  // backward, Adam, EMA), counted by its products' FLOPs as above.
  Config config = load_config("peer", {fmt::format("run.threads={}", args.threads), "process.levels=2",
                                       fmt::format("train.batch={}", batch)});
  Prepared p = prepare(config);
  at::Generator step_init = make_generator(derive_seed(static_cast<uint64_t>(args.seed), "init"));
  ScoreModel step_model = make_model(config.model, dim, step_init);
  Trainer trainer(step_model, p.process, make_objective(config.objective), level_count(config.objective, *p.process),
                  p.train_data, config.train, static_cast<uint64_t>(args.seed));
  const double step = (forward_flop + backward_flop) / time_per_call([&] { trainer.step(); }, 10) / 1e9;
  // The sampler: annealed Langevin on 10 000 points with the same (untrained) network, FLOPs per evaluation
  // of the network on all points.
  at::Generator init = make_generator(derive_seed(static_cast<uint64_t>(args.seed), "init"));
  ScoreModel model = make_model(config.model, dim, init);
  model->eval();
  const int64_t points = 10000;
  AnnealedLangevinOptions ald;
  ald.steps_per_level = 10;
  ald.denoise = false;
  at::Generator sgen = make_generator(derive_seed(static_cast<uint64_t>(args.seed), "sample"));
  torch::Tensor x0 = p.process->prior_sample(points, dim, sgen);
  ScoreFn score = model_score_fn(model, p.process);
  int64_t nfe = 0;
  const double t_sample = time_per_call([&] { nfe = sample_annealed_langevin(score, *p.process, x0, ald, sgen).nfe; }, 1, 3);
  const double sampler = static_cast<double>(nfe) * forward_flop * points / batch / t_sample / 1e9;
  double t_sample16 = 0;
  {
    BFloat16Inference bf16;
    t_sample16 = time_per_call([&] { nfe = sample_annealed_langevin(score, *p.process, x0, ald, sgen).nfe; }, 1, 3);
  }
  const double sampler16 = static_cast<double>(nfe) * forward_flop * points / batch / t_sample16 / 1e9;
  out["mlp_forward_gflops"] = fwd;
  out["sampler_gflops"] = sampler;
  out["sampler_fraction"] = sampler / sgemm;
  out["sampler_bfloat16_gflops"] = sampler16;
  out["mlp_forward_backward_gflops"] = train;
  out["mlp_forward_fraction"] = fwd / sgemm;
  out["mlp_forward_backward_fraction"] = train / sgemm;
  out["mlp_forward_backward_fraction_of_scorediff_gemm"] = train / own;
  out["training_step_gflops"] = step;
  out["training_step_fraction"] = step / sgemm;
  out["training_step_fraction_of_scorediff_gemm"] = step / own;
  if (args.json) {
    fmt::print("{}\n", out.dump());
  } else {
    fmt::print("roofline of the MLP path ({} thread(s), batch {}, width {}, OpenBLAS core {})\n", args.threads, batch,
               width, out["blas"].get<std::string>());
    fmt::print("  sgemm [{}x{}]x[{}x{}]: {:>7.1f} GFLOP/s (best layout)\n", batch, width, width, width, sgemm);
    fmt::print("  scorediff GEMM, same:  {:>7.1f} GFLOP/s (best layout; the MLP path uses it)\n", own);
    fmt::print("  MLP forward:            {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm  {:>5.1f} % of scorediff GEMM\n", fwd,
               100 * fwd / sgemm, 100 * fwd / own);
    fmt::print("  MLP forward + backward: {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm  {:>5.1f} % of scorediff GEMM\n", train,
               100 * train / sgemm, 100 * train / own);
    fmt::print("  whole DSM training step:{:>7.1f} GFLOP/s  {:>5.1f} % of sgemm  {:>5.1f} % of scorediff GEMM\n", step,
               100 * step / sgemm, 100 * step / own);
    fmt::print("  annealed Langevin, {} points: {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm\n", points, sampler,
               100 * sampler / sgemm);
    fmt::print("  the same, bfloat16 products:  {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm\n", sampler16, 100 * sampler16 / sgemm);
  }
  if (!args.plot.empty()) {
    Figure figure(args.plot, 900, 480);
    figure.bars(1,
                fmt::format("MLP path vs float32 GEMM ({} thread(s), batch {}, OpenBLAS {})", args.threads, batch,
                            out["blas"].get<std::string>()),
                "GFLOP/s (matrix products)",
                {"sgemm", "own GEMM", "forward", "fwd + bwd", "train step", "Langevin", "Langevin bf16"},
                {{"measured", {sgemm, own, fwd, train, step, sampler, sampler16}}}, 1.15 * std::max({sgemm, own, sampler16}));
    figure.save();
    if (!args.json) fmt::print("  figure: {}\n", args.plot);
  }
}

// Least-squares slope of log(y) against log(x): 1 is linear growth.
double log_log_slope(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += std::log(x[i]) / x.size(), my += std::log(y[i]) / y.size();
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
    sxx += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
  }
  return sxy / sxx;
}

// How the cost grows: a training step against batch size and data dimension, one annealed-Langevin
// evaluation against the number of points; the peer's network (3 hidden SiLU layers of 128) throughout.
template <class Args>
void bench_scaling(const Args& args) {
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
    Trainer trainer(model, p.process, make_objective(c.objective), level_count(c.objective, *p.process), data, c.train, seed);
    const int calls = static_cast<int>(std::clamp<int64_t>(200000 / (batch * std::max<int64_t>(dim, 16)), 5, 200));
    return 1e3 * time_per_call([&] { trainer.step(); }, calls, 3);
  };
  std::vector<double> batches{64, 128, 256, 512, 1024, 2048, 4096}, dims{2, 8, 32, 128, 512}, points{1000, 2000, 5000, 10000, 20000, 50000, 100000};
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
  nlohmann::json out = {{"threads", args.threads}, {"torch", TORCH_VERSION}, {"blas", blas_core_name()},
                        {"batch", batches}, {"train_ms_by_batch", t_batch}, {"slope_batch", log_log_slope(batches, t_batch)},
                        {"dim", dims}, {"train_ms_by_dim", t_dim}, {"slope_dim", log_log_slope(dims, t_dim)},
                        {"points", points}, {"eval_ms_by_points", t_points}, {"slope_points", log_log_slope(points, t_points)}};
  if (args.json) {
    fmt::print("{}\n", out.dump());
  } else {
    fmt::print("scaling of the MLP path ({} thread(s)); slope of log time against log size (1 = linear)\n", args.threads);
    auto table = [](const char* what, const char* unit, const std::vector<double>& x, const std::vector<double>& t) {
      fmt::print("  {} (slope {:.2f}):\n", what, log_log_slope(x, t));
      for (size_t i = 0; i < x.size(); ++i) fmt::print("    {:>8g}  {:>9.3f} {}  {:>8.3f} us per item\n", x[i], t[i], unit, 1e3 * t[i] / x[i]);
    };
    table("training step against batch size (data dimension 2)", "ms", batches, t_batch);
    table("training step against data dimension (batch 256)", "ms", dims, t_dim);
    table("annealed-Langevin evaluation against points", "ms", points, t_points);
  }
  if (!args.plot.empty()) {
    // Each panel: the measured times and the line of slope 1 through the largest size.
    auto linear = [](const std::vector<double>& x, const std::vector<double>& t) {
      std::vector<double> y;
      for (double v : x) y.push_back(t.back() * v / x.back());
      return y;
    };
    Figure figure(args.plot, 1500, 480, 3, 1);
    figure.curves(1, "Training step vs batch", "batch", "ms per step",
                  {{"measured", batches, t_batch, palette(0)}, {"linear", batches, linear(batches, t_batch), palette(7)}}, true, true);
    figure.curves(2, "Training step vs data dimension", "dimension (batch 256)", "ms per step",
                  {{"measured", dims, t_dim, palette(0)}, {"linear", dims, linear(dims, t_dim), palette(7)}}, true, true);
    figure.curves(3, "Langevin evaluation vs points", "points", "ms per evaluation",
                  {{"measured", points, t_points, palette(0)}, {"linear", points, linear(points, t_points), palette(7)}}, true, true);
    figure.save();
    if (!args.json) fmt::print("  figure: {}\n", args.plot);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  struct Args {
    int64_t steps = 2000, batch = 256, threads = 1, points = 10000, levels = 10, steps_per_level = 100, seed = 0;
    double eps = 2e-5;
    bool json = false, unet = false, roofline = false, unfused = false, scaling = false;
    std::string plot, precision = "float32";
    int64_t cmd_batch = 0;  // --batch when given
    int64_t images = 64;
    std::vector<std::string> sets;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench", "Throughput of the Python peer's configuration (train steps/s, sampling evals/s)");
  cmd->add_option("--steps", args->steps, "training steps (--unet: 20)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch", args->batch, "batch size (--unet: 64)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--threads", args->threads, "intra-op threads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--points", args->points, "sampled points")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--levels", args->levels, "noise levels")->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_option("--steps-per-level", args->steps_per_level, "Langevin steps per level")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--eps", args->eps, "annealed Langevin eps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->seed, "seed")->capture_default_str();
  cmd->add_flag("--json", args->json, "print one JSON line (default: a table)");
  cmd->add_flag("--unfused", args->unfused, "train the MLP through ATen's autograd graph instead of the fused node (before/after)");
  cmd->add_flag("--roofline", args->roofline, "sgemm GFLOP/s at the MLP's shapes and the fraction the MLP forward and forward+backward reach (batch 4096)");
  cmd->add_option("--precision", args->precision, "sampling: the MLP's hidden products in float32 or bfloat16")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_flag("--scaling", args->scaling, "time against batch size, data dimension and sampled points (log-log slopes)");
  cmd->add_option("--plot", args->plot, "--roofline, --scaling: also write the figure to this PNG");
  cmd->add_flag("--unet", args->unet, "the fashion-mnist preset's U-Net instead (training steps/s, sampling images/s)");
  cmd->add_option("--images", args->images, "--unet: images sampled")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-s,--set", args->sets, "--unet: override a key of the fashion-mnist preset (e.g. model.conv_precision=float32)");
  cmd->callback([args, cmd] {
    set_fused_mlp_training(!args->unfused);
    if (args->roofline) {
      args->cmd_batch = cmd->count("--batch") ? args->batch : 0;
      bench_roofline(*args);
      return;
    }
    if (args->scaling) {
      bench_scaling(*args);
      return;
    }
    if (args->unet) {
      bench_unet(*args, cmd->count("--steps") ? args->steps : 20, cmd->count("--batch") ? args->batch : 64);
      return;
    }
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
    double train_s = seconds_since(start);

    model->eval();
    ScoreFn score = model_score_fn(model, p.process);
    BFloat16Inference bf16(args->precision == "bfloat16");
    at::Generator gen = make_generator(derive_seed(seed, "sample"));
    AnnealedLangevinOptions ald;
    ald.eps = args->eps;
    ald.steps_per_level = args->steps_per_level;
    ald.denoise = false;
    torch::Tensor x = p.process->prior_sample(args->points, 2, gen);
    start = std::chrono::steady_clock::now();
    SampleResult result = sample_annealed_langevin(score, *p.process, x, ald, gen);
    double sample_s = seconds_since(start);
    double evals = static_cast<double>(result.nfe);
    nlohmann::json out = {{"impl", "scorediff"},
                          {"torch", TORCH_VERSION},
                          {"threads", args->threads},
                          {"fused", !args->unfused},
                          {"precision", args->precision},
                          {"train_steps_per_s", args->steps / train_s},
                          {"final_loss", last.loss},
                          {"sample_evals_per_s", evals / sample_s},
                          {"sample_point_steps_per_s", evals * args->points / sample_s}};
    if (args->json) {
      fmt::print("{}\n", out.dump());
    } else {
      fmt::print("scorediff bench ({} thread(s), LibTorch {}, sampling in {})\n", args->threads, TORCH_VERSION,
                 args->precision);
      fmt::print("  train: {:>10.1f} steps/s   ({} steps, batch {}, final loss {:.4f})\n", args->steps / train_s,
                 args->steps, args->batch, last.loss);
      fmt::print("  sample: {:>9.1f} evals/s   {:.3g} point-steps/s ({} points, {} levels x {} steps)\n",
                 evals / sample_s, evals * args->points / sample_s, args->points, args->levels, args->steps_per_level);
    }
  });
}

}  // namespace scorediff::cli
