// A training run end to end: data, process, model, objective, trainer, logs and checkpoints in a run
// directory; and loading a trained model back from a checkpoint.
#pragma once
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <vector>

#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/config.hpp"
#include "scorediff/pipeline/sampling_score.hpp"
#include "scorediff/train/data_parallel.hpp"
#include "scorediff/train/hook.hpp"

namespace scorediff {

struct TrainRunOptions {
  // {resume, quiet, stop_at} as the common case; the hook is set by name.
  TrainRunOptions(bool resume_ = false, bool quiet_ = false, int64_t stop_at_ = -1)
      : resume(resume_), quiet(quiet_), stop_at(stop_at_) {}
  bool resume = false;
  bool quiet = false;
  int64_t stop_at = -1;  // checkpoint and stop after this step, as an interrupted run would (-1: train.steps)
  // Called every hook_every steps (and after the last) with the raw and the EMA weights, both in eval
  // mode; training resumes in train mode afterwards. Experiments use it to evaluate along the run.
  int64_t hook_every = 0;
  std::function<void(int64_t step, ScoreModel& raw, ScoreModel& ema)> hook;
  // Replaces make_objective(config.objective): for objectives that need the model being trained (the
  // consistency objective's target network). Called once, after the model is built and initialised.
  std::function<Objective(ScoreModel student, const Prepared& prepared, const Config& config)> objective;
  // Called on the freshly initialised model before the trainer (and its EMA) take it: a distilled student
  // starts from its teacher's weights. A resumed run then loads the checkpoint over it.
  std::function<void(ScoreModel& model)> initialise;
  // Trains on these rows instead of the prepared training set (which sampling and evaluation still use):
  // reflow's couplings [N, 2D], each row a sample x₀ and the noise ε the teacher's ODE mapped to it. The
  // model's dimension is then model_dim.
  torch::Tensor train_rows;
  int64_t model_dim = 0;
  // Asked after every step of a one-process run: true stops it there, as Ctrl-C does (checkpoint written,
  // then Interrupted is thrown). The library's progress callback and cancellation.
  std::function<bool(const StepEvent&)> stop_request;
  // Started again by a supervisor (train --max-restarts) for the restart-th time: resumes from last.safetensors
  // if it exists, else starts afresh, keeping the restarts the supervisor logged in train.jsonl.
  int restart = 0;
  // Data parallel (world_size > 1): this process is one rank of the job. Rank 0 writes the run directory
  // (logs, checkpoints, grids) and calls the hook; the other ranks only train and write nothing.
  DistOptions dist;
};

struct TrainedRun {
  Config config;  // resolved: sigma_data filled in
  Prepared prepared;
  ScoreModel model{nullptr};      // raw weights
  ScoreModel ema_model{nullptr};  // EMA weights
  std::vector<nlohmann::json> log;  // the train.jsonl records, a resumed run's earlier ones included
  // Wall time of the optimisation steps; on resume the earlier steps count at their logged speed.
  double seconds = 0;
  int64_t parameters = 0;  // trainable parameters of the model
  int64_t steps = 0;       // optimisation steps done (fewer than train.steps when stopped early)
  double communication_seconds = 0;  // data parallel: time in the gradient all-reduce (this rank)
  std::string backend;                // data parallel: "gloo" or "nccl"
  double steps_per_second() const { return seconds > 0 ? static_cast<double>(steps) / seconds : 0.0; }
};

// Trains into out_dir: config.toml, train.jsonl, ckpt/step-N.safetensors, last.safetensors.
// With resume, continues from out_dir/last.safetensors; the loss sequence is the uninterrupted one.
TrainedRun train_run(Config config, const std::filesystem::path& out_dir, const TrainRunOptions& options = {});

// The training time train.jsonl records stand for, each window at its logged speed (steps_per_s), counting the
// windows that end at or before `up_to_step`.
double logged_seconds(const std::vector<nlohmann::json>& records,
                      int64_t up_to_step = std::numeric_limits<int64_t>::max());

int64_t parameter_count(torch::nn::Module& module);

}  // namespace scorediff
