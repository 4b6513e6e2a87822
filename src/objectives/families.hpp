// The objective factories, registered by objectives/objective.cpp.
#pragma once
#include "scorediff/objectives/objective.hpp"

namespace scorediff {

Objective make_dsm(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_esm(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_ism(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_ssm(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_ssm_vr(const ObjectiveOptions& options, const ScoreFn* reference);
Objective make_sure(const ObjectiveOptions& options, const ScoreFn* reference);

}  // namespace scorediff
