// Guidance as score combinators (DESIGN §2): a new ScoreFn built from others; samplers never know.
#pragma once
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"):
// s_weak + w (s_model − s_weak). Linear, so the same in score, ε or denoiser form; w = 1 is the model
// alone. Each evaluation costs one evaluation of each score.
ScoreFn autoguided(ScoreFn model, ScoreFn weak, double w);

}  // namespace scorediff
