// Google Benchmark of scorediff's CPU kernels (src/kernels) at the MLPs' shapes, next to what could replace
// them: OpenBLAS sgemm (through ATen) and, when built with libxsmm (Debian libxsmm-dev), its JIT kernels
// dispatched per block of 64 rows. GemmScorediff is scorediff's gemm (libxsmm per block of 512 rows, with its
// transposes and dispatches); GemmLibxsmm is the bare kernel loop. LIBXSMM_TARGET=hsw forces libxsmm's AVX2 code
// (a CPU without AVX-512); OPENBLAS_CORETYPE picks OpenBLAS' code.
//   build/scorediff_kernel_bench --benchmark_filter=Gemm --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "scorediff/kernels/activations.hpp"
#include "scorediff/kernels/gemm.hpp"
#include "scorediff/kernels/group_norm.hpp"
#include "scorediff/kernels/optimiser.hpp"

#if SCOREDIFF_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

namespace {

using namespace scorediff;

// The three products of a hidden layer of width w at batch b, row-major, as the MLP runs them:
//   layout 0, forward:       Z [b, w] = H [b, w] · Wᵀ  (W stored [w, w])
//   layout 1, weight grad:  dW [w, w] = Gᵀ · H        (G, H stored [b, w])
//   layout 2, input grad:   dH [b, w] = G · W
const char* kLayouts[] = {"forward x.Wt", "weight grad Gt.H", "input grad G.W"};

struct Operands {
  torch::Tensor h, g, w, out_rows, out_square;
  Operands(int64_t batch, int64_t width)
      : h(torch::randn({batch, width})), g(torch::randn({batch, width})), w(torch::randn({width, width})),
        out_rows(torch::empty({batch, width})), out_square(torch::empty({width, width})) {}
};

void set_flops(benchmark::State& state, int64_t batch, int64_t width) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * batch * width * width * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(kLayouts[state.range(2)]);
}

void GemmScorediff(benchmark::State& state) {
  const int64_t b = state.range(0), w = state.range(1), layout = state.range(2);
  Operands o(b, w);
  float *h = o.h.data_ptr<float>(), *g = o.g.data_ptr<float>(), *wt = o.w.data_ptr<float>();
  auto run = [&] {
    if (layout == 0) gemm(false, true, b, w, w, h, w, wt, w, 0.0f, o.out_rows.data_ptr<float>(), w);
    if (layout == 1) gemm(true, false, w, w, b, g, w, h, w, 0.0f, o.out_square.data_ptr<float>(), w);
    if (layout == 2) gemm(false, false, b, w, w, g, w, wt, w, 0.0f, o.out_rows.data_ptr<float>(), w);
  };
  run();
  torch::Tensor expected = layout == 0 ? o.h.matmul(o.w.t()) : layout == 1 ? o.g.t().matmul(o.h) : o.g.matmul(o.w);
  if (!torch::allclose(layout == 1 ? o.out_square : o.out_rows, expected, 1e-4, 1e-3)) {
    state.SkipWithError("scorediff's result differs from ATen's");
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  set_flops(state, b, w);
}

void GemmOpenBlas(benchmark::State& state) {
  const int64_t b = state.range(0), w = state.range(1), layout = state.range(2);
  Operands o(b, w);
  for (auto _ : state) {
    if (layout == 0) at::mm_out(o.out_rows, o.h, o.w.t());
    if (layout == 1) at::mm_out(o.out_square, o.g.t(), o.h);
    if (layout == 2) at::mm_out(o.out_rows, o.g, o.w);
    benchmark::ClobberMemory();
  }
  set_flops(state, b, w);
}

#if SCOREDIFF_HAVE_LIBXSMM
// libxsmm's JIT kernels are column-major: row-major C [m, n] = A · B is column-major Cᵀ = Bᵀ · Aᵀ. Each
// product is cut into blocks of 64 rows (forward and input gradient) or 64 of the batch's rows summed into
// the weight gradient (beta = 1 after the first), one kernel per block shape, dispatched once.
libxsmm_smmfunction dispatch(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc, float beta,
                             int flags) {
  const libxsmm_blasint M = m, N = n, K = k, LDA = lda, LDB = ldb, LDC = ldc;
  const float alpha = 1;
  const int prefetch = LIBXSMM_PREFETCH_NONE;
  return libxsmm_smmdispatch(M, N, K, &LDA, &LDB, &LDC, &alpha, &beta, &flags, &prefetch);
}

void GemmLibxsmm(benchmark::State& state) {
  const int64_t b = state.range(0), w = state.range(1), layout = state.range(2);
  constexpr int64_t kRows = 64;
  Operands o(b, w);
  float *h = o.h.data_ptr<float>(), *g = o.g.data_ptr<float>(), *wt = o.w.data_ptr<float>();
  // Column-major, per block of 64 rows: forward Zᵀ = W · Hᵀ needs W transposed (libxsmm 1.17 has no JIT kernel
  // with a transposed first operand), so it is transposed into a buffer at every call, as scorediff's GEMM does;
  // weight grad dWᵀ = Hᵀ_block · G_block summed over the batch's blocks; input grad dHᵀ = Wᵀ · Gᵀ.
  libxsmm_smmfunction rows_kernel = dispatch(w, kRows, w, w, w, w, 0.0f, LIBXSMM_GEMM_FLAG_NONE);
  libxsmm_smmfunction first = dispatch(w, w, kRows, w, w, w, 0.0f, LIBXSMM_GEMM_FLAG_TRANS_B);
  libxsmm_smmfunction rest = dispatch(w, w, kRows, w, w, w, 1.0f, LIBXSMM_GEMM_FLAG_TRANS_B);
  if (rows_kernel == nullptr || first == nullptr || rest == nullptr) {
    state.SkipWithError("libxsmm has no JIT kernel for these shapes");
    return;
  }
  torch::Tensor transposed = torch::empty({w, w});
  float *rows = o.out_rows.data_ptr<float>(), *square = o.out_square.data_ptr<float>(), *tp = transposed.data_ptr<float>();
  auto run = [&] {
    if (layout == 0) {
      constexpr int64_t kBlock = 16;  // in 16×16 blocks, as scorediff's GEMM transposes
      for (int64_t i0 = 0; i0 < w; i0 += kBlock)
        for (int64_t j0 = 0; j0 < w; j0 += kBlock)
          for (int64_t i = i0; i < std::min(w, i0 + kBlock); ++i)
            for (int64_t j = j0; j < std::min(w, j0 + kBlock); ++j) tp[j * w + i] = wt[i * w + j];
      for (int64_t i = 0; i < b; i += kRows) rows_kernel(tp, h + i * w, rows + i * w);
    }
    if (layout == 1)
      for (int64_t i = 0; i < b; i += kRows) (i == 0 ? first : rest)(h + i * w, g + i * w, square);
    if (layout == 2)
      for (int64_t i = 0; i < b; i += kRows) rows_kernel(wt, g + i * w, rows + i * w);
  };
  // The same numbers as ATen's product, or the timing means nothing.
  run();
  torch::Tensor expected = layout == 0 ? o.h.matmul(o.w.t()) : layout == 1 ? o.g.t().matmul(o.h) : o.g.matmul(o.w);
  torch::Tensor got = layout == 1 ? o.out_square : o.out_rows;
  if (!torch::allclose(got, expected, 1e-4, 1e-3)) {
    state.SkipWithError("libxsmm's result differs from ATen's");
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  set_flops(state, b, w);
  state.SetLabel(std::string(kLayouts[layout]) + ", " + libxsmm_get_target_arch());
}
BENCHMARK(GemmLibxsmm)->ArgsProduct({{256, 4096}, {128, 256}, {0, 1, 2}});
#endif

BENCHMARK(GemmScorediff)->ArgsProduct({{256, 4096}, {128, 256}, {0, 1, 2}});
BENCHMARK(GemmOpenBlas)->ArgsProduct({{256, 4096}, {128, 256}, {0, 1, 2}});

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

// The U-Net's fused GroupNorm + SiLU at the preset's shapes (batch 64, 8 groups), bfloat16 output/gradient,
// at 1 and 2 ATen threads: args are channels, side, threads.
struct GroupNormOperands {
  GroupNormShape s;
  torch::Tensor x, gamma, beta, y, mean, rstd, dx, dgamma, dbeta;
  explicit GroupNormOperands(const benchmark::State& state)
      : s{64, state.range(0), state.range(1) * state.range(1), 8},
        x(torch::randn({s.n, s.channels, s.hw})), gamma(torch::randn({s.channels})), beta(torch::randn({s.channels})),
        y(torch::randn({s.n, s.channels, s.hw}).to(torch::kBFloat16)), mean(torch::empty({s.n, s.groups})),
        rstd(torch::empty({s.n, s.groups})), dx(torch::empty_like(x)), dgamma(torch::empty({s.n, s.channels})),
        dbeta(torch::empty({s.n, s.channels})) {
    at::set_num_threads(static_cast<int>(state.range(2)));
  }
  ~GroupNormOperands() { at::set_num_threads(1); }
  void forward() {
    group_norm_act_forward(x.data_ptr<float>(), gamma.data_ptr<float>(), beta.data_ptr<float>(),
                           y.data_ptr<c10::BFloat16>(), mean.data_ptr<float>(), rstd.data_ptr<float>(), s, 1e-5f, true);
  }
};

void GroupNormActForward(benchmark::State& state) {
  GroupNormOperands o(state);
  for (auto _ : state) o.forward();
  state.SetItemsProcessed(state.iterations() * o.x.numel());
}
BENCHMARK(GroupNormActForward)->ArgsProduct({{32, 64}, {28, 14}, {1, 2}})->UseRealTime();

void GroupNormActBackward(benchmark::State& state) {
  GroupNormOperands o(state);
  o.forward();
  for (auto _ : state)
    group_norm_act_backward(o.y.data_ptr<c10::BFloat16>(), o.x.data_ptr<float>(), o.gamma.data_ptr<float>(),
                            o.beta.data_ptr<float>(), o.mean.data_ptr<float>(), o.rstd.data_ptr<float>(),
                            o.dx.data_ptr<float>(), o.dgamma.data_ptr<float>(), o.dbeta.data_ptr<float>(), o.s, true);
  state.SetItemsProcessed(state.iterations() * o.x.numel());
}
BENCHMARK(GroupNormActBackward)->ArgsProduct({{32, 64}, {28, 14}, {1, 2}})->UseRealTime();

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
