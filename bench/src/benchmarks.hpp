// scorediff's benchmarks as library code: each takes the options, measures, and returns the JSON record
// (what `scorediff bench --json` prints) and a human-readable table. `scorediff bench` is their front end;
// the kernels have their own Google Benchmark program (bench/kernels.cpp).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace scorediff::bench {

struct BenchOptions {
  int64_t steps = 2000, batch = 256, threads = 1, points = 10000, levels = 10, steps_per_level = 100, seed = 0;
  double eps = 2e-5;
  bool unfused = false;               // toy: train through ATen's graph instead of the fused step
  std::string precision = "float32";  // toy: sampling's hidden products
  std::string plot;                   // roofline, scaling: also write this PNG
  int64_t images = 64;                // unet: images sampled
  std::vector<std::string> sets;      // unet: overrides of the fashion-mnist preset
  std::string profile;                // unet: also write LibTorch's profile of 3 training steps here (chrome trace)
  std::string profile_sampling;       // unet: and of sampling `images` images here
};

struct BenchResult {
  nlohmann::json record;  // one JSON line
  std::string table;      // the same for a person
};

// The configuration of ../shared/peers/toy_dsm.py (same network, objective, batch and sampler), timed the same
// way: training steps/s, then annealed-Langevin evaluations/s.
BenchResult bench_toy(const BenchOptions& options);
// The fashion-mnist preset's U-Net, as its Python twin (bench/peers/unet_peer.py) times it: training steps/s
// and images/s of the 35-NFE Heun sampler.
BenchResult bench_unet(const BenchOptions& options);
// float32 GEMM GFLOP/s at the MLP's shapes (OpenBLAS and scorediff's), and the fraction of it the MLP forward,
// forward + backward, a whole training step and a sampler reach (batch 4096 unless options.batch is set > 0).
BenchResult bench_roofline(const BenchOptions& options);
// Time against batch size, data dimension and sampled points, with log-log slopes.
BenchResult bench_scaling(const BenchOptions& options);

}  // namespace scorediff::bench
