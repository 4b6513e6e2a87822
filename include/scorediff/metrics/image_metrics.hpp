// Sample quality of images through a dataset's own classifier (metrics/classifier.hpp): Fréchet
// distance and kernel (MMD) distance of its penultimate features, and what it predicts for the samples.
// Named "-cls" everywhere because they are not Inception FID/KID and do not compare with published numbers.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "scorediff/metrics/classifier.hpp"

namespace scorediff {

// Fréchet distance between Gaussians fitted to feature sets a [N, F] and b [M, F] (N, M >= 2):
//   ‖μa − μb‖² + tr Σa + tr Σb − 2 tr((Σa^{1/2} Σb Σa^{1/2})^{1/2}),  in float64.
double frechet_distance(const torch::Tensor& a, const torch::Tensor& b);

struct KidResult {
  double mean = 0.0;  // average unbiased MMD² over the subsets
  double se = 0.0;    // standard error of that average (spread over subsets / √subsets)
};
// Unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / F + 1)³ between `subsets` random
// subsets of `subset_size` rows of a [N, F] and of b [M, F] each (without replacement within a subset).
KidResult kernel_distance(const torch::Tensor& a, const torch::Tensor& b, int64_t subsets, int64_t subset_size,
                          at::Generator& gen);

struct ImageQuality {
  double fd_cls = 0.0;
  double kid_cls = 0.0, kid_cls_se = 0.0;
  std::vector<double> class_fractions;  // share of samples by predicted class; sums to 1
  double confident_fraction = 0.0;      // share of samples whose largest softmax probability >= confidence
  // Shares by predicted class among those confident samples only (all 0 when there are none): what the
  // recognisable samples are, without the noise-like ones that an untrained model makes.
  std::vector<double> confident_class_fractions;
  int64_t samples = 0, reference = 0;
  int64_t non_finite = 0;               // samples with a NaN or Inf pixel (set to 0 before measuring)

  nlohmann::json to_json() const;
};

// samples [N, C, H, W] and reference [M, C, H, W] in [0, 1] (samples are clamped into it). KID uses 100
// subsets of min(1000, N, M) rows drawn from a generator seeded by `seed`. Puts the classifier in eval mode.
ImageQuality image_quality(Classifier& classifier, const torch::Tensor& samples, const torch::Tensor& reference,
                           int64_t classes, double confidence = 0.9, uint64_t seed = 0);

}  // namespace scorediff
