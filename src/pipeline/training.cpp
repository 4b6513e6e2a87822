#include "scorediff/pipeline/training.hpp"

#include <torch/torch.h>

#include <utility>

#include "scorediff/core/interrupt.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/jsonl.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/models/fused.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"

namespace scorediff {
namespace {

constexpr const char* kFormat = "scorediff-checkpoint/1";

// Keys a resumed run may change: they do not alter the loss sequence's definition.
bool may_differ_on_resume(const std::string& key) {
  return key == "train.steps" || key == "train.ckpt_every" || key == "train.log_every" || key == "train.sample_every" ||
         key == "run.threads" ||
         key == "run.device" || key == "run.name" || key.rfind("sample.", 0) == 0;
}

void write_checkpoint(const std::filesystem::path& path, const Trainer& trainer, Config& config) {
  TensorFile file = trainer.state();
  file.metadata["format"] = kFormat;
  file.metadata["config"] = config.to_toml();
  file.metadata["step"] = std::to_string(trainer.steps_done());
  file.metadata["scorediff_version"] = SCOREDIFF_VERSION;
  write_safetensors(path, file);
}

Config checkpoint_config(const TensorFile& file, const std::filesystem::path& path) {
  auto it = file.metadata.find("config");
  if (file.metadata.count("format") == 0 || it == file.metadata.end())
    fail("'{}' is not a scorediff checkpoint (no config in its metadata)", path.string());
  return config_from_toml(it->second, path.string() + " (stored config)");
}

void check_resume_compatible(Config stored, Config requested, const std::filesystem::path& path) {
  Schema a = stored.schema(), b = requested.schema();
  std::vector<std::string> changed;
  for (const auto& section : a.sections())
    for (const auto& key : a.keys_in(section)) {
      std::string full = section + "." + key;
      if (!may_differ_on_resume(full) && a.find(full)->value_text() != b.find(full)->value_text()) changed.push_back(full);
    }
  if (!changed.empty())
    fail("cannot resume from '{}': the configuration differs in {} (only train.steps, logging, threads and device may change)",
         path.string(), join_names(changed));
}

// Copies the EMA weights (ema = true) or the raw ones into `model`.
void load_weights(torch::nn::Module& model, const TensorFile& file, bool ema, const std::string& origin) {
  load_module(model, file, "model.", origin);
  if (!ema) return;
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    std::string key = "ema." + item.key();
    if (!file.contains(key)) fail("{} has no EMA weights ('{}'); use --raw", origin, key);
    if (file.at(key).sizes() != item.value().sizes()) fail("{}: tensor '{}' has the wrong shape", origin, key);
    item.value().copy_(file.at(key));
  }
}

}  // namespace

Prepared prepare(Config& config) {
  set_threads(static_cast<int>(config.run.threads), workload_of(config.model));
  c10::Device device = parse_device(config.run.device);
  static bool warned = false;
  if (config.model.name == "unet" && config.model.conv_precision == "bfloat16" && device.is_cpu() &&
      !cpu_has_bfloat16_arithmetic() && !std::exchange(warned, true))
    fmt::print(stderr,
               "scorediff: warning: model.conv_precision = bfloat16, but this CPU has no bfloat16 arithmetic (AVX-512 "
               "BF16, AMX); --set model.conv_precision=float32 is likely faster here\n");
  Prepared p;
  p.dataset = make_dataset(config.data);
  p.process = make_process(config.process);
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "data"));
  p.train_data = p.dataset->sample(config.data.n_train, gen);
  config.model.image_shape = p.dataset->image_shape();
  if (config.model.sigma_data == 0.0) {
    torch::Tensor centred = p.train_data - p.train_data.mean(0, true);
    config.model.sigma_data = std::sqrt(centred.pow(2).mean().item<double>());
  }
  p.train_data = p.train_data.to(device);
  if (const GaussianMixture* mixture = p.dataset->mixture())
    p.reference = mixture_score_fn(std::shared_ptr<const GaussianMixture>(p.dataset, mixture), p.process);
  return p;
}

TrainedRun train_run(Config config, const std::filesystem::path& out_dir, const TrainRunOptions& options) {
  TrainedRun run;
  run.prepared = prepare(config);
  const Prepared& p = run.prepared;
  c10::Device device = p.train_data.device();
  const auto seed = static_cast<uint64_t>(config.run.seed);
  const int64_t dim = p.train_data.size(1);
  const bool lead = options.dist.rank == 0;  // writes the run directory; the other ranks only train
  const bool quiet = options.quiet || !lead;
  std::shared_ptr<ProcessGroup> group;
  if (options.dist.active()) {
    require(config.train.batch >= options.dist.world_size, "train.batch = {} is smaller than the {} workers",
            config.train.batch, options.dist.world_size);
    group = std::make_shared<ProcessGroup>(options.dist);
  }
  if (lead) ensure_output_dir(out_dir / "ckpt");
  const auto last_path = out_dir / "last.safetensors";

  std::optional<TensorFile> resume_state;
  if (options.resume) {
    std::error_code ec;
    if (!std::filesystem::exists(last_path, ec)) fail("cannot resume: '{}' not found", last_path.string());
    resume_state = read_safetensors(last_path);
    Config stored = checkpoint_config(*resume_state, last_path);
    check_resume_compatible(stored, config, last_path);
    config.model.sigma_data = stored.model.sigma_data;
  }

  at::Generator init_gen = make_generator(derive_seed(seed, "init"));
  ScoreModel model = make_model(config.model, dim, init_gen);
  model->to(device);
  Objective objective = make_objective(config.objective, p.reference ? &p.reference : nullptr);
  int64_t levels = level_count(config.objective, *p.process);
  Trainer trainer(model, p.process, objective, levels, p.train_data, config.train, seed);
  if (resume_state) trainer.restore(*resume_state);
  if (group) {
    group->check_same("configuration", config.to_toml());
    group->check_same("starting step", std::to_string(trainer.steps_done()));
    trainer.set_group(group);
  }
  if (lead) write_file_atomic(out_dir / "config.toml", config.to_toml());

  run.parameters = parameter_count(*model);
  if (!quiet)
    fmt::print(stderr, "model {}: {} parameters; {} training {} of dimension {}\n", config.model.name, run.parameters,
               p.train_data.size(0), p.dataset->image_shape().empty() ? "points" : "images", dim);

  // EMA weights for hooks and sample grids along the run (the final copy is made below).
  at::Generator unused = make_generator(0);
  run.ema_model = make_model(config.model, dim, unused);
  run.ema_model->to(device);
  auto with_ema = [&](const std::function<void(ScoreModel&)>& use) {
    trainer.copy_ema_to(run.ema_model);
    run.ema_model->eval();
    model->eval();
    use(run.ema_model);
    model->train();
  };

  std::optional<JsonlWriter> log;
  if (lead) log.emplace(out_dir / "train.jsonl", options.resume, trainer.steps_done());
  double earlier_seconds = 0;  // the resumed steps at the speed each record logged
  int64_t previous_step = 0;
  for (const nlohmann::json& record : log ? log->kept() : std::vector<nlohmann::json>{}) {
    const int64_t step = record.value("step", previous_step);
    const double speed = record.value("steps_per_s", 0.0);
    if (speed > 0) earlier_seconds += static_cast<double>(step - previous_step) / speed;
    previous_step = step;
    run.log.push_back(record);
  }
  const TrainOptions& t = config.train;
  Progress progress("train", t.steps, "step", quiet);
  progress.set_first(trainer.steps_done());
  double window_loss = 0, window_grad = 0;
  int64_t window_steps = 0, skipped = 0;
  torch::Tensor level_sum = torch::zeros({levels}, torch::kFloat64), level_count = torch::zeros({levels}, torch::kInt64);
  auto window_start = std::chrono::steady_clock::now();
  auto communication = [&] { return group ? group->communication_seconds() : 0.0; };
  double window_communication = 0;  // communication_seconds() when the window started
  auto started = window_start;
  const int64_t first_step = trainer.steps_done();
  const int64_t last_step = options.stop_at >= 0 ? std::min(options.stop_at, t.steps) : t.steps;
  while (trainer.steps_done() < last_step) {
    StepStats stats = trainer.step();
    const int64_t step = trainer.steps_done();
    // Ctrl-C: log, checkpoint and stop after this step (data parallel: after the step in which any rank was asked).
    const bool interrupted = group ? stats.stop : interrupt_requested();
    if (stats.skipped) {
      ++skipped;
    } else {
      window_loss += stats.loss;
      window_grad += stats.grad_norm;
      ++window_steps;
      level_sum += stats.level_loss_sum;
      level_count += stats.level_count;
    }
    if (step % t.log_every == 0 || step == last_step || interrupted) {
      auto now = std::chrono::steady_clock::now();
      double seconds = std::chrono::duration<double>(now - window_start).count();
      int64_t in_window = step % t.log_every == 0 ? t.log_every : step % t.log_every;
      nlohmann::json per_level = nlohmann::json::array();
      for (int64_t l = 0; l < levels; ++l) {
        int64_t c = level_count[l].item<int64_t>();
        per_level.push_back(c > 0 ? nlohmann::json(level_sum[l].item<double>() / c) : nlohmann::json(nullptr));
      }
      nlohmann::json record = {{"step", step},
                               {"loss", window_steps > 0 ? window_loss / window_steps : NAN},
                               {"loss_per_level", per_level},
                               {"lr", stats.lr},
                               {"grad_norm", window_steps > 0 ? window_grad / window_steps : NAN},
                               {"skipped", skipped},
                               {"steps_per_s", seconds > 0 ? in_window / seconds : 0.0}};
      if (group) {
        record["world_size"] = group->world_size();
        record["allreduce_share"] = seconds > 0 ? (communication() - window_communication) / seconds : 0.0;
      }
      if (log) log->write(record);
      run.log.push_back(record);
      progress.update(step, fmt::format("loss {:.4g}", window_steps > 0 ? window_loss / window_steps : NAN));
      window_loss = window_grad = 0;
      window_steps = skipped = 0;
      level_sum.zero_();
      level_count.zero_();
      window_start = now;
      window_communication = communication();
    }
    // Hooks, grids and checkpoints are not training: their time is left out of the logged speed.
    const auto aside_start = std::chrono::steady_clock::now();
    const double aside_communication = communication();
    const bool hook_due = options.hook && options.hook_every > 0 && (step % options.hook_every == 0 || step == last_step);
    const bool grid_due = t.sample_every > 0 && step % t.sample_every == 0 && !p.dataset->image_shape().empty();
    const bool ckpt_due = t.ckpt_every > 0 && step % t.ckpt_every == 0 && step != last_step;
    if (lead && hook_due) with_ema([&](ScoreModel& ema) { options.hook(step, model, ema); });
    if (lead && grid_due)
      with_ema([&](ScoreModel& ema) {
        write_sample_grid(out_dir / "samples" / fmt::format("step-{}.png", step), config, p, ema, 64);
      });
    if (lead && ckpt_due) {
      write_checkpoint(out_dir / "ckpt" / fmt::format("step-{}.safetensors", step), trainer, config);
      write_checkpoint(last_path, trainer, config);
    }
    // The other ranks wait here (without the collective timeout) while rank 0 works alone.
    if (group && (hook_due || grid_due || ckpt_due) && !(interrupted && step != last_step))
      group->wait_for_rank0(fmt::format("waiting for rank 0's checkpoint or samples after step {}", step));
    const auto aside = std::chrono::steady_clock::now() - aside_start;
    window_start += aside;
    started += aside;
    window_communication += communication() - aside_communication;
    if (interrupted && step != last_step) {
      progress.finish(fmt::format("interrupted at step {}", step));
      clear_interrupt();
      if (!lead)
        throw Interrupted(fmt::format("rank {} stopped at step {} of {}; rank 0 writes the checkpoint",
                                      options.dist.rank, step, t.steps));
      write_checkpoint(out_dir / "ckpt" / fmt::format("step-{}.safetensors", step), trainer, config);
      write_checkpoint(last_path, trainer, config);
      throw Interrupted(fmt::format("training stopped at step {} of {}; checkpoint '{}' written, --resume continues",
                                    step, t.steps, last_path.string()));
    }
  }
  run.seconds = earlier_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  run.steps = trainer.steps_done();
  run.communication_seconds = communication();
  progress.finish(fmt::format("{} steps", trainer.steps_done() - first_step));
  if (lead) {
    write_checkpoint(out_dir / "ckpt" / fmt::format("step-{}.safetensors", trainer.steps_done()), trainer, config);
    write_checkpoint(last_path, trainer, config);
  }

  run.model = model;
  trainer.copy_ema_to(run.ema_model);
  run.model->eval();
  run.ema_model->eval();
  run.config = config;
  return run;
}

int64_t parameter_count(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

LoadedModel load_trained(const std::filesystem::path& checkpoint, std::optional<bool> ema,
                         const std::vector<std::string>& sets) {
  TensorFile file = read_safetensors(checkpoint);
  LoadedModel out;
  out.config = checkpoint_config(file, checkpoint);
  if (!sets.empty()) {
    Schema schema = out.config.schema();
    for (const auto& s : sets) schema.set(s);
    out.config.validate();
  }
  out.prepared = prepare(out.config);
  at::Generator unused = make_generator(0);
  out.model = make_model(out.config.model, out.prepared.train_data.size(1), unused);
  const std::string origin = "checkpoint '" + checkpoint.string() + "'";
  load_weights(*out.model, file, ema.value_or(out.config.sample.use_ema), origin);
  out.model->to(out.prepared.train_data.device());
  out.model->eval();
  out.step = std::stoll(file.metadata.count("step") ? file.metadata.at("step") : "0");
  return out;
}

std::filesystem::path run_dir_of(const std::filesystem::path& checkpoint) {
  std::filesystem::path dir = checkpoint.parent_path();
  if (dir.filename() == "ckpt") dir = dir.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

namespace {

std::filesystem::path guide_path(const std::string& guide, const std::filesystem::path& run_dir) {
  if (guide_step(guide)) return run_dir / "ckpt" / (guide + ".safetensors");
  return guide;
}

// The model's score, or its autoguided combination with sample.guide (see sampling_score_fn).
ScoreFn guided_score_fn(const Config& config, ScoreModel model, const Prepared& prepared,
                        const std::filesystem::path& run_dir) {
  ScoreFn own = model_score_fn(model, prepared.process);
  const SampleOptions& o = config.sample;
  if (o.guide.empty() || o.guidance == 1.0) return own;
  const std::filesystem::path path = guide_path(o.guide, run_dir);
  require(std::filesystem::exists(path), "sample.guide: checkpoint '{}' does not exist", path.string());
  TensorFile file = read_safetensors(path);
  Config guide_config = checkpoint_config(file, path);
  // The two scores are combined at the same (x, t), so both must be trained for the same process on the
  // same data; the architecture may differ (Karras et al. use a smaller guide).
  require(guide_config.data.name == config.data.name, "sample.guide '{}' was trained on '{}', not '{}'",
          path.string(), guide_config.data.name, config.data.name);
  Config own_config = config;
  Schema mine = own_config.schema(), theirs = guide_config.schema();
  for (const auto& key : mine.keys_in("process")) {
    const std::string full = "process." + key;
    require(mine.find(full)->value_text() == theirs.find(full)->value_text(),
            "sample.guide '{}' has {} = {}, the model {}: guidance needs the same process", path.string(), full,
            theirs.find(full)->value_text(), mine.find(full)->value_text());
  }
  guide_config.model.image_shape = prepared.dataset->image_shape();
  at::Generator unused = make_generator(0);
  ScoreModel guide = make_model(guide_config.model, prepared.train_data.size(1), unused);
  load_weights(*guide, file, /*ema=*/true, "sample.guide '" + path.string() + "'");
  guide->to(prepared.train_data.device());
  guide->eval();
  ScoreFn weak = model_score_fn(guide, prepared.process);
  const double w = o.guidance;
  return [own, weak, w](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor s_weak = weak(x, t);
    return s_weak + w * (own(x, t) - s_weak);
  };
}

}  // namespace

ScoreFn sampling_score_fn(const Config& config, ScoreModel model, const Prepared& prepared,
                          const std::filesystem::path& run_dir) {
  ScoreFn score = guided_score_fn(config, std::move(model), prepared, run_dir);
  if (config.sample.precision != "bfloat16") return score;
  static bool warned = false;
  if (prepared.train_data.is_cpu() && !cpu_has_bfloat16_arithmetic() && !std::exchange(warned, true))
    fmt::print(stderr, "scorediff: warning: sample.precision = bfloat16, but this CPU has no bfloat16 arithmetic "
                       "(AVX-512 BF16, AMX); float32 is likely faster here\n");
  return [inner = std::move(score)](const torch::Tensor& x, const torch::Tensor& t) {
    BFloat16Inference bf16;  // for the guide's evaluation too
    return inner(x, t);
  };
}

}  // namespace scorediff
