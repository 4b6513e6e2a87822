// The exact score of a Gaussian mixture under a noise process, as a ScoreFn: drives samplers and
// likelihoods in tests and experiments without training anything.
#pragma once
#include <memory>

#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// Computed in float64, returned in x's dtype.
ScoreFn mixture_score_fn(std::shared_ptr<const GaussianMixture> mixture, std::shared_ptr<const NoiseProcess> process);

// N(μ, Σ) with a full covariance. Under x_t = m x₀ + s ε it is N(mμ, m²Σ + s²I), diagonal in Σ's
// eigenbasis, so score and log-density are closed forms for per-sample m, s. Float64.
class AnalyticGaussian {
 public:
  AnalyticGaussian(torch::Tensor mean, torch::Tensor covariance);  // [D], [D, D] symmetric positive definite
  int64_t dim() const { return mean_.size(0); }
  torch::Tensor sample(int64_t n, at::Generator& gen) const;  // [n, D] float64
  // x [B, D]; mean_coef, std [B] or one element. m = 1, s = 0 gives the clean density.
  torch::Tensor log_prob(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std) const;
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std) const;

 private:
  torch::Tensor mean_, eigenvalues_, eigenvectors_, cholesky_;
};

ScoreFn gaussian_score_fn(std::shared_ptr<const AnalyticGaussian> gaussian, std::shared_ptr<const NoiseProcess> process);

}  // namespace scorediff
