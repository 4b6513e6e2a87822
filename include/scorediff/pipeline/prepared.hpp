// A configuration made concrete before any model exists: dataset, training set, process, exact score.
#pragma once
#include <memory>

#include "scorediff/pipeline/config.hpp"

namespace scorediff {

// What a configuration needs before any model exists: the dataset, its fixed training set and the
// process. Fills model.sigma_data from the training set when it is 0.
struct Prepared {
  std::shared_ptr<const ToyDataset> dataset;
  std::shared_ptr<const NoiseProcess> process;
  torch::Tensor train_data;  // [N, D] float32 on the run's device
  torch::Tensor train_labels;  // [N] int64 on the run's device for labelled data (ToyDataset::classes() > 0)
  ScoreFn reference;         // the data's exact score under the process; empty when no density is known
  std::vector<std::string> notes;  // one line per "auto" setting: the value and where it came from
};
// Draws the training set, resolves the "auto" settings (resolve_auto_noise) and builds the process.
Prepared prepare(Config& config);

// Replaces every "auto" among process.sigma_max, process.sigma_min, process.levels and sample.eps by
// its value derived from `train_data` (at most kAutoNoisePoints rows of it, drawn by `gen`) and returns
// one line per key: the value and where it came from.
std::vector<std::string> resolve_auto_noise(Config& config, const torch::Tensor& train_data, at::Generator& gen);

}  // namespace scorediff
