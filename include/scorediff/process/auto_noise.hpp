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

// The data's noise floor (seed 001 §4.3: "σ_min ≈ noise floor"): the standard deviation of its thinnest
// local direction. For each query row, the smallest principal std of its k nearest rows of `points`, its
// median over the queries, for k = 8, 16, … 1024 (at least 4·D, at most N/4). Too few neighbours see
// only a slice of the thickness, too many see the data's curvature; between the two the figure levels
// off, and the floor is read where it grows least (the smallest log-slope between two successive k). It
// is within 10 % of the noise on the noisy circle at 2 000 to 20 000 points and on two moons and the
// Swiss roll at 5 000 (tests/test_auto_noise.cpp). `found` is false where fewer than three k fit (high D, few points) or the
// figure is 0 to rounding (points on an exact manifold).
struct NoiseFloor {
  double std = 0;
  int64_t k = 0;  // the neighbourhood size it was read at
  bool found = false;
};
NoiseFloor noise_floor(const torch::Tensor& queries, const torch::Tensor& points);

// The ratio γ = σ_{i−1}/σ_i of a geometric ladder in D dimensions such that a sample of N(0, σ_{i−1}² I)
// falls in the shell ‖x‖ ∈ σ_i·[√D − 3/√2, √D + 3/√2] with probability 1/2 (Song & Ermon 2020,
// technique 2), with the norm's exact (chi) distribution instead of their Gaussian approximation,
// so that it holds in 2-D as well.
double level_ratio(int64_t dim);
// The probability above, for a given γ (exposed for the tests).
double shell_probability(int64_t dim, double gamma);
// Levels of a geometric ladder from sigma_max down to sigma_min whose ratio is at most gamma.
int64_t ladder_levels(double sigma_max, double sigma_min, double gamma);

// The annealed-Langevin step and the level count, from how the sampler treats Gaussian data. Annealed
// Langevin (step α_i = ε σ_i²/σ_L² at level i, T steps per level) run with the exact score on 1-D data
// N(0, τ²) keeps every iterate Gaussian, so the variance it ends with has a closed form. Song & Ermon 2020
// (technique 4) ask for the right variance after one level, from exactly γ² times the level's own, for
// τ = 0 (the data a point). Here the whole ladder is run from the prior N(0, σ_1²), errors carried from
// level to level, and for every scale the data has: τ = 0 and τ from σ_L up to the data's largest
// principal standard deviation. In 2-D their step moves each chain too little where τ ~ σ_i (docs/sde.md).
//
// The variance after `steps` Langevin steps of size α on N(0, v) (score −x/v), from variance `start`:
// f^T·start + 2α(1 − f^T)/(1 − f), f = (1 − α/v)².
double langevin_variance(double start, double v, double alpha, int64_t steps);
// The ladder's relative error on N(0, τ²): last level's variance / (τ² + σ_L²) − 1.
double annealed_variance_error(const std::vector<double>& sigmas, double eps, int64_t steps_per_level, double tau);
// The scales checked: τ = 0 and kAutoScales log-spaced from σ_L to max(σ_L, tau_max).
inline constexpr int kAutoScales = 60;
struct LangevinStep {
  double eps = 0;          // the step ε
  double worst_error = 0;  // its largest |annealed_variance_error| over the scales
  double worst_tau = 0;    // where
};
// The ε (on a log grid of ε/σ_L² from 1e-6 to 2) with the smallest worst error over the scales.
LangevinStep langevin_step(const std::vector<double>& sigmas, int64_t steps_per_level, double tau_max);
// Largest standard deviation of x [N, D] along any direction (√ of its covariance's largest eigenvalue).
double largest_principal_std(const torch::Tensor& x);

// Levels = auto: the fewest geometric levels from sigma_max to sigma_min, at least `at_least` (the
// shell rule's count), whose best step keeps every scale's variance within kAutoVarianceTolerance;
// kAutoMaxLevels at most (then `reached` is false).
inline constexpr double kAutoVarianceTolerance = 0.05;
inline constexpr int64_t kAutoMaxLevels = 1000;
struct AutoLevels {
  int64_t levels = 0;
  LangevinStep step;
  bool reached = true;
  double at_least_error = 0;  // the best step's worst error with `at_least` levels, for the record
};
AutoLevels variance_levels(double sigma_max, double sigma_min, int64_t at_least, int64_t steps_per_level, double tau_max);

}  // namespace scorediff
