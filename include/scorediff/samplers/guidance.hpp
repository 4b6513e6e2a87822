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

}  // namespace scorediff
