// Multistep exponential integrators of the probability-flow ODE and of the reverse SDE in data-prediction
// form, x̂ = x/m, λ = −log σ, D the denoiser (Lu et al. 2022, "DPM-Solver++"; Zhao et al. 2023, "UniPC"):
//   ODE: x̂(λ + h) = e^{−h} x̂(λ) + ∫₀ʰ e^{u−h} D(λ + u) du
//   SDE: x̂(λ + h) = e^{−2h} x̂(λ) + ∫₀ʰ 2e^{2(u−h)} D(λ + u) du + σ' √(1 − e^{−2h}) z
// with D replaced by the polynomial through its values at earlier grid points (and, for UniPC's corrector,
// at the new point) and the integral taken exactly. Deterministic except the SDE form.
#pragma once
#include <ATen/core/Generator.h>

#include <vector>

#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

// Weights w_j with ∫₀ʰ r e^{r(u−h)} P(u) du = Σ_j w_j P(u_j) for every polynomial P of degree < nodes.size(),
// u_j = nodes[j] (distinct λ offsets from the step's start, earlier points negative); rate r = 1 (ODE) or 2 (SDE).
std::vector<double> exponential_weights(double h, const std::vector<double>& nodes, double rate = 1.0);

// DPM-Solver++(3M): orders 1, 2, then 3 from the last three denoiser values; under 15 steps the last two steps
// fall back to orders 1 and 2 (Lu et al.'s lower-order final steps). One evaluation per step.
SampleResult sample_dpm_solver_3m(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                  const GridOptions& options, const StepCallback& callback = {});

// SDE-DPM-Solver++(2M): the SDE form at order 2 (order 1 on the first step), one evaluation per step.
SampleResult sample_dpm_solver_2m_sde(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                                      const GridOptions& options, at::Generator& gen,
                                      const StepCallback& callback = {});

// UniPC: the predictor of DPM-Solver++(pM) (p = order), then a corrector through the same points and the
// denoiser at the predicted point; that evaluation is the next step's own, so it costs no extra evaluation
// (the last step has no corrector). With exact integrals UniPC's B(h) cancels for orders ≥ 2; here it does for
// every order.
SampleResult sample_unipc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x_init,
                          const GridOptions& options, int64_t order = 3, const StepCallback& callback = {});

}  // namespace scorediff
