// Trainer: one optimisation step at a time (objective -> backward -> clip -> Adam -> EMA), and the
// complete state a checkpoint needs to continue bit for bit.
#pragma once
#include <ATen/core/Generator.h>

#include <memory>

#include "scorediff/core/schema.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/train/adam.hpp"

namespace scorediff {

struct TrainOptions {
  int64_t steps = 5000;
  int64_t batch = 256;
  double lr = 1e-3;
  int64_t warmup = 100;     // linear learning-rate warm-up steps
  std::string schedule = "cosine";  // after warm-up: constant, or cosine decay to lr_final_ratio·lr
  double lr_final_ratio = 0.01;
  double grad_clip = 1.0;   // max global gradient norm; 0 = no clipping
  double ema_decay = 0.999;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8, weight_decay = 0.0;
  int64_t log_every = 100;
  int64_t ckpt_every = 0;   // 0 = only the final checkpoint
  int64_t sample_every = 0; // image datasets: a grid of EMA samples every this many steps (0 = none)
  // Class-conditional models: the share of each batch whose labels are replaced by the null class, so that one
  // network learns p(x|y) and p(x) (classifier-free guidance, Ho & Salimans 2022).
  double label_dropout = 0.0;
  // Post-hoc EMA (train/posthoc_ema.hpp): the σ_rel of the power-function EMAs kept alongside ema_decay's
  // (empty: none), and the steps between their snapshots in posthoc/step-N.safetensors (and one at the end).
  std::vector<double> posthoc_sigma_rels;
  int64_t posthoc_every = 1000;
};
void bind(Schema& schema, TrainOptions& options);
// The learning rate of step `step` (0-based): linear warm-up, then constant or cosine decay.
double learning_rate(const TrainOptions& options, int64_t step);

struct StepStats {
  double loss = 0;                  // mean per-sample loss of the batch
  double grad_norm = 0;
  double lr = 0;
  bool skipped = false;             // non-finite loss or gradient: the update was not applied
  torch::Tensor level_loss_sum;     // [L] float64, summed per-sample losses per level
  torch::Tensor level_count;        // [L] int64
  bool stop = false;                // data parallel: some rank was asked to stop (every rank stops after this step)
};

class ProcessGroup;

class Trainer {
 public:
  // data [N, D] is the training set, on `device`; batches are drawn with replacement from it.
  Trainer(ScoreModel model, std::shared_ptr<const NoiseProcess> process, Objective objective, int64_t levels,
          torch::Tensor data, const TrainOptions& options, uint64_t seed);

  StepStats step();
  // Data parallel: every rank draws the same global batch and noise (the generator is seeded alike), computes
  // the network and the loss on its own rows (shard_rows) only, and the gradients are summed over the
  // group, so N ranks take the step one process would. The EMA is kept on rank 0 only.
  void set_group(std::shared_ptr<ProcessGroup> group) { group_ = std::move(group); }
  // Class-conditional models: labels [N] int64 in [0, K) of the training rows, K = the model's classes. Each
  // batch carries its rows' labels, a train.label_dropout share of them replaced by the null class K (drawn
  // after the batch's rows, before the objective's draws).
  void set_labels(torch::Tensor labels);
  int64_t steps_done() const { return step_; }
  ScoreModel& model() { return model_; }

  // Every tensor of the training state, named for a checkpoint: model.*, ema.*, optim.*, rng.
  TensorFile state() const;
  void restore(const TensorFile& file);
  // The power-function EMAs of train.posthoc_sigma_rels, named posthoc.<k>.<parameter> (part of state()).
  TensorFile posthoc_state() const;
  const std::vector<Ema>& posthoc() const { return posthoc_; }
  // Writes the EMA weights into a model built with the same options.
  void copy_ema_to(ScoreModel& target) const;

 private:
  ScoreModel model_;
  std::shared_ptr<const NoiseProcess> process_;
  Objective objective_;
  int64_t levels_;
  torch::Tensor data_;
  torch::Tensor labels_;
  TrainOptions options_;
  std::vector<std::string> param_names_;  // declared before params_: filled by its initialiser
  std::vector<torch::Tensor> params_;
  Adam adam_;
  Ema ema_;
  std::vector<Ema> posthoc_;
  at::Generator gen_;
  int64_t step_ = 0;
  int64_t consecutive_skips_ = 0;
  std::shared_ptr<ProcessGroup> group_;
};

// Copies tensors named prefix + name into a module's parameters and buffers, failing with one line
// that names any missing, unexpected or mis-shaped tensor.
void load_module(torch::nn::Module& module, const TensorFile& file, const std::string& prefix, const std::string& origin);

}  // namespace scorediff
