// Few-step models made from a trained one (docs/few-step.md): consistency distillation and training (Song et al.
// 2023), and rectified flow's reflow (Liu et al. 2023). The runs are ordinary training runs (train_run: logs,
// checkpoints, bit-for-bit resume) with their own objective, training rows and initial weights.
#pragma once
#include <filesystem>
#include <vector>

#include "scorediff/objectives/consistency.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff {

// The settings that make a configuration a consistency model: model.param, objective.name = consistency,
// objective.weighting = uniform, sample.sampler = consistency, sample.nfe = 2, sample.rho = 15. Apply before the
// user's own.
const std::vector<std::string>& consistency_sets();
// model.sigma_min = 0 means the process' sigma_min, where f(x, sigma) = x holds: filled in here (distill_run does it).
void fill_consistency_boundary(Config& config);
// The settings of a reflow run; with one_step, training at t_max only and sampling with one Euler step
// (Liu et al. 2023's distillation of the k-rectified flow).
std::vector<std::string> reflow_sets(const NoiseProcess& process, bool one_step);

// The consistency objective's target network: `target` (a model of the student's architecture) starts as a copy
// of the student's parameters and buffers (the MLP's random Fourier frequencies are buffers: a target with its own
// would be another function of the same weights) and follows the student's parameters as an EMA.
std::shared_ptr<ConsistencyTarget> ema_target(ScoreModel student, ScoreModel target,
                                              std::shared_ptr<const NoiseProcess> process);

// Consistency distillation of `teacher` (a model of the same architecture on config's edm or ve process, its weights
// the student's start), or consistency training when teacher is null. Fills model.sigma_min from the process when 0.
TrainedRun distill_run(Config config, ScoreModel teacher, const std::filesystem::path& out_dir,
                       TrainRunOptions options = {});

// (x₀, ε) couplings of a flow model: z from the prior at t_max, x₀ its end under the ODE (ode-rk45 at
// config.sample's tolerances), ε with m x₀ + s ε = z at t_max, so the straight line from ε to x₀ passes through z.
struct ReflowPairs {
  torch::Tensor x0, eps;  // [n, D] each, on the model's device
};
ReflowPairs reflow_pairs(const Config& config, ScoreModel flow, std::shared_ptr<const NoiseProcess> process, int64_t dim,
                         int64_t n, bool quiet);
// Saved as out_dir/pairs.safetensors (x0, eps); loaded back, checked for dimension `dim`.
void save_pairs(const ReflowPairs& pairs, const std::filesystem::path& path);
ReflowPairs load_pairs(const std::filesystem::path& path, int64_t dim);

// A flow trained on the pairs (objective cfm-coupled), starting from `flow`'s weights when given (Liu et al. 2023).
TrainedRun reflow_run(const Config& config, ScoreModel flow, const ReflowPairs& pairs, const std::filesystem::path& out_dir,
                      TrainRunOptions options = {});

}  // namespace scorediff
