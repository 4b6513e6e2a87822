// Guidance as score combinators (DESIGN §2): a new ScoreFn built from others; samplers never know.
#pragma once
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"):
// s_weak + w (s_model − s_weak). Linear, so the same in score, ε or denoiser form; w = 1 is the model
// alone. Each evaluation costs one evaluation of each score.
ScoreFn autoguided(ScoreFn model, ScoreFn weak, double w);

// Classifier-free guidance (Ho & Salimans 2022): (1 + w) s(x|y) − w s(x|∅) = s(x|y) + w (s(x|y) − s(x|∅)), the
// score of p(x|y) p(y|x)^w under the model's implicit classifier. w = 0 returns the conditional score alone
// (one evaluation instead of two).
ScoreFn classifier_free(ScoreFn conditional, ScoreFn unconditional, double w);

// log p(y_i | x_i, t) [B] of each row's own label, differentiable in x [B, D].
using LogProbFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

// Classifier guidance (Dhariwal & Nichol 2021; Song et al. 2021, controllable generation): s(x) + scale ∇ₓ log
// p(y|x, t), the score of p(x) p(y|x)^scale; scale = 1 is the score of p(x|y) by Bayes' rule when s and the
// classifier are exact. The gradient is taken by autograd even where the caller disabled it.
ScoreFn classifier_guided(ScoreFn score, LogProbFn log_prob, double scale);

}  // namespace scorediff
