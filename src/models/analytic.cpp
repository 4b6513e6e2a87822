#include "scorediff/models/analytic.hpp"

#include <torch/torch.h>

namespace scorediff {

ScoreFn mixture_score_fn(std::shared_ptr<const GaussianMixture> mixture, std::shared_ptr<const NoiseProcess> process) {
  return [mixture, process](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor t64 = t.to(torch::kFloat64);
    return mixture->score(x.to(torch::kFloat64), process->mean_coef(t64), process->std(t64)).to(x.dtype());
  };
}

}  // namespace scorediff
