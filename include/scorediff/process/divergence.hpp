// Derivatives of a vector field s(x) (a score) by autograd: the Jacobian trace (the divergence) exactly
// or by Hutchinson's estimator, projections vᵀ(∇s)v, and the full Jacobian. `s` must have been
// computed from `x` with autograd on; create_graph keeps the result differentiable (for training).
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace scorediff {

// tr ∇ₓs per sample, x, s [B, D]: D backward passes (seed 001 §1.1: why ISM is expensive).
torch::Tensor jacobian_trace(const torch::Tensor& s, const torch::Tensor& x, bool create_graph);

// vᵀ(∇ₓs)v per sample for v [B, D]: one backward pass.
torch::Tensor projected_jacobian(const torch::Tensor& s, const torch::Tensor& x, const torch::Tensor& v,
                                 bool create_graph);

// ∇ₓs per sample: [B, D, D] with J[b, i, j] = ∂s_i/∂x_j; D backward passes.
torch::Tensor jacobian(const torch::Tensor& s, const torch::Tensor& x, bool create_graph);

// Random projection vectors [B, D]: "gaussian" N(0, I) or "rademacher" ±1, both with E[vvᵀ] = I.
torch::Tensor projection_vectors(const std::string& kind, at::IntArrayRef shape, at::Generator& gen,
                                 const torch::TensorOptions& options);

}  // namespace scorediff
