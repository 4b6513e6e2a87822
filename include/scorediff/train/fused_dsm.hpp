// The Trainer's DSM step for SiLU MLPs on the CPU without autograd (issue 7). It re-implements, per row, what
// the general path composes from tensors: noise_batch's draws (the same generator calls in the same order) and
// quantities, ScoreModelImpl::score's composition (input scaling, log σ or t conditioning, score / eps / raw
// output) and the DSM objective's loss; the network's forward and backward passes run through
// mlp_silu_dsm_gradients (kernels/mlp.hpp). The same step as the autograd path, to float rounding:
// tests/test_fused.cpp trains both side by side over processes, σ samplings, weightings and parametrisations, so
// a change to either side that the other does not follow fails there. It saves the ~60 ATen operations and
// autograd nodes around the matrix products.
#pragma once
#include <ATen/core/Generator.h>

#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/dsm.hpp"

namespace scorediff {

// The DSM objective inside `objective` when the fused step applies to it, the model and the data: Gaussian
// kernel; an MLP with SiLU whose only parameters are its layers', all trainable (score, eps or raw parametrisation);
// parameters and data float32 [N, D] on the CPU; the network's fused_training() on. nullptr otherwise.
const DsmObjective* fused_dsm_objective(ScoreModel& model, const Objective& objective, const torch::Tensor& data);

// One batch's DSM loss and gradients: draws from `gen` what the objective draws, writes the gradient of the mean
// loss into each parameter's grad (in place when it can), and returns the per-sample losses (no graph), σ and
// levels. x0 [B, D] is the clean batch; labels [B] its classes for class-conditional models (or undefined).
LossTerms fused_dsm_step(ScoreModel& model, const NoiseProcess& process, const ObjectiveOptions& options,
                         const torch::Tensor& x0, at::Generator& gen, const torch::Tensor& labels = {});

}  // namespace scorediff
