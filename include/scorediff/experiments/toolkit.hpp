// Shared pieces of the comparison experiments: steps/s of a configuration, training for a wall-time
// budget, sampling with a run's own [sample] settings, and the Fisher divergence to a known score.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/samplers/langevin.hpp"

namespace scorediff {

// Training steps per second of `config` (model, objective, batch) in this process with
// config.run.threads threads: after two warm-up steps, as many steps as fill about `seconds` (2 to 200).
double measure_steps_per_second(Config config, double seconds = 0.5);

struct Sampled {
  SampleResult result;   // samples on the CPU
  SampleMetrics metrics;
  double seconds = 0;
};
// Samples config.sample.n points from `model` with the configured sampler and measures them against
// fresh data (`reference_sets` of them, SWD on `projections` directions: evaluate_samples). `stream` names
// the random stream, so that runs compared side by side use the same draws.
Sampled sample_and_measure(const Config& config, const Prepared& prepared, const ScoreModel& model, bool quiet,
                           const std::string& stream = "sample", int reference_sets = kReferenceSets,
                           int64_t projections = 1000);

struct Fisher {
  double divergence = 0;  // E‖s_model − s_true‖² over x_t = m(t)(x + σε), x fresh data, σ(t) = sigma
  double scale = 0;       // E‖s_true‖² on the same points: divergence/scale is the relative error
};
Fisher fisher_divergence(const ScoreFn& model, const ScoreFn& truth, const NoiseProcess& process,
                         const ToyDataset& dataset, double sigma, int64_t n, uint64_t seed);

}  // namespace scorediff
