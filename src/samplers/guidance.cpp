#include "scorediff/samplers/guidance.hpp"

#include <torch/torch.h>

namespace scorediff {

ScoreFn autoguided(ScoreFn model, ScoreFn weak, double w) {
  return [model = std::move(model), weak = std::move(weak), w](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor s_weak = weak(x, t);
    return s_weak + w * (model(x, t) - s_weak);
  };
}

ScoreFn classifier_free(ScoreFn conditional, ScoreFn unconditional, double w) {
  if (w == 0) return conditional;
  return [conditional = std::move(conditional), unconditional = std::move(unconditional), w](const torch::Tensor& x,
                                                                                            const torch::Tensor& t) {
    torch::Tensor s = conditional(x, t);
    return s + w * (s - unconditional(x, t));
  };
}

}  // namespace scorediff
