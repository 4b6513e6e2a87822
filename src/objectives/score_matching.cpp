// Score matching on noised data (seed 002 §3): explicit against a known score, implicit (Hyvärinen
// 2005) with the exact Jacobian trace, and sliced (Song et al. 2019) with random projections.
#include <torch/torch.h>

#include "families.hpp"
#include "scorediff/process/divergence.hpp"

namespace scorediff {
namespace {

// The noised batch with x̃ as a leaf that requires grad, and the model's score there.
struct ScoredBatch {
  NoisedBatch batch;
  torch::Tensor x, s;  // x̃ (requires grad), s_θ(x̃)
};

ScoredBatch score_with_grad(const ObjectiveOptions& o, const ScoreFn& score, const NoiseProcess& process,
                            const torch::Tensor& x0, at::Generator& gen) {
  ScoredBatch sb;
  sb.batch = noise_batch(o, process, x0, gen);
  sb.x = sb.batch.x_noisy.detach().requires_grad_(true);
  sb.s = score(sb.x, sb.batch.t);
  return sb;
}

LossTerms finish(const ObjectiveOptions& o, const NoisedBatch& b, torch::Tensor per_sample_loss, bool training) {
  LossTerms out;
  out.loss = b.weight * per_sample_loss;
  if (!training) out.loss = out.loss.detach();
  out.sigma = b.sigma;
  out.level = b.level;
  return out;
}

}  // namespace

Objective make_esm(const ObjectiveOptions& o, const ScoreFn* reference) {
  require(reference != nullptr,
          "objective 'esm' needs the true score of the data, and this dataset has none; use a dataset with a known "
          "density (mog2, 8gaussians, mixture, circle, swiss-roll) or another objective");
  ScoreFn truth = *reference;
  return [o, truth](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0, at::Generator& gen) {
    NoisedBatch b = noise_batch(o, process, x0, gen);
    torch::Tensor predicted = score(b.x_noisy, b.t);
    torch::Tensor target;
    {
      torch::NoGradGuard no_grad;
      target = truth(b.x_noisy, b.t);
    }
    return finish(o, b, 0.5 * (predicted - target).pow(2).flatten(1).sum(1), true);
  };
}

Objective make_ism(const ObjectiveOptions& o, const ScoreFn*) {
  return [o](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0, at::Generator& gen) {
    const bool training = torch::GradMode::is_enabled();
    torch::AutoGradMode grad(true);  // derivatives in x are needed even when only evaluating
    ScoredBatch sb = score_with_grad(o, score, process, x0, gen);
    // ½‖s‖² + tr ∇s (seed 000, Hyvärinen 2005): D backward passes for the exact trace.
    torch::Tensor value = 0.5 * sb.s.pow(2).sum(1) + jacobian_trace(sb.s, sb.x, training);
    return finish(o, sb.batch, value, training);
  };
}

namespace {

// mean over projections of vᵀ(∇s)v, and of ½(vᵀs)² (for SSM).
void sliced_terms(const ObjectiveOptions& o, const ScoredBatch& sb, at::Generator& gen, bool training,
                  torch::Tensor& jacobian_term, torch::Tensor& projected_square) {
  jacobian_term = torch::zeros({sb.x.size(0)}, sb.x.options());
  projected_square = torch::zeros({sb.x.size(0)}, sb.x.options());
  for (int64_t p = 0; p < o.projections; ++p) {
    torch::Tensor v = projection_vectors(o.projection, sb.x.sizes(), gen, sb.x.options());
    jacobian_term = jacobian_term + projected_jacobian(sb.s, sb.x, v, training);
    projected_square = projected_square + 0.5 * (v * sb.s).sum(1).pow(2);
  }
  jacobian_term = jacobian_term / static_cast<double>(o.projections);
  projected_square = projected_square / static_cast<double>(o.projections);
}

// Sliced score matching: vᵀ(∇s)v + ½(vᵀs)² (seed 002), or with variance reduction vᵀ(∇s)v + ½‖s‖², since
// E_v[½(vᵀs)²] = ½‖s‖² can be taken in closed form.
Objective make_sliced(const ObjectiveOptions& o, bool variance_reduced) {
  return [o, variance_reduced](const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0,
                               at::Generator& gen) {
    const bool training = torch::GradMode::is_enabled();
    torch::AutoGradMode grad(true);
    ScoredBatch sb = score_with_grad(o, score, process, x0, gen);
    torch::Tensor jacobian_term, projected_square;
    sliced_terms(o, sb, gen, training, jacobian_term, projected_square);
    torch::Tensor second = variance_reduced ? 0.5 * sb.s.pow(2).sum(1) : projected_square;
    return finish(o, sb.batch, jacobian_term + second, training);
  };
}

}  // namespace

Objective make_ssm(const ObjectiveOptions& o, const ScoreFn*) { return make_sliced(o, false); }

Objective make_ssm_vr(const ObjectiveOptions& o, const ScoreFn*) { return make_sliced(o, true); }

}  // namespace scorediff
