// After training: sample with the EMA weights, measure, draw, and write samples.npy, metrics.json and
// the PNG figures into the run directory; the findings are added to `report` (the caller saves it).
#pragma once
#include <filesystem>

#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff {

struct RunSummary {
  SampleMetrics metrics;
  int64_t nfe = 0;
  double sample_seconds = 0;
};

RunSummary finish_run(TrainedRun& run, const std::filesystem::path& out_dir, bool quiet, Report& report);

// Noise-level labels for per-level plots: the ladder, or the centres of the log-σ bins.
std::vector<double> level_sigmas(const ObjectiveOptions& objective, const NoiseProcess& process);

}  // namespace scorediff
