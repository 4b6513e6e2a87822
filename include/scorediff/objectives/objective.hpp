// Objectives return per-sample losses so that weighting, per-level logging and importance sampling
// stay outside them (DESIGN §2).
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <functional>
#include <string>

#include "scorediff/core/registry.hpp"
#include "scorediff/core/schema.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

struct LossTerms {
  torch::Tensor loss;   // [B] weighted per-sample losses; the training loss is their mean
  torch::Tensor sigma;  // [B] noise level of each sample
  torch::Tensor level;  // [B] int64 ladder level (or log-σ bin) of each sample, for per-level logs
};

struct ObjectiveOptions {
  std::string name = "dsm";
  // single: σ = objective.sigma; ladder: a uniformly chosen level of the process' ladder;
  // log-uniform: log σ uniform in [σ_min, σ_max] of the process.
  std::string sigma_sampling = "log-uniform";
  std::string weighting = "sigma2";  // λ(σ): uniform (1) or sigma2 (σ², NCSN)
  double sigma = 0.5;
};

// score is differentiable in the network's parameters; x0 [B, D] is a batch of clean data.
using Objective = std::function<LossTerms(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0,
                                          at::Generator& gen)>;
using ObjectiveFactory = std::function<Objective(const ObjectiveOptions&)>;

void register_builtins(Registry<ObjectiveFactory>& registry);
const Registry<ObjectiveFactory>& objectives();
void bind(Schema& schema, ObjectiveOptions& options);
void validate(const ObjectiveOptions& options, const NoiseProcess& process);
Objective make_objective(const ObjectiveOptions& options);

// Noise levels and their per-level bins for one batch, per objective.sigma_sampling. σ [B] float64, level [B].
void sample_sigmas(const ObjectiveOptions& options, const NoiseProcess& process, int64_t batch, at::Generator& gen,
                   torch::Tensor& sigma, torch::Tensor& level);
// Number of per-level bins the objective logs for this process.
int64_t level_count(const ObjectiveOptions& options, const NoiseProcess& process);

// Gaussian DSM target ∇ log q(x̃|x) = −(x̃ − x)/σ² (seed 001 §2.3).
torch::Tensor dsm_target(const torch::Tensor& x_noisy, const torch::Tensor& x0, const torch::Tensor& sigma);

}  // namespace scorediff
