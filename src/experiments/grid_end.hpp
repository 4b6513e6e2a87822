// The exact-score sweep of where a 10-NFE log-SNR grid should end, the last section of `experiment few-step`.
// Internal to src/experiments.
#pragma once
#include <nlohmann/json.hpp>

#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"

namespace scorediff {

// DPM-Solver++(3M) and UniPC at 10 NFE with the 8-Gaussians mixture's exact score under VP, VE and EDM, for each
// last σ of the grid: adds a section and a figure (grid_end.png) to `report`, one check per solver and process
// (SWD within 1.3x the floor at the selected end) and metrics["grid_end"].
void few_step_grid_end(const ExperimentContext& ctx, Report& report, Checks& checks, nlohmann::json& metrics);

}  // namespace scorediff
