// Contrastive divergence for energy models (seed 002 §1, "EBMs trained by maximum likelihood").
//
// ∇θ log p_θ(x) = −∇θU(x) + E_{p_θ}[∇θU]: the second term needs samples of the model. As in Du & Mordatch
// (2019, "Implicit generation and generalization in energy-based models") they come from short-run
// Langevin chains kept in a replay buffer:
//   x ← clamp(x − ε ∇ₓU(x) + η z, box),  z ~ N(0, I),
// a fraction `reinit` of the drawn chains restarted uniformly on the box (the data's range widened by a
// tenth on each side). The per-sample loss is
//   U(x⁺) − U(x⁻) + α (U(x⁺)² + U(x⁻)²),
// x⁺ a data point noised at objective.sigma, x⁻ a chain after its steps; its gradient is the maximum-
// likelihood gradient estimated with the chains, plus a regulariser that keeps the energies near zero.
//
// Short-run chains do not cross between well-separated modes, so their mode weights are those of the
// restart distribution, not of the model, and the learned weights go wrong. `global_moves` adds
// Metropolis–Hastings moves with the restart distribution as an independence proposal (accepted with
// probability min(1, exp(U(x) − U(y))), the uniform density cancelling): exact moves between modes, useful
// where uniform proposals hit the modes (low dimension). ebm-cd measures both.
//
// The buffer is state: Trainer saves it (and the box) in checkpoints under objective.*, so --resume
// continues bit for bit. Its draws use the training generator.
#pragma once
#include <functional>
#include <memory>

#include "scorediff/io/safetensors.hpp"
#include "scorediff/objectives/objective.hpp"

namespace scorediff {

class ContrastiveDivergence {
 public:
  explicit ContrastiveDivergence(const ObjectiveOptions& options);
  // Objectives take a ScoreFn; CD needs the energy, so Trainer calls loss() instead. Calling it as an
  // ordinary objective fails with one line.
  LossTerms operator()(const ScoreFn&, const NoiseProcess&, const torch::Tensor&, at::Generator&) const;
  // The model's energy U(x, t) [B] at points x shaped like the data, differentiable in its parameters
  // and in x (Trainer builds it from an energy model; objectives do not see models).
  using ModelEnergy = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;
  LossTerms loss(const ModelEnergy& model, const NoiseProcess& process, const torch::Tensor& x0, at::Generator& gen);

  // The chains' moves on x [B, D] under an energy U(x) [B] (global moves, then SGLD steps, within the box),
  // without touching the buffer; x is replaced by the moved chains. Exposed for tests and for sampling a
  // trained energy.
  using EnergyFn = std::function<torch::Tensor(const torch::Tensor&)>;
  void move(const EnergyFn& energy, torch::Tensor& x, at::Generator& gen) const;
  // Sets the restart box [low, high] (loss() takes it from the first batch when none is set).
  void set_box(double low, double high);
  // U(x, σ) of the model at objective.sigma, differentiable in the parameters. [B]
  torch::Tensor energy(const ModelEnergy& model, const NoiseProcess& process, const torch::Tensor& x) const;

  const ObjectiveOptions& options() const { return state_->options; }
  // objective.buffer [N, D] and objective.box [2] (empty before the first step).
  void save(TensorFile& file) const;
  void restore(const TensorFile& file, const std::string& origin);
  const torch::Tensor& buffer() const { return state_->buffer; }
  double box_low() const { return state_->low; }
  double box_high() const { return state_->high; }

 private:
  struct State {
    ObjectiveOptions options;
    torch::Tensor buffer;  // [N, D] chains
    double low = 0, high = 0;
  };
  std::shared_ptr<State> state_;  // shared by the copies std::function makes
  torch::Tensor restart(int64_t rows, const torch::Tensor& like, at::Generator& gen) const;
};

Objective make_contrastive(const ObjectiveOptions& options, const ScoreFn* reference);

}  // namespace scorediff
