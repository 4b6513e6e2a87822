#include "scorediff/process/tweedie.hpp"

#include <torch/torch.h>

namespace scorediff {

torch::Tensor tweedie_denoise(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                              const torch::Tensor& t) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  torch::Tensor m = process.mean_coef(t).to(x.dtype()).reshape(shape);
  torch::Tensor s = process.std(t).to(x.dtype()).reshape(shape);
  return (x + s * s * score(x, t)) / m;
}

}  // namespace scorediff
