// The exact score of a Gaussian mixture under a noise process, as a ScoreFn: drives samplers and
// likelihoods in tests and experiments without training anything.
#pragma once
#include <memory>

#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// Computed in float64, returned in x's dtype.
ScoreFn mixture_score_fn(std::shared_ptr<const GaussianMixture> mixture, std::shared_ptr<const NoiseProcess> process);

}  // namespace scorediff
