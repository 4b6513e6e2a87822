// The standard figures of a run: loss curves per level, samples next to data, score fields, and
// annealed-Langevin snapshots per level.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "scorediff/plot/figure.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

// Total loss and one curve per level (labelled by σ) from train.jsonl records.
void plot_loss_curves(const std::filesystem::path& path, const std::vector<nlohmann::json>& log,
                      const std::vector<double>& level_sigmas, const std::string& title);

void plot_samples_vs_data(const std::filesystem::path& path, const torch::Tensor& data, const torch::Tensor& samples,
                          const std::string& sample_title);

// The score at noise level sigma as arrows on a grid over range; density (a function of the grid
// points) drawn behind it when given.
struct ScoreFieldSpec {
  std::string title;
  ScoreFn score;
  double sigma;
  std::function<torch::Tensor(const torch::Tensor&)> density;  // [G, 2] -> [G], optional
  torch::Tensor points;                                         // optional overlay
};
void plot_score_fields(const std::filesystem::path& path, const NoiseProcess& process, const Range& range,
                       const std::vector<ScoreFieldSpec>& fields, int grid = 21);

// Gaussian kernel density estimate of 2-D data [N, 2] (bandwidth: half of Scott's rule, so thin
// structures such as the Swiss roll stay visible), as a density function for score-field panels.
std::function<torch::Tensor(const torch::Tensor&)> kernel_density(const torch::Tensor& data);

// One panel per recorded snapshot (the state at the end of each level) plus the final samples.
void plot_snapshots(const std::filesystem::path& path, const SampleResult& result, const torch::Tensor& data);

}  // namespace scorediff
