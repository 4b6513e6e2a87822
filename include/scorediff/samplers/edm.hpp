// EDM's second-order Heun sampler with churn (Karras et al. 2022, Alg. 2), in x̂ = x/m and σ.
#pragma once
#include <ATen/core/Generator.h>

#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

struct EdmOptions : GridOptions {
  double s_churn = 0.0;                // total churn
  double s_tmin = 0.0, s_tmax = 1e30;  // σ range where churn applies
  double s_noise = 1.0;                // noise inflation
};
SampleResult sample_edm(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                        const EdmOptions& options, at::Generator& gen, const StepCallback& callback = {});

}  // namespace scorediff
