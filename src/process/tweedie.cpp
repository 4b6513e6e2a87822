#include "scorediff/process/tweedie.hpp"

#include <torch/torch.h>

#include "scorediff/process/divergence.hpp"

namespace scorediff {

torch::Tensor tweedie_denoise(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                              const torch::Tensor& t) {
  torch::Tensor m = per_sample(process.mean_coef(t).to(x.dtype()), x);
  torch::Tensor s = per_sample(process.std(t).to(x.dtype()), x);
  return (x + s * s * score(x, t)) / m;
}

torch::Tensor tweedie_at(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x, double t) {
  torch::NoGradGuard no_grad;
  return tweedie_denoise(score, process, x, torch::full({x.size(0)}, t, x.options()));
}

}  // namespace scorediff

namespace scorediff {

torch::Tensor tweedie_covariance(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                                 const torch::Tensor& t) {
  torch::AutoGradMode grad(true);
  torch::Tensor input = x.detach().clone().requires_grad_(true);
  torch::Tensor hessian = jacobian(score(input, t), input, /*create_graph=*/false).detach();
  torch::Tensor m = process.mean_coef(t).to(x.dtype()).view({-1, 1, 1});
  torch::Tensor s2 = process.std(t).to(x.dtype()).pow(2).view({-1, 1, 1});
  torch::Tensor eye = torch::eye(x.size(1), x.options()).unsqueeze(0);
  // Symmetrised: the Hessian of a log-density is symmetric; autograd's is up to rounding.
  hessian = 0.5 * (hessian + hessian.transpose(1, 2));
  return (s2 * eye + s2 * s2 * hessian) / (m * m);
}

}  // namespace scorediff
