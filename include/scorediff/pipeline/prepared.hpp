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
  ScoreFn reference;         // the data's exact score under the process; empty when no density is known
};
Prepared prepare(Config& config);

}  // namespace scorediff
