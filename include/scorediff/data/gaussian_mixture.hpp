// GaussianMixture: Σ_k w_k N(μ_k, diag(σ_k²)) with exact sampling, log-density and the exact score of
// its noised marginal. Under x_t = m·x₀ + s·ε every component stays Gaussian,
// N(m μ_k, diag(m² σ_k² + s²)), so log p_t and ∇ log p_t are closed forms (used to test samplers,
// objectives and likelihoods without training anything).
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace scorediff {

class GaussianMixture {
 public:
  // weights [K] (normalised here), means [K, D], stds [K, D] (per-dimension standard deviations).
  GaussianMixture(torch::Tensor weights, torch::Tensor means, torch::Tensor stds);

  int64_t dim() const { return means_.size(1); }
  int64_t components() const { return means_.size(0); }
  const torch::Tensor& weights() const { return weights_; }
  const torch::Tensor& means() const { return means_; }
  const torch::Tensor& stds() const { return stds_; }

  torch::Tensor sample(int64_t n, at::Generator& gen) const;  // [n, D] float32
  torch::Tensor sample(int64_t n, at::Generator& gen, torch::Tensor* labels) const;

  // x [B, D]; mean_coef and std are [B] (or one-element) tensors of m(t), s(t). Result [B] / [B, D].
  torch::Tensor log_prob(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std) const;
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std) const;
  // Clean density (m = 1, s = 0).
  torch::Tensor log_prob(const torch::Tensor& x) const;

  // Index of the nearest mean for each point [B] (int64): the mode a sample belongs to.
  torch::Tensor nearest_mean(const torch::Tensor& x) const;

 private:
  // Per-point component log-densities [B, K] and, optionally, the score [B, D].
  torch::Tensor evaluate(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std,
                         torch::Tensor* score) const;
  template <class F>
  torch::Tensor chunked(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std, F f) const;
  torch::Tensor weights_, means_, stds_;
};

}  // namespace scorediff
