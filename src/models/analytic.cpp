#include "scorediff/models/analytic.hpp"

#include <torch/torch.h>

namespace scorediff {

ScoreFn mixture_score_fn(std::shared_ptr<const GaussianMixture> mixture, std::shared_ptr<const NoiseProcess> process) {
  return [mixture, process](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor t64 = t.to(torch::kFloat64);
    return mixture->score(x.to(torch::kFloat64), process->mean_coef(t64), process->std(t64)).to(x.dtype());
  };
}

AnalyticGaussian::AnalyticGaussian(torch::Tensor mean, torch::Tensor covariance)
    : mean_(mean.to(torch::kFloat64)) {
  require(mean_.dim() == 1 && covariance.dim() == 2 && covariance.size(0) == mean_.size(0) &&
              covariance.size(1) == mean_.size(0),
          "a Gaussian needs a mean [D] and a covariance [D, D]");
  torch::Tensor cov = covariance.to(torch::kFloat64);
  cov = 0.5 * (cov + cov.t());
  auto eig = torch::linalg_eigh(cov);
  eigenvalues_ = std::get<0>(eig);
  eigenvectors_ = std::get<1>(eig);
  require(eigenvalues_.min().item<double>() > 0, "the covariance must be positive definite");
  cholesky_ = torch::linalg_cholesky(cov);
}

torch::Tensor AnalyticGaussian::sample(int64_t n, at::Generator& gen) const {
  return mean_ + torch::randn({n, dim()}, gen, torch::kFloat64).matmul(cholesky_.t());
}

namespace {
torch::Tensor as_column(const torch::Tensor& v, const torch::Tensor& x) {
  return v.to(torch::kFloat64).reshape({-1, 1}).expand({x.size(0), 1});
}
}  // namespace

torch::Tensor AnalyticGaussian::log_prob(const torch::Tensor& x, const torch::Tensor& mean_coef,
                                         const torch::Tensor& std) const {
  torch::Tensor x64 = x.to(torch::kFloat64), m = as_column(mean_coef, x64), s = as_column(std, x64);
  torch::Tensor var = m * m * eigenvalues_.unsqueeze(0) + s * s;  // [B, D]
  torch::Tensor z = (x64 - m * mean_).matmul(eigenvectors_);
  return -0.5 * (z * z / var + torch::log(2 * M_PI * var)).sum(1);
}

torch::Tensor AnalyticGaussian::score(const torch::Tensor& x, const torch::Tensor& mean_coef,
                                      const torch::Tensor& std) const {
  torch::Tensor x64 = x.to(torch::kFloat64), m = as_column(mean_coef, x64), s = as_column(std, x64);
  torch::Tensor var = m * m * eigenvalues_.unsqueeze(0) + s * s;
  torch::Tensor z = (x64 - m * mean_).matmul(eigenvectors_);
  return -(z / var).matmul(eigenvectors_.t());
}

ScoreFn gaussian_score_fn(std::shared_ptr<const AnalyticGaussian> gaussian, std::shared_ptr<const NoiseProcess> process) {
  return [gaussian, process](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor t64 = t.to(torch::kFloat64);
    return gaussian->score(x, process->mean_coef(t64), process->std(t64)).to(x.dtype());
  };
}

}  // namespace scorediff
