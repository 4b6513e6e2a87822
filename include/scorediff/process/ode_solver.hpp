// Adaptive Dormand–Prince 5(4) for tensor-valued ODEs dy/dt = f(y, t), shared by the probability-flow
// sampler and the likelihood. Error control as in Hairer, Nørsett & Wanner (1993) §II.4 and scipy's
// RK45: the RMS over all elements of err / (atol + rtol max(|y|, |y_new|)) must be ≤ 1.
#pragma once
#include <torch/types.h>

#include <functional>

namespace scorediff {

using OdeFn = std::function<torch::Tensor(const torch::Tensor& y, double t)>;

struct Rk45Options {
  double rtol = 1e-5;
  double atol = 1e-5;
  int64_t max_steps = 100000;  // accepted + rejected
  // The error norm: false, the RMS over every element (scipy, score_sde); true, the largest per-row
  // RMS, so each row of a batch (each sample of a likelihood) meets the tolerance on its own.
  bool per_row = false;
};

struct Rk45Result {
  torch::Tensor y;         // at t1
  int64_t nfe = 0;         // evaluations of f
  int64_t accepted = 0, rejected = 0;
};

// Integrates from t0 to t1 (either direction). `on_step(t)` is called after each accepted step.
Rk45Result integrate_rk45(const OdeFn& f, torch::Tensor y0, double t0, double t1, const Rk45Options& options,
                          const std::function<void(double)>& on_step = {});

}  // namespace scorediff
