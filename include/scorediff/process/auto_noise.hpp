// Noise levels and the annealed-Langevin step derived from the data (seed 001 §9.2; Song & Ermon 2020,
// "Improved Techniques for Training Score-Based Generative Models", techniques 1, 2 and 4), for
// `process.sigma_max`, `process.sigma_min`, `process.levels` and `sample.eps` set to "auto".
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace scorediff {

// The points the distances are measured on: at most this many rows of the training set.
inline constexpr int64_t kAutoNoisePoints = 2000;

// Largest Euclidean distance between two rows of x [N, D] (Song & Ermon 2020, technique 1: σ_max).
double largest_pairwise_distance(const torch::Tensor& x);
// Median over the rows of `queries` of the distance to their nearest other row of `points` (a row at
// distance 0 is the query itself, or a duplicate, and is skipped). Seed 001 §9.2: σ ≈ half of it.
double median_nearest_neighbour(const torch::Tensor& queries, const torch::Tensor& points);

// The ratio γ = σ_{i−1}/σ_i of a geometric ladder in D dimensions such that a sample of N(0, σ_{i−1}² I)
// falls in the shell ‖x‖ ∈ σ_i·[√D − 3/√2, √D + 3/√2] with probability 1/2 (Song & Ermon 2020,
// technique 2), with the norm's exact (chi) distribution instead of their Gaussian approximation,
// so that it holds in 2-D as well.
double level_ratio(int64_t dim);
// The probability above, for a given γ (exposed for the tests).
double shell_probability(int64_t dim, double gamma);
// Levels of a geometric ladder from sigma_max down to sigma_min whose ratio is at most gamma.
int64_t ladder_levels(double sigma_max, double sigma_min, double gamma);

// The annealed-Langevin step ε (step at level i: ε σ_i²/σ_L²) that brings the variance after T steps
// closest to the level's (Song & Ermon 2020, technique 4): minimises
// |(1 − ε/σ_L²)^{2T} (γ² − 2ε/(σ_L² − σ_L²(1 − ε/σ_L²)²)) + 2ε/(σ_L² − σ_L²(1 − ε/σ_L²)²) − 1|.
double langevin_step(double gamma, double sigma_min, int64_t steps_per_level);
double langevin_step_criterion(double eps, double gamma, double sigma_min, int64_t steps_per_level);

}  // namespace scorediff
