// Post-hoc EMA (Karras et al. 2024, "Analyzing and improving the training dynamics of diffusion models",
// §3 and appendix C.2). During training a few power-function EMAs are kept, θ̂_γ(t) = β θ̂_γ(t−1) + (1 − β) θ(t)
// with β = (1 − 1/t)^(γ+1), t the number of steps taken: θ̂_γ(t) averages θ(τ) over τ ≤ t with weight ∝ τ^γ.
// Their snapshots, stored every so many steps, span the averaging profiles p_(t,γ)(τ) = (γ+1) τ^γ / t^(γ+1) on
// [0, t]; after training, the EMA of any other length is approximated by the snapshots' weighted sum whose
// profile is nearest to the wanted one in L2 (a least-squares problem with closed-form inner products). The
// length is given as σ_rel, the profile's standard deviation relative to t (EDM2: 0.05 and 0.10 are tracked).
#pragma once
#include <cstdint>
#include <vector>

namespace scorediff {

// σ_rel of the power-function profile with exponent γ ≥ 0: √(γ+1) / ((γ+2) √(γ+3)) (EDM2, eq. 3). Decreasing
// in γ, from 1/(2√3) ≈ 0.289 at γ = 0 towards 0.
double power_ema_sigma_rel(double gamma);
// The γ ≥ 0 with that σ_rel; fails with one line for σ_rel outside (0, 1/(2√3)] or not finite.
double power_ema_gamma(double sigma_rel);
// The decay of step t ≥ 1 (t steps taken, this one included): (1 − 1/t)^(γ+1); 0 at t = 1.
double power_ema_decay(double gamma, int64_t t);

struct PowerEmaSnapshot {
  int64_t step = 0;  // t: steps taken when it was stored (≥ 1)
  double gamma = 0;
};

// The weights x of the snapshots minimising ‖Σ x_i p_i − p_target‖₂ for the target profile (step, gamma),
// by least squares on the snapshots' Gram matrix (rank-deficient sets allowed: the minimum-norm solution).
std::vector<double> posthoc_ema_coefficients(const std::vector<PowerEmaSnapshot>& snapshots, int64_t step,
                                             double gamma);
// ∫ p_a p_b dτ, the profiles' L2 inner product.
double power_profile_dot(const PowerEmaSnapshot& a, const PowerEmaSnapshot& b);

}  // namespace scorediff
