// SURE (Stein 1981; seed 002 eq. 3.3.7) for the Tweedie denoiser D(x̃) = x̃ + σ² s(x̃): an unbiased
// estimate of E‖D(x̃) − x‖² from noisy data alone. With that D, SURE/(2σ⁴) is ISM plus a constant.
#include <torch/torch.h>

#include "families.hpp"
#include "scorediff/objectives/sure.hpp"
#include "scorediff/process/divergence.hpp"

namespace scorediff {

torch::Tensor sure_value(const torch::Tensor& denoised, const torch::Tensor& x_noisy, const torch::Tensor& divergence,
                         const torch::Tensor& sigma) {
  const auto dim = static_cast<double>(x_noisy[0].numel());
  torch::Tensor s2 = sigma.to(x_noisy.dtype()).pow(2);
  return (denoised - x_noisy).pow(2).flatten(1).sum(1) + 2 * s2 * divergence - dim * s2;
}

torch::Tensor score_trace(const ObjectiveOptions& o, const torch::Tensor& s, const torch::Tensor& x, at::Generator& gen,
                          bool training) {
  if (o.divergence == "exact") return jacobian_trace(s, x, training);
  torch::Tensor trace = torch::zeros({x.size(0)}, x.options());
  for (int64_t p = 0; p < o.projections; ++p)
    trace = trace + projected_jacobian(s, x, projection_vectors(o.projection, x.sizes(), gen, x.options()), training);
  return trace / static_cast<double>(o.projections);
}

Objective make_sure(const ObjectiveOptions& o, const ScoreFn*) {
  return [o](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0, at::Generator& gen) {
    const bool training = torch::GradMode::is_enabled();
    torch::AutoGradMode grad(true);
    NoisedBatch b = noise_batch(o, process, x0, gen);
    require(torch::allclose(process.mean_coef(b.t), torch::ones_like(b.t)),
            "objective 'sure' needs a process without signal scaling (ladder or ve), not '{}'", process.name());
    torch::Tensor x = b.x_noisy.detach().requires_grad_(true);
    torch::Tensor s = score(x, b.t);
    torch::Tensor s2 = per_sample(b.std * b.std, x);
    torch::Tensor denoised = x + s2 * s;
    // div D = D + σ² tr ∇s.
    const auto dim = static_cast<double>(x[0].numel());
    torch::Tensor divergence = dim + b.std * b.std * score_trace(o, s, x, gen, training);
    torch::Tensor value = sure_value(denoised, x, divergence, b.std);
    LossTerms out;
    // Scaled by 1/(2σ⁴) so that the loss is ISM's plus D/(2σ²), then weighted like every objective.
    out.loss = b.weight * value / (2 * b.std.pow(4));
    if (!training) out.loss = out.loss.detach();
    out.sigma = b.sigma;
    out.level = b.level;
    return out;
  };
}

}  // namespace scorediff
