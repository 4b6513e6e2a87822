// A training run: the configuration made concrete, the trainer, and the loop with its hooks (log window,
// evaluation, sample grids, checkpoints, interrupt).
#include "scorediff/pipeline/training.hpp"

#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/jsonl.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/train/hooks/checkpointer.hpp"
#include "scorediff/train/hooks/ema_hook.hpp"
#include "scorediff/train/hooks/interrupt_hook.hpp"
#include "scorediff/train/hooks/log_window.hpp"
#include "scorediff/train/hooks/posthoc_snapshots.hpp"
#include "scorediff/train/loop.hpp"

namespace scorediff {

TrainedRun train_run(Config config, const std::filesystem::path& out_dir, const TrainRunOptions& options) {
  TrainedRun run;
  // A worker of a data-parallel job: its GPU (run.device "cuda" → cuda:local_rank) and backend. The
  // configuration the ranks compare keeps run.device as given (prepare completes the rest of it).
  DistOptions dist = options.dist;
  const std::string given_device = config.run.device;
  if (dist.active()) config.run.device = place_worker(given_device, dist);
  run.prepared = prepare(config);
  config.run.device = given_device;
  const Prepared& p = run.prepared;
  c10::Device device = p.train_data.device();
  const auto seed = static_cast<uint64_t>(config.run.seed);
  const int64_t dim = options.model_dim > 0 ? options.model_dim : p.train_data.size(1);
  const bool lead = options.dist.rank == 0;  // writes the run directory; the other ranks only train
  const bool quiet = options.quiet || !lead;
  if (!quiet)
    for (const auto& note : p.notes) fmt::print(stderr, "{}\n", note);
  const auto last_path = out_dir / "last.safetensors";
  std::error_code ec;
  std::shared_ptr<ProcessGroup> group;
  if (dist.active()) {
    require(config.train.batch >= dist.world_size, "train.batch = {} is smaller than the {} workers",
            config.train.batch, dist.world_size);
    group = std::make_shared<ProcessGroup>(dist);
  }
  // A restarted worker resumes from the last checkpoint if there is one: decided after the rendezvous, when
  // every worker of the failed start has ended, so all ranks see the same file.
  const bool resume = options.restart > 0 ? std::filesystem::exists(last_path, ec) : options.resume;
  std::optional<TensorFile> resume_state;
  if (resume) {
    if (!std::filesystem::exists(last_path, ec)) fail("cannot resume: '{}' not found", last_path.string());
    resume_state = read_safetensors(last_path);
    Config stored = checkpoint_config(*resume_state, last_path);
    check_resume_compatible(stored, config, last_path);
    config.model.sigma_data = stored.model.sigma_data;
  }
  if (lead) ensure_output_dir(out_dir / "ckpt");
  // A fresh run's post-hoc snapshots must not mix with an earlier run's left in the same folder.
  if (lead && !resume) std::filesystem::remove_all(out_dir / "posthoc");

  at::Generator init_gen = make_generator(derive_seed(seed, "init"));
  ScoreModel model = make_model(config.model, dim, init_gen);
  model->to(device);
  if (options.initialise) options.initialise(model);
  Objective objective = options.objective ? options.objective(model, p, config)
                                          : make_objective(config.objective, p.reference ? &p.reference : nullptr);
  const int64_t levels = level_count(config.objective, *p.process);
  Trainer trainer(model, p.process, objective, levels,
                  options.train_rows.defined() ? options.train_rows.to(device) : p.train_data, config.train, seed);
  if (config.model.classes > 0) {
    require(p.train_labels.defined(), "model.classes = {} needs labelled data; dataset '{}' has no labels",
            config.model.classes, config.data.name);
    trainer.set_labels(p.train_labels);
  }
  if (resume_state) trainer.restore(*resume_state);
  if (group) {
    group->check_same("configuration", config.to_toml());
    group->check_same("starting step", std::to_string(trainer.steps_done()));
    trainer.set_group(group);
  }
  const std::string config_toml = config.to_toml();
  if (lead) write_file_atomic(out_dir / "config.toml", config_toml);

  run.parameters = parameter_count(*model);
  if (!quiet)
    fmt::print(stderr, "model {}: {} parameters; {} training {} of dimension {}\n", config.model.name, run.parameters,
               p.train_data.size(0), p.dataset->image_shape().empty() ? "points" : "images", dim);
  at::Generator unused = make_generator(0);
  run.ema_model = make_model(config.model, dim, unused);  // receives the EMA weights along the run and at the end
  run.ema_model->to(device);

  const TrainOptions& t = config.train;
  std::optional<JsonlWriter> log;
  // A restart before the first checkpoint starts afresh but keeps the earlier restarts' records (step 0).
  if (lead) log.emplace(out_dir / "train.jsonl", resume || options.restart > 0, trainer.steps_done());
  Progress progress("train", t.steps, "step", quiet);
  progress.set_first(trainer.steps_done());
  LogWindow window(t.log_every, levels, log ? &*log : nullptr, &progress, group ? group->world_size() : 0);
  if (log)  // the training records: events (restarts) stay in the file only
    std::copy_if(log->kept().begin(), log->kept().end(), std::back_inserter(window.records),
                 [](const nlohmann::json& r) { return !r.contains("event"); });
  const double resumed_seconds = logged_seconds(window.records);
  EmaHook evaluator(trainer, model, run.ema_model, options.hook ? options.hook_every : 0, true, lead, options.hook);
  const bool images = !p.dataset->image_shape().empty();
  EmaHook grids(trainer, model, run.ema_model, images ? t.sample_every : 0, false, lead,
                [&](int64_t step, ScoreModel&, ScoreModel& ema) {
                  write_sample_grid(out_dir / "samples" / fmt::format("step-{}.png", step), config, p, ema, 64);
                });
  Checkpointer checkpointer(trainer, out_dir, config_toml, t.ckpt_every, lead);
  PosthocSnapshots posthoc(trainer, out_dir, t.posthoc_sigma_rels, t.posthoc_every, lead);
  InterruptHook interrupt(options.dist.rank, t.steps, last_path);

  const int64_t first_step = trainer.steps_done();
  const int64_t last_step = options.stop_at >= 0 ? std::min(options.stop_at, t.steps) : t.steps;
  TrainingLoop loop(trainer, last_step, group.get());
  if (options.stop_request) loop.set_stop_request(options.stop_request);
  // The snapshot before the checkpoint: a run that stops between the two resumes after a step whose snapshot exists.
  for (TrainingHook* hook :
       std::initializer_list<TrainingHook*>{&window, &evaluator, &grids, &posthoc, &checkpointer, &interrupt})
    loop.add(*hook);
  loop.run();

  run.seconds = resumed_seconds + loop.train_seconds();
  run.steps = trainer.steps_done();
  run.communication_seconds = group ? group->communication_seconds() : 0.0;
  if (group) run.backend = group->backend();
  run.log = std::move(window.records);
  progress.finish(fmt::format("{} steps", trainer.steps_done() - first_step));
  run.model = model;
  trainer.copy_ema_to(run.ema_model);
  run.model->eval();
  run.ema_model->eval();
  run.config = config;
  return run;
}

double logged_seconds(const std::vector<nlohmann::json>& records, int64_t up_to_step) {
  double seconds = 0;
  int64_t previous_step = 0;
  for (const nlohmann::json& record : records) {
    const int64_t step = record.value("step", previous_step);
    if (step > up_to_step) break;
    const double speed = record.value("steps_per_s", 0.0);
    if (speed > 0) seconds += static_cast<double>(step - previous_step) / speed;
    previous_step = step;
  }
  return seconds;
}

int64_t parameter_count(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace scorediff
