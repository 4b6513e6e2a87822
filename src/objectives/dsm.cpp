// Denoising score matching (Vincent 2011; seed 001 §2–§7) with Gaussian, Laplace and Student-t kernels.
#include <torch/torch.h>

#include "families.hpp"
#include "scorediff/objectives/dsm.hpp"
#include "scorediff/objectives/dsm_loss.hpp"

namespace scorediff {
namespace {

// Laplace(0, 1) per element as the difference of two unit exponentials.
torch::Tensor standard_laplace(const torch::Tensor& like, at::Generator& gen) {
  torch::Tensor u1 = torch::rand(like.sizes(), gen, like.options()).clamp_min(1e-12);
  torch::Tensor u2 = torch::rand(like.sizes(), gen, like.options()).clamp_min(1e-12);
  return torch::log(u2) - torch::log(u1);
}

// Student-t with ν degrees of freedom per element: z / √(χ²_ν / ν), χ²_ν = 2 Gamma(ν/2).
torch::Tensor standard_student_t(const torch::Tensor& like, double nu, at::Generator& gen) {
  torch::Tensor z = torch::randn(like.sizes(), gen, like.options());
  torch::Tensor chi2 = 2 * at::_standard_gamma(torch::full(like.sizes(), nu / 2, like.options()), gen);
  return z / torch::sqrt(chi2 / nu);
}

}  // namespace

LossTerms DsmObjective::operator()(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0,
                                   at::Generator& gen) const {
  const ObjectiveOptions& o = options;
  LossTerms out;
  if (o.kernel == "gaussian") {
    NoisedBatch b = noise_batch(o, process, x0, gen);
    out.sigma = b.sigma;
    out.level = b.level;
    torch::Tensor predicted = score(b.x_noisy, b.t);
    if (o.weighting == "sigma2" && o.sigma_sampling != "importance") {
      // σ² ½‖s_θ + ε/σ‖² = ½‖σ s_θ + ε‖²: the ε-prediction (DDPM) loss (seed 001 §5.1), as one node.
      out.loss = dsm_sigma2_loss(predicted, b.std, b.eps);
    } else {
      out.loss = b.weight * 0.5 * (predicted + b.eps / per_sample(b.std, x0)).pow(2).flatten(1).sum(1);
    }
    return out;
  }
  torch::Tensor importance;
  sample_sigmas(o, process, x0.size(0), gen, out.sigma, out.level, &importance);
  torch::Tensor t = process.t_of_sigma(out.sigma);
  torch::Tensor m = process.mean_coef(t).to(x0.dtype()), s = process.std(t).to(x0.dtype());
  torch::Tensor noise, target;
  if (o.kernel == "laplace") {
    torch::Tensor b = o.laplace_b * s;
    noise = per_sample(b, x0) * standard_laplace(x0, gen);
    target = laplace_target(noise, b);
  } else {
    noise = per_sample(s, x0) * standard_student_t(x0, o.nu, gen);
    target = student_t_target(noise, o.nu, s);
  }
  torch::Tensor x_noisy = per_sample(m, x0) * x0 + noise;
  torch::Tensor predicted = score(x_noisy, t.to(x0.dtype()));
  torch::Tensor weight = loss_weight(o, process, t, s) * importance.to(x0.dtype());
  out.loss = weight * 0.5 * (predicted - target).pow(2).flatten(1).sum(1);
  return out;
}

Objective make_dsm(const ObjectiveOptions& o, const ScoreFn*) { return DsmObjective{o}; }

}  // namespace scorediff
