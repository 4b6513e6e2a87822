// Sample quality against the dataset: the numbers `scorediff eval` prints and reports quote.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "scorediff/data/toy.hpp"

namespace scorediff {

struct SampleMetrics {
  int64_t n = 0;
  int64_t nan_count = 0;
  double swd = 0;                // samples vs fresh data of the same size
  double swd_data_vs_data = 0;   // two fresh data sets of that size: the floor
  double max_radius_ratio = 0;   // largest sample norm / largest data norm
  std::vector<double> mode_weights, true_weights;  // mixtures only, in the order of data.means
  nlohmann::json to_json() const;
};

// Fresh reference data comes from the "eval" stream of `seed`; SWD uses `projections` directions.
SampleMetrics evaluate_samples(const ToyDataset& dataset, const torch::Tensor& samples, uint64_t seed,
                               int64_t projections = 256);

}  // namespace scorediff
