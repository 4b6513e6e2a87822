#include "scorediff/data/gaussian_mixture.hpp"

#include <torch/torch.h>

#include "scorediff/core/error.hpp"

namespace scorediff {
namespace {

// Broadcast a [B] or one-element coefficient to [B, 1, 1] against x [B, D].
torch::Tensor per_point(const torch::Tensor& c, const torch::Tensor& x) {
  torch::Tensor v = c.to(x.options()).reshape({-1});
  if (v.numel() == 1) v = v.expand({x.size(0)});
  require(v.size(0) == x.size(0), "mixture: {} noise coefficients for {} points", v.size(0), x.size(0));
  return v.view({-1, 1, 1});
}

}  // namespace

GaussianMixture::GaussianMixture(torch::Tensor weights, torch::Tensor means, torch::Tensor stds) {
  means_ = means.to(torch::kFloat64).contiguous();
  require(means_.dim() == 2 && means_.size(0) >= 1, "mixture means must be a [K, D] list of points");
  int64_t k = means_.size(0), d = means_.size(1);
  weights_ = weights.to(torch::kFloat64).reshape({-1});
  require(weights_.size(0) == k, "mixture has {} weights for {} means", weights_.size(0), k);
  require((weights_ >= 0).all().item<bool>() && weights_.sum().item<double>() > 0,
          "mixture weights must be non-negative and not all zero");
  weights_ = weights_ / weights_.sum();
  stds_ = stds.to(torch::kFloat64);
  if (stds_.dim() < 2) stds_ = stds_.reshape({-1, 1});
  require(stds_.size(0) == 1 || stds_.size(0) == k, "mixture std needs 1 or {} rows, got {}", k, stds_.size(0));
  require(stds_.size(1) == 1 || stds_.size(1) == d, "mixture std rows need 1 or {} entries, got {}", d, stds_.size(1));
  stds_ = stds_.expand({k, d}).contiguous();
  require((stds_ > 0).all().item<bool>(), "mixture std must be positive");
}

torch::Tensor GaussianMixture::sample(int64_t n, at::Generator& gen) const { return sample(n, gen, nullptr); }

torch::Tensor GaussianMixture::sample(int64_t n, at::Generator& gen, torch::Tensor* labels) const {
  torch::Tensor k = torch::multinomial(weights_, n, /*replacement=*/true, gen);
  torch::Tensor eps = torch::randn({n, dim()}, gen, torch::kFloat64);
  if (labels != nullptr) *labels = k;
  return (means_.index_select(0, k) + stds_.index_select(0, k) * eps).to(torch::kFloat32);
}

torch::Tensor GaussianMixture::evaluate(const torch::Tensor& x, const torch::Tensor& mean_coef,
                                        const torch::Tensor& std, torch::Tensor* score) const {
  require(x.dim() == 2 && x.size(1) == dim(), "mixture of dimension {} evaluated at points of shape [{}]", dim(),
          fmt::join(x.sizes(), ", "));
  auto opts = x.options();
  torch::Tensor m = per_point(mean_coef, x), s = per_point(std, x);
  torch::Tensor mu = means_.to(opts).unsqueeze(0), sd = stds_.to(opts).unsqueeze(0);  // [1, K, D]
  torch::Tensor var = m * m * sd * sd + s * s;                                        // [B, K, D]
  torch::Tensor diff = x.unsqueeze(1) - m * mu;                                       // [B, K, D]
  torch::Tensor log_comp = -0.5 * (diff * diff / var + torch::log(2 * M_PI * var)).sum(-1) +
                           torch::log(weights_.to(opts)).unsqueeze(0);  // [B, K]
  if (score != nullptr) {
    torch::Tensor resp = torch::softmax(log_comp, 1).unsqueeze(-1);  // [B, K, 1]
    *score = -(resp * diff / var).sum(1);
  }
  return log_comp;
}

// Large mixtures (the circle reference has 1024 components) are evaluated in chunks of points so the
// [B, K, D] intermediates stay near 32 MB.
template <class F>
torch::Tensor GaussianMixture::chunked(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std,
                                       F f) const {
  const int64_t chunk = std::max<int64_t>(1, (1 << 22) / (components() * dim()));
  if (x.size(0) <= chunk) return f(x, mean_coef, std);
  torch::Tensor m = mean_coef.to(x.options()).reshape({-1}), s = std.to(x.options()).reshape({-1});
  if (m.numel() == 1) m = m.expand({x.size(0)});
  if (s.numel() == 1) s = s.expand({x.size(0)});
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += chunk) {
    int64_t len = std::min(chunk, x.size(0) - i);
    parts.push_back(f(x.narrow(0, i, len), m.narrow(0, i, len), s.narrow(0, i, len)));
  }
  return torch::cat(parts);
}

torch::Tensor GaussianMixture::log_prob(const torch::Tensor& x, const torch::Tensor& mean_coef,
                                        const torch::Tensor& std) const {
  return chunked(x, mean_coef, std, [this](const torch::Tensor& xc, const torch::Tensor& m, const torch::Tensor& s) {
    return torch::logsumexp(evaluate(xc, m, s, nullptr), 1);
  });
}

torch::Tensor GaussianMixture::score(const torch::Tensor& x, const torch::Tensor& mean_coef,
                                     const torch::Tensor& std) const {
  return chunked(x, mean_coef, std, [this](const torch::Tensor& xc, const torch::Tensor& m, const torch::Tensor& s) {
    torch::Tensor out;
    evaluate(xc, m, s, &out);
    return out;
  });
}

torch::Tensor GaussianMixture::log_prob(const torch::Tensor& x) const {
  return log_prob(x, torch::ones({1}, x.options()), torch::zeros({1}, x.options()));
}

torch::Tensor GaussianMixture::nearest_mean(const torch::Tensor& x) const {
  return torch::cdist(x.to(torch::kFloat64), means_).argmin(1);
}

}  // namespace scorediff
