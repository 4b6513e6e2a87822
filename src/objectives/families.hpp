// The objective factories, registered by objectives/objective.cpp.
#pragma once
#include "scorediff/objectives/objective.hpp"

namespace scorediff {

Objective make_dsm(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_cfm(const ObjectiveOptions& options, const ScoreFn* reference);
// Reflow (Liu et al. 2023): flow matching on given couplings, rows [x₀, ε] of width 2D; the objective
// `scorediff reflow` builds (objectives/flow_matching.hpp: make_coupled_cfm). Through make_objective: one line.
Objective make_coupled_cfm_placeholder(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_esm(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_ism(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_ssm(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_ssm_vr(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_sure(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_gsm(const ObjectiveOptions& options, const ScoreFn* reference);
// objective.name = consistency through make_objective: one line pointing at `scorediff distill` (the objective
// needs the student's target network, which only the distillation run builds; objectives/consistency.hpp).
Objective make_consistency_placeholder(const ObjectiveOptions& options, const ScoreFn* reference);

// tr ∇ₓ s per sample [B] for a score s computed from x (which requires grad): exactly (D backward passes) or,
// with objective.divergence = hutchinson, by E_v[vᵀ(∇s)v] over objective.projections vectors. training:
// keep the graph so the trace can be differentiated in the parameters.
torch::Tensor score_trace(const ObjectiveOptions& options, const torch::Tensor& s, const torch::Tensor& x,
                          at::Generator& gen, bool training);

}  // namespace scorediff
