// Google Benchmark of scorediff's CPU kernels (src/kernels) at the MLPs' shapes, next to what could replace
// them: OpenBLAS sgemm (through ATen) and, when built with libxsmm (Debian libxsmm-dev), its JIT kernels
// dispatched per block of 64 rows. LIBXSMM_TARGET=hsw forces libxsmm's AVX2 code (a CPU without AVX-512);
// scorediff's GEMM then has no kernel of its own and calls BLAS sgemm (OPENBLAS_CORETYPE picks its code).
//   build/scorediff_kernel_bench --benchmark_filter=Gemm --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "scorediff/kernels/activations.hpp"
#include "scorediff/kernels/gemm.hpp"
#include "scorediff/kernels/optimiser.hpp"

#if SCOREDIFF_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

namespace {

using namespace scorediff;

// The hidden layer's product at batch b and width w: C [b, w] = A [b, w] · B [w, w] (row-major, B as stored for
// the forward pass with Wᵀ precomputed, the layout every backend runs without a copy).
struct Operands {
  torch::Tensor a, b, c;
  Operands(int64_t batch, int64_t width)
      : a(torch::randn({batch, width})), b(torch::randn({width, width})), c(torch::empty({batch, width})) {}
};

void set_flops(benchmark::State& state, int64_t batch, int64_t width) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * batch * width * width * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void GemmScorediff(benchmark::State& state) {
  const int64_t batch = state.range(0), width = state.range(1);
  Operands o(batch, width);
  for (auto _ : state) {
    gemm(false, false, batch, width, width, o.a.data_ptr<float>(), width, o.b.data_ptr<float>(), width, 0.0f,
         o.c.data_ptr<float>(), width);
    benchmark::DoNotOptimize(o.c.data_ptr<float>());
  }
  set_flops(state, batch, width);
  state.SetLabel(fast_gemm_available() ? "own AVX-512 kernel where the CPU has it, else BLAS" : "unavailable");
}

void GemmOpenBlas(benchmark::State& state) {
  const int64_t batch = state.range(0), width = state.range(1);
  Operands o(batch, width);
  for (auto _ : state) {
    at::mm_out(o.c, o.a, o.b);
    benchmark::DoNotOptimize(o.c.data_ptr<float>());
  }
  set_flops(state, batch, width);
}

#if SCOREDIFF_HAVE_LIBXSMM
// Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: one JIT kernel for m = width, n = 64 rows, k = width.
void GemmLibxsmm(benchmark::State& state) {
  const int64_t batch = state.range(0), width = state.range(1);
  constexpr int64_t kRows = 64;
  Operands o(batch, width);
  const libxsmm_blasint m = width, n = kRows, k = width, lda = width, ldb = width, ldc = width;
  const float alpha = 1, beta = 0;
  const int flags = LIBXSMM_GEMM_FLAG_NONE, prefetch = LIBXSMM_PREFETCH_NONE;
  libxsmm_smmfunction kernel = libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
  if (kernel == nullptr) {
    state.SkipWithError("libxsmm has no JIT kernel for this shape");
    return;
  }
  const float *a = o.a.data_ptr<float>(), *b = o.b.data_ptr<float>();
  float* c = o.c.data_ptr<float>();
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; i += kRows) kernel(b, a + i * width, c + i * width);
    benchmark::DoNotOptimize(c);
  }
  set_flops(state, batch, width);
  state.SetLabel(libxsmm_get_target_arch());
}
BENCHMARK(GemmLibxsmm)->ArgsProduct({{256, 4096}, {128, 256}});
#endif

BENCHMARK(GemmScorediff)->ArgsProduct({{256, 4096}, {128, 256}});
BENCHMARK(GemmOpenBlas)->ArgsProduct({{256, 4096}, {128, 256}});

// The hidden layer's bias + sigmoid + SiLU pass (training) and bias + SiLU (sampling) on [batch, width].
void BiasSigmoidSilu(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = 128;
  torch::Tensor z = torch::randn({rows, cols}), s = torch::empty_like(z), h = torch::empty_like(z), bias = torch::randn({cols});
  torch::Tensor source = z.clone();
  for (auto _ : state) {
    z.copy_(source);
    bias_sigmoid_silu(z.data_ptr<float>(), s.data_ptr<float>(), h.data_ptr<float>(), bias.data_ptr<float>(), rows, cols);
  }
  state.SetItemsProcessed(state.iterations() * rows * cols);
}
BENCHMARK(BiasSigmoidSilu)->Arg(256)->Arg(4096);

void BiasSilu(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = 128;
  torch::Tensor in = torch::randn({rows, cols}), out = torch::empty_like(in), bias = torch::randn({cols});
  for (auto _ : state) bias_silu_out(out, in, bias);
  state.SetItemsProcessed(state.iterations() * rows * cols);
}
BENCHMARK(BiasSilu)->Arg(256)->Arg(4096);

void BiasSiluAten(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = 128;
  torch::Tensor in = torch::randn({rows, cols}), out = torch::empty_like(in), bias = torch::randn({cols});
  for (auto _ : state) at::silu_out(out, in + bias);
  state.SetItemsProcessed(state.iterations() * rows * cols);
}
BENCHMARK(BiasSiluAten)->Arg(256)->Arg(4096);

// One Adam update and one EMA update over the toy MLP's 50 000 parameters.
void AdamUpdate(benchmark::State& state) {
  const int64_t n = state.range(0);
  torch::Tensor p = torch::randn({n}), g = torch::randn({n}), m = torch::zeros({n}), v = torch::zeros({n});
  const AdamScalars k{1.0f, 1.0f, 0.9f, 0.999f, 1e-3f, 1.0f, 1e-8f, false};
  for (auto _ : state) adam_update(p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), n, k);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(AdamUpdate)->Arg(50000);

void EmaUpdate(benchmark::State& state) {
  const int64_t n = state.range(0);
  torch::Tensor shadow = torch::randn({n}), p = torch::randn({n});
  for (auto _ : state) ema_update(shadow.data_ptr<float>(), p.data_ptr<float>(), n, 0.999);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(EmaUpdate)->Arg(50000);

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(1);  // the comparison is at one thread; OpenBLAS follows OPENBLAS_NUM_THREADS
#if SCOREDIFF_HAVE_LIBXSMM
  libxsmm_init();
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
