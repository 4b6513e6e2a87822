// Time grids for the reverse-time samplers and the probability-flow ODE: steps + 1 times from t_max
// down to t_end, spaced uniformly in t (score_sde), in σ^(1/ρ) (Karras et al. 2022, eq. 5) or in
// log σ, i.e. uniformly in log-SNR = −2 log σ (DPM-Solver, Lu et al. 2022).
#pragma once
#include <string>
#include <vector>

#include "scorediff/process/noise_process.hpp"

namespace scorediff {

enum class GridKind { Uniform, Karras, LogSnr };
GridKind parse_grid(const std::string& name);  // uniform, karras, log-snr

// t_end = 0: the process' t_min; t_start = 0: its t_max (a later start edits given points, SDEdit). Strictly
// decreasing; front() == t_start, back() == t_end.
std::vector<double> time_grid(const NoiseProcess& process, int64_t steps, GridKind kind, double rho = 7.0,
                              double t_end = 0.0, double t_start = 0.0);

}  // namespace scorediff
