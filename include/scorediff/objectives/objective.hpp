// Objectives return per-sample losses so that weighting, per-level logging and importance sampling
// stay outside them (DESIGN §2). Every objective works on noised data x̃ at a noise level σ drawn per
// sample, so a noise-conditional model learns ∇ log p_σ for every σ it sees.
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
  // log-uniform: log σ uniform in [σ_min, σ_max] of the process; time: t ~ U(t_min, t_max) (continuous
  // DSM, seed 003); importance: t ∝ g²/s², the proposal that makes likelihood weighting low-variance
  // (Song et al. 2021b), the loss divided by the proposal's density; log-normal: ln σ ~ N(p_mean, p_std²)
  // (EDM), clamped to the process' range.
  std::string sigma_sampling = "log-uniform";
  // λ: uniform 1, sigma2 s² (std², the default), snr 1/(1+s²), ddpm 1−ᾱ = s²/(1+s²), likelihood g(t)²,
  // edm s²(σ² + σ_data²)/σ_data² (unit weight on the denoiser network's output), flow (s(m + s)/m)² (the
  // flow-matching velocity loss; σ² for the flow process).
  std::string weighting = "sigma2";
  double sigma = 0.5;
  std::string kernel = "gaussian";        // dsm: gaussian, laplace, student-t
  double laplace_b = 0.70710678118654752; // dsm laplace: b = laplace_b·σ (1/√2: the kernel's variance is σ²)
  double nu = 4.0;                        // dsm student-t: degrees of freedom ν
  int64_t projections = 1;                // ssm, ssm-vr, sure with hutchinson: random vectors per sample
  std::string projection = "rademacher";  // gaussian or rademacher
  std::string divergence = "exact";       // sure, gsm: exact (D backward passes) or hutchinson
  std::string op = "gradient";            // gsm (objective.operator): gradient (ISM) or tweedie (𝓛 = x̃ + σ²∇)
  double p_mean = -1.2;                   // log-normal sampling (EDM)
  double p_std = 1.2;
  double sigma_data = 0.5;                // edm weighting
  // Contrastive divergence (objective.name = cd, objectives/contrastive.hpp): negatives are SGLD chains
  // x ← x − ε∇U(x) + η z from a replay buffer, a fraction reinitialised from uniform noise on each draw.
  int64_t sgld_steps = 40;       // Langevin steps per training step
  double sgld_step = 0.01;       // ε
  double sgld_noise = 0.0;       // η; with sgld_noise_auto, √(2ε) (exact Langevin)
  bool sgld_noise_auto = true;
  int64_t buffer = 10000;        // replay-buffer chains
  double reinit = 0.05;          // fraction of drawn chains restarted from noise
  double energy_reg = 0.1;       // α of the regulariser α(U(x⁺)² + U(x⁻)²)
  int64_t global_moves = 0;      // Metropolis–Hastings proposals per chain from the restart distribution
  // Consistency distillation and training (objective.name = consistency, objectives/consistency.hpp; run by
  // `scorediff distill`): N noise levels on EDM's ρ = 7 grid from σ_min to σ_max, adjacent pairs drawn uniformly;
  // the target network an EMA of the student with decay μ; the distance between the two outputs.
  int64_t consistency_steps = 18;  // N (Song et al. 2023 distil CIFAR-10 with N = 18 and Heun)
  double target_decay = 0.95;      // μ (Song et al. 2023, CD); 0 = the student itself, gradients stopped
  std::string metric = "l2";       // l2: |Δ|², pseudo-huber: √(|Δ|² + c²) − c, c = 0.00054 √D (Song & Dhariwal 2023)
};

// score is differentiable in the network's parameters (and in x); x0 [B, D] is a batch of clean data.
using Objective = std::function<LossTerms(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0,
                                          at::Generator& gen)>;
// reference: the true score ∇ log p_t of the data under the process, when one is known (mixtures); ESM
// needs it, the others ignore it.
using ObjectiveFactory = std::function<Objective(const ObjectiveOptions&, const ScoreFn* reference)>;

void register_builtins(Registry<ObjectiveFactory>& registry);
const Registry<ObjectiveFactory>& objectives();
void bind(Schema& schema, ObjectiveOptions& options);
void validate(const ObjectiveOptions& options, const NoiseProcess& process);
Objective make_objective(const ObjectiveOptions& options, const ScoreFn* reference = nullptr);

// Noise levels and their per-level bins for one batch, per objective.sigma_sampling. σ [B] float64, level [B].
// importance (optional): for sigma_sampling = importance, 1/(p(t)(t_max − t_min)) per sample, the factor
// that makes the mean loss equal to the one under uniform t; ones otherwise.
void sample_sigmas(const ObjectiveOptions& options, const NoiseProcess& process, int64_t batch, at::Generator& gen,
                   torch::Tensor& sigma, torch::Tensor& level, torch::Tensor* importance = nullptr);
// Number of per-level bins the objective logs for this process.
int64_t level_count(const ObjectiveOptions& options, const NoiseProcess& process);
// λ(σ) per sample (seed 001 §5), σ [B].
torch::Tensor loss_weight(const std::string& weighting, const torch::Tensor& sigma);
// λ per sample for any weighting, including those that need the process (likelihood: g(t)²) or the
// data scale (edm). t, std [B].
torch::Tensor loss_weight(const ObjectiveOptions& options, const NoiseProcess& process, const torch::Tensor& t,
                          const torch::Tensor& std);

// The loss under a learned uncertainty u per sample (Kendall et al. 2018; EDM2, Karras et al. 2024, §5):
// L/e^u + D u, D the elements per sample, as if each of the D elements carried L/D with the log-variance u.
// For fixed L its minimum over u lies at u = ln(L/D). loss, log_variance [B].
torch::Tensor uncertainty_weighted(const torch::Tensor& loss, const torch::Tensor& log_variance, int64_t elements);

// One batch noised by the process' Gaussian kernel: x̃ = m x₀ + s ε at per-sample times t.
struct NoisedBatch {
  torch::Tensor sigma, level, t;  // [B]
  torch::Tensor weight;           // [B] λ times the importance factor, in x0's dtype
  torch::Tensor std;              // [B] s(t) in x0's dtype
  torch::Tensor eps, x_noisy;     // [B, D]
};
NoisedBatch noise_batch(const ObjectiveOptions& options, const NoiseProcess& process, const torch::Tensor& x0,
                        at::Generator& gen);

// DSM targets ∇ₓ̃ log q(x̃ | x) of each kernel, from n = x̃ − x (seed 001 §7):
torch::Tensor dsm_target(const torch::Tensor& x_noisy, const torch::Tensor& x0, const torch::Tensor& sigma);  // Gaussian
torch::Tensor laplace_target(const torch::Tensor& n, const torch::Tensor& b);                  // −sign(n)/b
torch::Tensor student_t_target(const torch::Tensor& n, double nu, const torch::Tensor& sigma);  // −(ν+1)n/(νσ²+n²)

}  // namespace scorediff
