#include "scorediff/metrics/image_metrics.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "scorediff/core/error.hpp"
#include "scorediff/core/rng.hpp"

namespace scorediff {
namespace {

constexpr int64_t kBatch = 500;
constexpr int64_t kKidSubsets = 100, kKidSubsetSize = 1000;

void check_features(const torch::Tensor& a, const torch::Tensor& b, int64_t min_rows, const char* what) {
  require(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), "{}: feature sets must be [N, F] and [M, F] with the same F",
          what);
  require(a.size(0) >= min_rows && b.size(0) >= min_rows, "{} needs at least {} rows in each set, got {} and {}", what,
          min_rows, a.size(0), b.size(0));
  require(torch::isfinite(a).all().item<bool>() && torch::isfinite(b).all().item<bool>(),
          "{}: features contain NaN or Inf", what);
}

// Symmetric positive semi-definite s [F, F] -> s^{1/2}, eigenvalues rounded below 0 clamped to 0.
torch::Tensor sqrt_psd(const torch::Tensor& s) {
  auto [values, vectors] = torch::linalg_eigh(s);
  return torch::matmul(vectors * values.clamp_min(0).sqrt().unsqueeze(0), vectors.t());
}

// x [N, F] -> mean [F], covariance [F, F] with the N − 1 denominator.
std::pair<torch::Tensor, torch::Tensor> moments(const torch::Tensor& x) {
  torch::Tensor mean = x.mean(0);
  torch::Tensor centred = x - mean;
  return {mean, torch::matmul(centred.t(), centred) / static_cast<double>(x.size(0) - 1)};
}

// Σ_{i≠j} k(x_i, x_j) / (m(m − 1)) for x [m, F].
double mean_off_diagonal(const torch::Tensor& k) {
  const double m = static_cast<double>(k.size(0));
  return (k.sum() - k.diagonal().sum()).item<double>() / (m * (m - 1));
}

}  // namespace

// Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
// equilibrium", eq. (6): the Fréchet (2-Wasserstein) distance between N(μa, Σa) and N(μb, Σb).
// tr((Σa^{1/2} Σb Σa^{1/2})^{1/2}) = tr((Σa Σb)^{1/2}), here through two symmetric eigendecompositions.
double frechet_distance(const torch::Tensor& a, const torch::Tensor& b) {
  // a [N, F], b [M, F]
  check_features(a, b, 2, "frechet_distance");
  auto [mean_a, cov_a] = moments(a.to(torch::kFloat64));
  auto [mean_b, cov_b] = moments(b.to(torch::kFloat64));
  torch::Tensor root_a = sqrt_psd(cov_a);
  torch::Tensor middle = torch::matmul(torch::matmul(root_a, cov_b), root_a);
  middle = 0.5 * (middle + middle.t());  // symmetric up to rounding; eigh reads one triangle
  const double cross = torch::linalg_eigvalsh(middle).clamp_min(0).sqrt().sum().item<double>();
  const double d = (mean_a - mean_b).pow(2).sum().item<double>() + cov_a.trace().item<double>() +
                   cov_b.trace().item<double>() - 2 * cross;
  return std::max(d, 0.0);
}

// Bińkowski et al. 2018, "Demystifying MMD GANs", eq. (4) (unbiased MMD²) with their cubic kernel.
KidResult kernel_distance(const torch::Tensor& a, const torch::Tensor& b, int64_t subsets, int64_t subset_size,
                          at::Generator& gen) {
  // a [N, F], b [M, F]
  check_features(a, b, 2, "kernel_distance");
  require(subsets >= 1, "kernel_distance needs at least one subset, got {}", subsets);
  require(subset_size >= 2 && subset_size <= std::min(a.size(0), b.size(0)),
          "kernel_distance subset size must be in [2, {}], got {}", std::min(a.size(0), b.size(0)), subset_size);
  const torch::Tensor x64 = a.to(torch::kFloat64), y64 = b.to(torch::kFloat64);
  const double inv_dim = 1.0 / static_cast<double>(a.size(1));
  auto kernel = [inv_dim](const torch::Tensor& x, const torch::Tensor& y) {
    return (torch::matmul(x, y.t()) * inv_dim + 1.0).pow(3);
  };
  std::vector<double> values;
  for (int64_t s = 0; s < subsets; ++s) {
    torch::Tensor x = x64.index_select(0, torch::randperm(x64.size(0), gen, torch::kInt64).narrow(0, 0, subset_size));
    torch::Tensor y = y64.index_select(0, torch::randperm(y64.size(0), gen, torch::kInt64).narrow(0, 0, subset_size));
    values.push_back(mean_off_diagonal(kernel(x, x)) + mean_off_diagonal(kernel(y, y)) -
                     2 * kernel(x, y).mean().item<double>());
  }
  KidResult out;
  for (double v : values) out.mean += v / static_cast<double>(subsets);
  if (subsets > 1) {
    double ss = 0;
    for (double v : values) ss += (v - out.mean) * (v - out.mean);
    // Subsets of the same two sets are not independent, so this is the spread of the subset average
    // for these sets, not of a fresh draw of them; it is small when subsets rarely overlap.
    out.se = std::sqrt(ss / static_cast<double>(subsets - 1) / static_cast<double>(subsets));
  }
  return out;
}

nlohmann::json ImageQuality::to_json() const {
  return {{"fd_cls", fd_cls},
          {"kid_cls", kid_cls},
          {"kid_cls_se", kid_cls_se},
          {"class_fractions", class_fractions},
          {"confident_fraction", confident_fraction},
          {"confident_class_fractions", confident_class_fractions},
          {"samples", samples},
          {"reference", reference},
          {"non_finite", non_finite}};
}

ImageQuality image_quality(Classifier& classifier, const torch::Tensor& samples, const torch::Tensor& reference,
                           int64_t classes, double confidence, uint64_t seed) {
  // samples [N, C, H, W], reference [M, C, H, W]
  require(classes == classifier->classes(), "image_quality: {} classes asked for, the classifier has {}", classes,
          classifier->classes());
  require(samples.size(0) >= 2 && reference.size(0) >= 2, "image quality needs at least 2 samples and 2 reference images");
  ImageQuality out;
  out.samples = samples.size(0);
  out.reference = reference.size(0);
  torch::Tensor finite = torch::isfinite(samples).flatten(1).all(1);
  out.non_finite = out.samples - finite.sum().item<int64_t>();
  const torch::Tensor x = torch::nan_to_num(samples.to(torch::kFloat32), 0.0, 0.0, 0.0).clamp(0.0, 1.0);

  torch::NoGradGuard no_grad;
  classifier->eval();  // batch norm from its running statistics: features must not depend on the batch
  std::vector<torch::Tensor> features, probabilities;
  for (int64_t start = 0; start < x.size(0); start += kBatch) {
    torch::Tensor h = classifier->features(x.narrow(0, start, std::min(kBatch, x.size(0) - start)));
    features.push_back(h);
    probabilities.push_back(torch::softmax(classifier->head(h), 1));
  }
  torch::Tensor sample_features = torch::cat(features), p = torch::cat(probabilities);  // [N, F], [N, classes]
  features.clear();
  const torch::Tensor y = reference.to(torch::kFloat32);
  for (int64_t start = 0; start < y.size(0); start += kBatch)
    features.push_back(classifier->features(y.narrow(0, start, std::min(kBatch, y.size(0) - start))));
  torch::Tensor reference_features = torch::cat(features);  // [M, F]

  out.fd_cls = frechet_distance(sample_features, reference_features);
  at::Generator gen = make_generator(derive_seed(seed, "kid"));
  KidResult kid = kernel_distance(sample_features, reference_features, kKidSubsets,
                                  std::min({kKidSubsetSize, out.samples, out.reference}), gen);
  out.kid_cls = kid.mean;
  out.kid_cls_se = kid.se;
  auto [top, predicted] = p.max(1);
  torch::Tensor counts = torch::bincount(predicted, {}, classes).to(torch::kFloat64) / static_cast<double>(out.samples);
  out.class_fractions = std::vector<double>(counts.data_ptr<double>(), counts.data_ptr<double>() + classes);
  const torch::Tensor confident = top.ge(confidence);
  out.confident_fraction = confident.to(torch::kFloat64).mean().item<double>();
  torch::Tensor sure = torch::bincount(predicted.masked_select(confident), {}, classes).to(torch::kFloat64);
  sure = sure / std::max(1.0, sure.sum().item<double>());
  out.confident_class_fractions = std::vector<double>(sure.data_ptr<double>(), sure.data_ptr<double>() + classes);
  return out;
}

}  // namespace scorediff
