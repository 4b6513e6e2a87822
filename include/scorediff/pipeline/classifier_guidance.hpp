// Classifier guidance for image runs (Dhariwal & Nichol 2021; Song et al. 2021, controllable generation): the
// noise-conditional classifier of a run (`scorediff train-classifier --noisy`) and the log-probability that
// guides its score (samplers/guidance.hpp: classifier_guided).
#pragma once
#include <string>

#include "scorediff/metrics/classifier.hpp"
#include "scorediff/pipeline/prepared.hpp"
#include "scorediff/samplers/guidance.hpp"

namespace scorediff {

// The run's process and pixel range as one line ("process.name = \"edm\"; ...; data.pixels = minus-one-one"): what a
// noisy classifier records, and what sampling with it checks.
std::string classifier_process_text(const Config& config);

// Where the settings line `theirs` (classifier_process_text of another run: a classifier's or a guide's) differs
// from this run's: the first differing setting as written in each ("process.sigma_max = 80.0"); empty strings
// when they agree. A setting `theirs` lacks (written before the key existed) counts as agreeing.
struct SettingDifference {
  std::string theirs, mine;
  explicit operator bool() const { return !mine.empty(); }
};
SettingDifference first_setting_difference(const std::string& theirs, const Config& config);

// `base` made noise-conditional for the run: noisy, with the noise range [σ(t_min), σ(t_max)] of its process
// expressed in [0, 1] pixel units (σ divided by the width of data.pixels).
ClassifierOptions noisy_classifier_options(const Config& config, const NoiseProcess& process, ClassifierOptions base);

// The classifier at `path` for guiding the run of `config`: one line unless it is noise-conditional and was
// trained on this dataset, at this image shape, for this process and pixel range.
LoadedClassifier guidance_classifier(const std::string& path, const Config& config, const ToyDataset& dataset);

// log p(y_i | x_i, σ(t)) for points x [B, C·H·W] in model units at times t [B], y = labels [B]: x is brought to
// the classifier's picture, x / m(t) in [0, 1] units with σ(t) = s(t) / m(t) in the same units.
LogProbFn classifier_log_prob(LoadedClassifier classifier, const Prepared& prepared, const std::string& pixels,
                              torch::Tensor labels);

}  // namespace scorediff
