// The velocity MLP that the flow and reflow tests train on 2-D rows: 128 wide, 3 deep, 3 000 steps of batch 256 at
// lr 2e-3 (initialisation seed 6, training seed 7), EMA weights returned in eval mode.
#pragma once
#include "scorediff/core/rng.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/train/trainer.hpp"

namespace scorediff {

// The rectified-flow process (t in [0, 1], x_t = (1 - t) x_0 + t ε) that both tests train on.
inline std::shared_ptr<const NoiseProcess> flow_process() {
  ProcessOptions o;
  o.name = "flow";
  return make_process(o);
}

// `rows` are the training rows (a coupled objective's rows carry the noise after the data); `sigma_data` scales the
// velocity parametrisation.
inline ScoreModel train_velocity_mlp(const std::shared_ptr<const NoiseProcess>& process, const ObjectiveOptions& objective_options,
                                     Objective objective, const torch::Tensor& rows, double sigma_data) {
  ModelOptions mo;
  mo.width = 128;
  mo.depth = 3;
  mo.param = "velocity";
  mo.sigma_data = sigma_data;
  TrainOptions to;
  to.steps = 3000;
  to.batch = 256;
  to.lr = 2e-3;
  auto init = make_generator(6);
  Trainer trainer(make_model(mo, 2, init), process, std::move(objective), level_count(objective_options, *process), rows,
                  to, 7);
  for (int64_t i = 0; i < to.steps; ++i) trainer.step();
  ScoreModel model = make_model(mo, 2, init);
  trainer.copy_ema_to(model);
  model->eval();
  return model;
}

}  // namespace scorediff
