// Sample quality against the dataset: the numbers `scorediff eval` prints and reports quote.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "scorediff/data/toy.hpp"

namespace scorediff {

// SWD between two finite sets fluctuates with the draw of the reference set (at 5 000 points the
// data-vs-data figure ranged 0.03–0.09 over seeds on the Swiss roll), so both figures are means over
// kReferenceSets independent fresh data sets.
inline constexpr int kReferenceSets = 5;

struct SampleMetrics {
  int64_t n = 0;
  int64_t nan_count = 0;
  double swd = 0;                // samples vs fresh data of the same size (mean over reference sets)
  double swd_data_vs_data = 0;   // fresh data vs fresh data of that size: the floor (mean over pairs);
                                 // tables: samples vs held-out rows, and training vs held-out rows
  double max_radius_ratio = 0;   // largest sample norm / largest data norm
  std::vector<double> mode_weights, true_weights;  // mixtures only, in the order of data.means
  nlohmann::json to_json() const;
};

// SWD directions for the sweeps that measure many sample sets (experiments samplers, few-step and its grid end):
// fewer than evaluate_samples' default, which single measurements use.
constexpr int64_t kSweepProjections = 200;

// Fresh reference data comes from the "eval" stream of `seed`; SWD uses `projections` directions, and
// both the SWD and the floor are means over `reference_sets` fresh sets. A table (a dataset with held-out
// rows) is measured against its held-out rows instead, and its floor is the SWD between its training rows
// and the held-out ones.
SampleMetrics evaluate_samples(const ToyDataset& dataset, const torch::Tensor& samples, uint64_t seed,
                               int64_t projections = 1000, int reference_sets = kReferenceSets);

}  // namespace scorediff
