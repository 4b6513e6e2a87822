// Consistency distillation and consistency training (Song, Dhariwal, Chen & Sutskever 2023, "Consistency
// models", Algorithms 2 and 3).
//
// N noise levels σ_min = σ_1 < … < σ_N = σ_max on EDM's ρ = 7 grid; each sample draws a pair of adjacent
// levels n ~ U{1, …, N − 1}, noises x₀ to x_{n+1} = x₀ + σ_{n+1} z and moves it one step down to σ_n:
//   distillation: one Heun step of the teacher's probability-flow ODE dx/dσ = (x − D(x, σ))/σ;
//   training (no teacher): x_n = x₀ + σ_n z, the same z (the one-sample estimate of the score).
// The per-sample loss is d(f_θ(x_{n+1}, σ_{n+1}), f_θ⁻(x_n, σ_n)) with θ⁻ ← μ θ⁻ + (1 − μ) θ (the target
// network, gradients stopped) and d the squared distance or the pseudo-Huber one. f is the student's
// Tweedie mean x + σ² s(x, σ), which the `consistency` parametrisation (models/score_model.hpp) makes equal to
// x at σ_min. Processes with m(t) = 1 (edm, ve), so that x̂ = x and σ(t) = s(t).
//
// The target network is state: Trainer saves it in checkpoints (consistency_target.*) so --resume continues
// bit for bit. It is updated at the start of each loss evaluation from the student's current weights, which
// equals Song et al.'s update after each optimiser step.
#pragma once
#include <memory>
#include <vector>

#include "scorediff/io/safetensors.hpp"
#include "scorediff/objectives/objective.hpp"

namespace scorediff {

// σ_1 < … < σ_N: EDM's grid (Karras et al. 2022, eq. 5) with ρ = 7, ascending.
std::vector<double> consistency_levels(double sigma_min, double sigma_max, int64_t n);

// The target network θ⁻: objectives see no models, so the run that owns the student supplies it
// (pipeline/few_step.hpp: ema_target, a copy of the student's parameters and buffers).
class ConsistencyTarget {
 public:
  virtual ~ConsistencyTarget() = default;
  virtual ScoreFn score() = 0;               // the target's score; evaluated without gradients
  virtual void update(double decay) = 0;     // θ⁻ ← μ θ⁻ + (1 − μ) θ from the student's current weights
  virtual void save(TensorFile& file) const = 0;                                  // consistency_target.<name>
  virtual void restore(const TensorFile& file, const std::string& origin) = 0;
};

class ConsistencyObjective {
 public:
  // teacher: the teacher's score (distillation); empty for consistency training.
  ConsistencyObjective(const ObjectiveOptions& options, ScoreFn teacher, std::shared_ptr<ConsistencyTarget> target,
                       std::shared_ptr<const NoiseProcess> process);
  LossTerms operator()(const ScoreFn& student, const NoiseProcess& process, const torch::Tensor& x0,
                       at::Generator& gen) const;

  // The teacher's Heun step from σ_from to σ_to (per sample [B]) on x [B, ...].
  torch::Tensor teacher_step(const torch::Tensor& x, const torch::Tensor& sigma_from, const torch::Tensor& sigma_to) const;
  const std::vector<double>& levels() const { return state_->levels; }
  bool distilling() const { return static_cast<bool>(state_->teacher); }

  void save(TensorFile& file) const;  // the target network's
  void restore(const TensorFile& file, const std::string& origin);

 private:
  struct State {
    ObjectiveOptions options;
    ScoreFn teacher;
    std::shared_ptr<ConsistencyTarget> target;
    std::shared_ptr<const NoiseProcess> process;
    std::vector<double> levels;
  };
  std::shared_ptr<State> state_;  // shared by the copies std::function makes
};

}  // namespace scorediff
