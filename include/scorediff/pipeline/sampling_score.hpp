// The score a trained model is sampled with, as the [sample] section says.
#pragma once
#include <filesystem>

#include "scorediff/pipeline/prepared.hpp"

namespace scorediff {

// The score to sample with. Without sample.guide (or with sample.guidance = 1) the model's own. With it,
// autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"): the guide is a
// weaker model of the same process and data (EMA weights of sample.guide, a checkpoint path or "step-N" for
// run_dir/ckpt/step-N.safetensors, e.g. an earlier step of the same run), and the score is
// s_guide + w (s_model − s_guide) with w = sample.guidance. Linear, so the same in score, ε or denoiser form.
// Each score evaluation then costs two network evaluations. sample.precision = "bfloat16" runs the MLP's
// hidden products in bfloat16 (BFloat16Inference).
ScoreFn sampling_score_fn(const Config& config, ScoreModel model, const Prepared& prepared,
                          const std::filesystem::path& run_dir);

}  // namespace scorediff
