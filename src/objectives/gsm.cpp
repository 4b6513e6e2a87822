// Generalized score matching over a first-order operator (see objectives/gsm.hpp).
#include "scorediff/objectives/gsm.hpp"

#include <torch/torch.h>

#include "families.hpp"
#include "scorediff/core/error.hpp"

namespace scorediff {

FirstOrderOperator gsm_operator(const std::string& name, const torch::Tensor& x_noisy, const torch::Tensor& std) {
  const int64_t batch = x_noisy.size(0);
  const auto dim = static_cast<double>(x_noisy[0].numel());
  FirstOrderOperator op;
  if (name == "gradient") {
    op.a = torch::zeros_like(x_noisy);
    op.div_a = torch::zeros({batch}, x_noisy.options());
    op.c = torch::ones({batch}, x_noisy.options());
  } else if (name == "tweedie") {
    op.a = x_noisy.detach();
    op.div_a = torch::full({batch}, dim, x_noisy.options());
    op.c = std.to(x_noisy.dtype()).pow(2);
  } else {
    fail("unknown objective.operator '{}'; valid: gradient, tweedie", name);
  }
  return op;
}

torch::Tensor generalized_score(const FirstOrderOperator& op, const torch::Tensor& score) {
  return op.a + per_sample(op.c, score) * score;
}

torch::Tensor gsm_value(const FirstOrderOperator& op, const torch::Tensor& score, const torch::Tensor& score_trace) {
  torch::Tensor g = generalized_score(op, score);
  torch::Tensor divergence = op.div_a + op.c * score_trace;
  return 0.5 * g.pow(2).flatten(1).sum(1) - (op.a * g).flatten(1).sum(1) + op.c * divergence;
}

Objective make_gsm(const ObjectiveOptions& o, const ScoreFn*) {
  return [o](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0, at::Generator& gen) {
    const bool training = torch::GradMode::is_enabled();
    torch::AutoGradMode grad(true);  // derivatives in x̃ are needed even when only evaluating
    NoisedBatch b = noise_batch(o, process, x0, gen);
    torch::Tensor x = b.x_noisy.detach().requires_grad_(true);
    torch::Tensor s = score(x, b.t);
    FirstOrderOperator op = gsm_operator(o.op, x, b.std);
    torch::Tensor value = gsm_value(op, s, score_trace(o, s, x, gen, training));
    LossTerms out;
    // Divided by c² (ISM's scale, see gsm.hpp), then weighted like every objective.
    out.loss = b.weight * value / op.c.pow(2);
    if (!training) out.loss = out.loss.detach();
    out.sigma = b.sigma;
    out.level = b.level;
    return out;
  };
}

}  // namespace scorediff
