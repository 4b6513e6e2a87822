// After training: sample with the EMA weights, measure, draw, and write samples.npy, metrics.json and
// the PNG figures into the run directory; the findings are added to `report` (the caller saves it).
#pragma once
#include <filesystem>

#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff {

struct RunSummary {
  SampleMetrics metrics;        // point datasets
  nlohmann::json image_metrics; // image datasets: evaluate_images' figures, or null without a classifier
  int64_t nfe = 0;
  double sample_seconds = 0;
  nlohmann::json metrics_json() const { return image_metrics.is_null() ? metrics.to_json() : image_metrics; }
};

// Image datasets get a sample grid and, when the dataset's classifier exists (classifier_for), FD-cls,
// KID-cls and the class histogram next to the held-out floor; points get SWD, mode weights and fields.
RunSummary finish_run(TrainedRun& run, const std::filesystem::path& out_dir, bool quiet, Report& report);

// Noise-level labels for per-level plots: the ladder, or the centres of the log-σ bins.
std::vector<double> level_sigmas(const ObjectiveOptions& objective, const NoiseProcess& process);

}  // namespace scorediff
