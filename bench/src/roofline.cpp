#include <fmt/core.h>

#include "benchmarks.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/kernels/gemm.hpp"
#include "scorediff/models/fused_mlp.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/langevin.hpp"
#include "timing.hpp"

namespace scorediff::bench {

// The roofline of the small-model path: OpenBLAS sgemm GFLOP/s at the MLP's shapes, and the fraction of
// it that the MLP forward (inference path), forward + backward (fused training node) and a sampler
// step reach. FLOPs count the matrix products only (2 m n k each).
BenchResult bench_roofline(const BenchOptions& args) {
  set_threads(static_cast<int>(args.threads), Workload::Dense);
  const int64_t batch = args.batch > 0 ? args.batch : 4096, width = 128, dim = 2;
  auto gen = make_generator(static_cast<uint64_t>(args.seed));
  nlohmann::json out = {
      {"threads", args.threads}, {"batch", batch}, {"torch", TORCH_VERSION}, {"blas", blas_core_name()}};
  // sgemm at the hidden layer's shape, both products of the backward pass included.
  torch::Tensor a = torch::randn({batch, width}, gen), w = torch::randn({width, width}, gen),
                c = torch::empty({batch, width});
  torch::Tensor dw = torch::empty({width, width});
  const double flop_hidden = 2.0 * batch * width * width;
  const double t_nt = time_per_call([&] { at::mm_out(c, a, w.t()); }, 20);
  const double t_tn = time_per_call([&] { at::mm_out(dw, c.t(), a); }, 20);
  const double t_nn = time_per_call([&] { at::mm_out(c, a, w); }, 20);
  const double sgemm = flop_hidden / std::min({t_nt, t_tn, t_nn}) / 1e9;
  out["sgemm_gflops"] = sgemm;
  out["sgemm_gflops_by_layout"] = {
      {"x_wT", flop_hidden / t_nt / 1e9}, {"gT_h", flop_hidden / t_tn / 1e9}, {"g_w", flop_hidden / t_nn / 1e9}};
  // scorediff's own GEMM (kernels/gemm.hpp), which the MLP path calls, at the same three layouts: the
  // stricter ceiling where it beats OpenBLAS.
  const double o_nt = time_per_call(
      [&] {
        gemm(false, true, batch, width, width, a.data_ptr<float>(), width, w.data_ptr<float>(), width, 0.0f,
             c.data_ptr<float>(), width);
      },
      20);
  const double o_tn = time_per_call(
      [&] {
        gemm(true, false, width, width, batch, c.data_ptr<float>(), width, a.data_ptr<float>(), width, 0.0f,
             dw.data_ptr<float>(), width);
      },
      20);
  const double o_nn = time_per_call(
      [&] {
        gemm(false, false, batch, width, width, a.data_ptr<float>(), width, w.data_ptr<float>(), width, 0.0f,
             c.data_ptr<float>(), width);
      },
      20);
  const double own = flop_hidden / std::min({o_nt, o_tn, o_nn}) / 1e9;
  out["scorediff_gemm_gflops"] = own;
  out["scorediff_gemm_gflops_by_layout"] = {
      {"x_wT", flop_hidden / o_nt / 1e9}, {"gT_h", flop_hidden / o_tn / 1e9}, {"g_w", flop_hidden / o_nn / 1e9}};

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
  net.eval();  // the inference path
  const double t_forward = time_per_call(
      [&] {
        torch::InferenceMode guard;
        net.forward(x, log_sigma);
      },
      10);
  net.train();  // the fused training node
  const double t_train = time_per_call(
      [&] {
        for (auto& p : net.parameters()) p.mutable_grad() = torch::Tensor();
        (net.forward(x, log_sigma) * v).sum().backward();
      },
      10);
  const double fwd = forward_flop / t_forward / 1e9, train = (forward_flop + backward_flop) / t_train / 1e9;
  // A whole training step of the peer's configuration at this batch (the fused DSM step: draws, forward, loss,
  // backward, Adam, EMA), counted by its products' FLOPs as above.
  Config config = load_config(
      "peer", {fmt::format("run.threads={}", args.threads), "process.levels=2", fmt::format("train.batch={}", batch)});
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
  const double t_sample =
      time_per_call([&] { nfe = sample_annealed_langevin(score, *p.process, x0, ald, sgen).nfe; }, 1, 3);
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
  std::string table;
  table += fmt::format("roofline of the MLP path ({} thread(s), batch {}, width {}, OpenBLAS core {})\n", args.threads,
                       batch, width, out["blas"].get<std::string>());
  table += fmt::format("  sgemm [{}x{}]x[{}x{}]: {:>7.1f} GFLOP/s (best layout)\n", batch, width, width, width, sgemm);
  table += fmt::format("  scorediff GEMM, same:  {:>7.1f} GFLOP/s (best layout; the MLP path uses it)\n", own);
  table +=
      fmt::format("  MLP forward:            {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm  {:>5.1f} % of scorediff GEMM\n",
                  fwd, 100 * fwd / sgemm, 100 * fwd / own);
  table +=
      fmt::format("  MLP forward + backward: {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm  {:>5.1f} % of scorediff GEMM\n",
                  train, 100 * train / sgemm, 100 * train / own);
  table +=
      fmt::format("  whole DSM training step:{:>7.1f} GFLOP/s  {:>5.1f} % of sgemm  {:>5.1f} % of scorediff GEMM\n",
                  step, 100 * step / sgemm, 100 * step / own);
  table += fmt::format("  annealed Langevin, {} points: {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm\n", points, sampler,
                       100 * sampler / sgemm);
  table += fmt::format("  the same, bfloat16 products:  {:>7.1f} GFLOP/s  {:>5.1f} % of sgemm\n", sampler16,
                       100 * sampler16 / sgemm);

  if (!args.plot.empty()) {
    Figure figure(args.plot, 900, 480);
    figure.bars(1,
                fmt::format("MLP path vs float32 GEMM ({} thread(s), batch {}, OpenBLAS {})", args.threads, batch,
                            out["blas"].get<std::string>()),
                "GFLOP/s (matrix products)",
                {"sgemm", "own GEMM", "forward", "fwd + bwd", "train step", "Langevin", "Langevin bf16"},
                {{"measured", {sgemm, own, fwd, train, step, sampler, sampler16}}},
                1.15 * std::max({sgemm, own, sampler16}));
    figure.save();
    table += fmt::format("  figure: {}\n", args.plot);
  }
  return {out, table};
}

}  // namespace scorediff::bench
