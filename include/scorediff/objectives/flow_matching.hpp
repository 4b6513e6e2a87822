// Flow matching on given couplings (rectified flow's reflow, Liu et al. 2023, "Flow straight and fast").
#pragma once
#include "scorediff/objectives/objective.hpp"

namespace scorediff {

// The conditional flow-matching loss ½‖v̂ − (ε − x₀)‖² on rows [x₀, ε] of width 2D: the noise of each row is the
// given ε (the one the previous flow's ODE mapped to x₀), not a fresh draw; times by options.sigma_sampling.
// objective.name = 'cfm-coupled' stands for it in a run's configuration (`scorediff reflow` builds it).
Objective make_coupled_cfm(const ObjectiveOptions& options);

}  // namespace scorediff
