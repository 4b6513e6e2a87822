// Exact log-likelihoods through the probability-flow ODE (Song et al. 2021, §D.2; Chen et al. 2018):
//   log p_{t0}(x) = log p_T(x_T) + ∫_{t0}^{T} ∇·f̃(x_t, t) dt,   f̃ = f − ½ g² s,
// the state and the running divergence solved together by adaptive RK45. The divergence is exact (D
// backward passes) or Hutchinson's estimate εᵀ(∇f̃)ε with ε fixed per sample along the path.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <string>

#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

struct LikelihoodOptions {
  std::string divergence = "exact";   // exact or hutchinson
  std::string probe = "rademacher";   // hutchinson: gaussian or rademacher
  int64_t probes = 1;                 // hutchinson: probes averaged at each evaluation
  double rtol = 1e-5, atol = 1e-5;
  double t_start = 0.0;               // the data's time; 0 = the process' t_min
  int64_t batch = 1000;               // points solved together
};

struct LikelihoodResult {
  torch::Tensor log_prob;    // [N] log p_{t_start}(x), nats, float64
  torch::Tensor prior_logp;  // [N] log p_T(x_T)
  torch::Tensor divergence;  // [N] ∫ ∇·f̃ dt
  torch::Tensor endpoint;    // x_T, like x
  int64_t nfe = 0;           // ODE right-hand-side evaluations, summed over batches
};

// The score must be differentiable in x. `gen` draws the Hutchinson probes. `progress(done, total)` is
// called after each batch.
LikelihoodResult ode_log_likelihood(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                                    const LikelihoodOptions& options, at::Generator& gen,
                                    const std::function<void(int64_t, int64_t)>& progress = {});

// Bits per dimension of 8-bit data modelled, after uniform dequantisation u = (k + v)/256, v ~ U[0,1)^D,
// on y = scale·u + offset: bpd = (NLL_y/D − log scale)/ln 2 + 8. [N] -> [N].
torch::Tensor bits_per_dim(const torch::Tensor& nll_nats, int64_t dim, double scale);
// Uniform dequantisation of integer pixel values k ∈ {0..255} to y = scale·(k + v)/256 + offset.
torch::Tensor dequantize(const torch::Tensor& levels, double scale, double offset, at::Generator& gen);

// Mean and its standard error.
struct MeanSe {
  double mean, se;
};
MeanSe mean_se(const torch::Tensor& values);

}  // namespace scorediff
