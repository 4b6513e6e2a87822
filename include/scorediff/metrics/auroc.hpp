// Out-of-distribution detection: the area under the ROC curve of a score that should be higher on
// in-distribution inputs than on the others.
#pragma once
#include <torch/types.h>

namespace scorediff {

// P(score of an in-distribution input > score of an outlier) + ½ P(tie), the Mann–Whitney statistic
// (exact, with ties by mid-ranks); 1 separates perfectly, 0.5 is chance. inliers [N], outliers [M], finite.
double auroc(const torch::Tensor& inliers, const torch::Tensor& outliers);

}  // namespace scorediff
