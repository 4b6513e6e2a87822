// Denoising score matching (Vincent 2011; seed 001 §2–§7) as a named callable: make_objective("dsm")
// returns an Objective holding a DsmObjective, so that the Trainer can recognise it (std::function::target)
// and take the fused step for SiLU MLPs (train/fused_dsm.hpp), which draws the same noise.
#pragma once
#include "scorediff/objectives/objective.hpp"

namespace scorediff {

struct DsmObjective {
  ObjectiveOptions options;
  LossTerms operator()(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0,
                       at::Generator& gen) const;
};

}  // namespace scorediff
