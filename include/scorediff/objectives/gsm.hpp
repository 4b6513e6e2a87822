// Generalized score matching (seed 002, "Generalized Score Matching"; Lyu 2009): for a linear operator 𝓛,
// match the generalized score 𝓛p/p by minimising E_p[½‖g‖² − (𝓛†g)(x)], where 𝓛† is 𝓛's adjoint.
//
// scorediff's operators are first order, 𝓛p = a p + c ∇p with a field a(x) and a scalar c per sample;
// then 𝓛p/p = a + c ∇log p, and integration by parts gives 𝓛†g = a·g − c ∇·g. With g = a + c s for a
// model score s, the objective is written once for every such operator:
//   ½‖g‖² − a·g + c ∇·g,   ∇·g = ∇·a + c tr ∇s.
//   gradient: 𝓛 = ∇           (a = 0,  c = 1):  ½‖s‖² + tr ∇s, implicit score matching;
//   tweedie:  𝓛 = x̃ + σ²∇     (a = x̃, c = σ²): g = x̃ + σ² s is the Tweedie denoiser, and the objective
//             is ½ SURE up to a constant: the denoiser loss ½‖g − x‖² up to −½‖x‖² in expectation.
// Expanding, the value is c² (½‖s‖² + tr ∇s) + c ∇·a − ½‖a‖²: every such operator is ISM scaled by c²
// plus a term without s, so the objective divides by c² before the loss weight.
#pragma once
#include <torch/types.h>

#include <string>

namespace scorediff {

struct FirstOrderOperator {
  torch::Tensor a;      // [B, D] the field multiplying p (zeros for the gradient)
  torch::Tensor div_a;  // [B] ∇·a
  torch::Tensor c;      // [B] the factor of ∇p
};

// The operator `name` (gradient or tweedie) at the noised points x_noisy [B, D] with noise std [B].
FirstOrderOperator gsm_operator(const std::string& name, const torch::Tensor& x_noisy, const torch::Tensor& std);

// Generalized score g = a + c s of a model score s [B, D].
torch::Tensor generalized_score(const FirstOrderOperator& op, const torch::Tensor& score);

// ½‖g‖² − (𝓛†g) per sample for the model score s [B, D] and its Jacobian trace tr ∇s [B].
torch::Tensor gsm_value(const FirstOrderOperator& op, const torch::Tensor& score, const torch::Tensor& score_trace);

}  // namespace scorediff
