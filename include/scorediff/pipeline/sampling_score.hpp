// The score a trained model is sampled with, as the [sample] section says.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "scorediff/pipeline/config.hpp"
#include "scorediff/pipeline/prepared.hpp"
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

// The score to sample with. Without sample.guide (or with sample.guidance = 1) the model's own. With it,
// autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"): the guide is a
// weaker model of the same process and data (EMA weights of sample.guide, a checkpoint path or "step-N" for
// run_dir/ckpt/step-N.safetensors, e.g. an earlier step of the same run), and the score is
// s_guide + w (s_model − s_guide) with w = sample.guidance. Linear, so the same in score, ε or denoiser form.
// Each score evaluation then costs two network evaluations. sample.precision = "bfloat16" runs the MLP's
// hidden products in bfloat16 (BFloat16Inference).
// Class-conditional models: the score is bound to the sample.n labels of sampling_labels, classifier-free guided
// when sample.cfg = w > 0 (two network evaluations per score); with autoguidance, guidance inside each network
// first, across them second: s = g + w_a (m − g), m and g the model's and the guide's CFG-combined scores.
ScoreFn sampling_score_fn(const Config& config, ScoreModel model, const Prepared& prepared,
                          const std::filesystem::path& run_dir);

// A model's score bound to labels (undefined: unconditional), classifier-free guided with weight cfg > 0.
ScoreFn labelled_score_fn(ScoreModel model, const Prepared& prepared, const torch::Tensor& labels, double cfg);

// The labels [sample.n] of the samples (sample_labels of sample.class), undefined for unconditional sampling.
// One line for sample.cfg without a class-conditional model; a warning when the null class is used by a model
// trained without label dropout.
torch::Tensor sampling_labels(const Config& config, const ScoreModelImpl& model);

// A checkpoint's configuration with one command's overrides: only keys that start with one of
// allowed_prefixes, or run.seed / run.threads, each else one line; validated, with the unread-sample-keys
// warning. What `scorediff sample`, `density`, `denoise`, `likelihood` and the library apply to a checkpoint.
Config with_command_sets(Config config, const std::vector<std::string>& sets,
                         const std::vector<std::string>& allowed_prefixes);

// Samples as `scorediff sample` draws them, in model units: the generator seeded by run.seed ("sample"), the
// sampler of config.sample. initial: as run_sampler's start.
SampleResult draw_samples(const Config& config, const ScoreFn& score, const Prepared& prepared, bool quiet,
                          const torch::Tensor& initial = {});

}  // namespace scorediff
