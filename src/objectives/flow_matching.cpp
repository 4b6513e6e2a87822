// Conditional flow matching (Lipman et al. 2023, eq. 23, the optimal-transport path; Liu et al. 2023's
// rectified flow): ½‖v̂ − (ε − x₀)‖² per sample, with v̂ the velocity of the model's score. For any process
// x = m x₀ + s ε: ε̂ = −s ŝ and v̂ = ((m + s) ε̂ − x)/m, so v̂ − v = (m + s)(ε̂ − ε)/m = −(s (m + s)/m)(ŝ + ε/s):
// flow matching is DSM with the weighting λ = (s (m + s)/m)², σ² for the flow process (objective.weighting =
// "flow"; tests/test_flow.cpp checks the two losses agree on the same draws).
#include <torch/torch.h>

#include "families.hpp"
#include "scorediff/objectives/flow_matching.hpp"

namespace scorediff {

namespace {

// ½‖v̂ − (ε − x₀)‖² per sample on the noised batch b.
LossTerms velocity_loss(const ScoreFn& score, const NoiseProcess& process, const NoisedBatch& b, const torch::Tensor& x0) {
  // m in float64 from σ, as noise_batch computes it (m = 1 − t loses digits near t = 1 from a float t).
  torch::Tensor m = per_sample(process.mean_coef(process.t_of_sigma(b.sigma)).to(x0.dtype()), x0);
  torch::Tensor s = per_sample(b.std, x0);
  torch::Tensor eps_hat = -s * score(b.x_noisy, b.t);
  torch::Tensor velocity = ((m + s) * eps_hat - b.x_noisy) / m;
  LossTerms out;
  out.sigma = b.sigma;
  out.level = b.level;
  out.loss = 0.5 * (velocity - (b.eps - x0)).pow(2).flatten(1).sum(1);
  return out;
}

}  // namespace

Objective make_cfm(const ObjectiveOptions& options, const ScoreFn*) {
  return [options](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0, at::Generator& gen) {
    return velocity_loss(score, process, noise_batch(options, process, x0, gen), x0);
  };
}

Objective make_coupled_cfm(const ObjectiveOptions& options) {
  return [options](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& pairs, at::Generator& gen) {
    require(pairs.dim() == 2 && pairs.size(1) % 2 == 0,
            "objective 'cfm-coupled' trains on rows [x0, eps] of even width, got a batch of shape [{}]",
            fmt::join(pairs.sizes(), ", "));
    const int64_t d = pairs.size(1) / 2;
    torch::Tensor x0 = pairs.slice(1, 0, d), eps = pairs.slice(1, d);
    NoisedBatch b;
    sample_sigmas(options, process, x0.size(0), gen, b.sigma, b.level);
    b.t = process.t_of_sigma(b.sigma);
    torch::Tensor m = process.mean_coef(b.t).to(x0.dtype());
    b.std = process.std(b.t).to(x0.dtype());
    b.eps = eps;
    b.x_noisy = torch::addcmul(per_sample(m, x0) * x0, per_sample(b.std, x0), eps);
    b.t = b.t.to(x0.dtype());
    return velocity_loss(score, process, b, x0);
  };
}

Objective make_coupled_cfm_placeholder(const ObjectiveOptions&, const ScoreFn*) {
  fail("objective.name = 'cfm-coupled' trains on (sample, noise) pairs of a flow's ODE: run `scorediff reflow --ckpt "
       "FLOW`");
}

}  // namespace scorediff
