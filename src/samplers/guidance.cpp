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

ScoreFn classifier_guided(ScoreFn score, LogProbFn log_prob, double scale) {
  if (scale == 0) return score;
  return [score = std::move(score), log_prob = std::move(log_prob), scale](const torch::Tensor& x,
                                                                          const torch::Tensor& t) {
    torch::Tensor grad;
    {
      // Samplers run in inference mode: the gradient needs autograd, on ordinary (cloned) tensors.
      c10::InferenceMode normal_mode(false);
      torch::AutoGradMode enable(true);
      torch::Tensor xg = x.detach().clone().requires_grad_(true);
      grad = torch::autograd::grad({log_prob(xg, t.clone()).sum()}, {xg})[0];
    }
    return score(x, t) + scale * grad;
  };
}

}  // namespace scorediff
