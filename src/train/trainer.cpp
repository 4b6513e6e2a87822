#include "scorediff/train/trainer.hpp"

#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "scorediff/core/interrupt.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/models/batch_shard.hpp"
#include "scorediff/objectives/consistency.hpp"
#include "scorediff/objectives/contrastive.hpp"
#include "scorediff/train/data_parallel.hpp"
#include "scorediff/train/fused_dsm.hpp"
#include "scorediff/train/posthoc_ema.hpp"

namespace scorediff {
namespace {

// U(x, t) of an energy model under the process, for objectives that need the energy (cd).
ContrastiveDivergence::ModelEnergy model_energy(ScoreModel model, std::shared_ptr<const NoiseProcess> process) {
  return [model, process](const torch::Tensor& x, const torch::Tensor& t) mutable {
    return model->energy(x, process->mean_coef(t), process->std(t), t);
  };
}

constexpr int64_t kMaxConsecutiveSkips = 10;

// The score on rows [begin, end) of a batch of `batch` rows, zeros elsewhere: the other ranks compute
// those rows, and zeros carry no gradient.
ScoreFn shard_score(ScoreFn full, int64_t batch, int64_t begin, int64_t end) {
  return [full = std::move(full), batch, begin, end](const torch::Tensor& x, const torch::Tensor& t) {
    require(x.size(0) == batch,
            "data-parallel training shards the batch's rows, but the objective evaluates the score on {} rows "
            "(batch {}); train this objective in one process",
            x.size(0), batch);
    torch::Tensor own_t = t.dim() > 0 && t.size(0) == batch ? t.slice(0, begin, end) : t;
    const BatchShard shard{batch, begin, end};
    BatchShardScope scope(shard);  // dropout draws the global batch's masks
    torch::Tensor own = full(x.slice(0, begin, end), own_t);
    std::vector<int64_t> shape = own.sizes().vec();
    shape[0] = begin;
    torch::Tensor before = torch::zeros(shape, own.options());
    shape[0] = batch - end;
    return torch::cat({before, own, torch::zeros(shape, own.options())});
  };
}

// Per-level sums and counts of the per-sample losses: one loop over CPU tensors (the toy models' step is
// short enough that the four ATen operations of two bincounts showed in its profile), bincount elsewhere.
void level_sums(const torch::Tensor& loss, const torch::Tensor& level, int64_t levels, torch::Tensor& sums,
                torch::Tensor& counts) {
  const bool cpu = loss.device().is_cpu() && level.device().is_cpu() && level.scalar_type() == torch::kInt64 &&
                   (loss.scalar_type() == torch::kFloat32 || loss.scalar_type() == torch::kFloat64) && loss.dim() == 1 &&
                   level.dim() == 1 && loss.size(0) == level.size(0);
  if (!cpu) {
    torch::Tensor per = loss.to(torch::kCPU, torch::kFloat64), bins = level.to(torch::kCPU);
    sums = torch::bincount(bins, per, levels);
    counts = torch::bincount(bins, {}, levels);
    return;
  }
  sums = torch::zeros({levels}, torch::kFloat64);
  counts = torch::zeros({levels}, torch::kInt64);
  double* sp = sums.data_ptr<double>();
  int64_t* cp = counts.data_ptr<int64_t>();
  const torch::Tensor lv = level.contiguous();
  const int64_t* lp = lv.data_ptr<int64_t>();
  const torch::Tensor values = loss.to(torch::kFloat64).contiguous();
  const double* vp = values.data_ptr<double>();
  for (int64_t i = 0, n = loss.size(0); i < n; ++i) {
    const int64_t b = lp[i];
    require(b >= 0 && b < levels, "objective returned level {} outside [0, {})", b, levels);
    sp[b] += vp[i];
    ++cp[b];
  }
}

}  // namespace

void bind(Schema& s, TrainOptions& o) {
  s.add("train.steps", &o.steps, "optimisation steps").at_least(1);
  s.add("train.batch", &o.batch, "batch size").at_least(1);
  s.add("train.lr", &o.lr, "peak learning rate").positive().at_most(10.0);
  s.add("train.warmup", &o.warmup, "linear warm-up steps").at_least(0);
  s.add("train.schedule", &o.schedule, "learning rate after warm-up").one_of({"constant", "cosine"});
  s.add("train.lr_final_ratio", &o.lr_final_ratio, "cosine: final lr as a fraction of train.lr").in_range(0.0, 1.0);
  s.add("train.grad_clip", &o.grad_clip, "max gradient norm, 0 = off").non_negative();
  s.add("train.ema_decay", &o.ema_decay, "EMA decay").in_range(0.0, 1.0);
  s.add("train.beta1", &o.beta1, "Adam beta1").non_negative().below(1.0);
  s.add("train.beta2", &o.beta2, "Adam beta2").non_negative().below(1.0);
  s.add("train.adam_eps", &o.adam_eps, "Adam epsilon").positive().at_most(1.0);
  s.add("train.weight_decay", &o.weight_decay, "decoupled weight decay (AdamW)").non_negative().below(1.0);
  s.add("train.log_every", &o.log_every, "steps per train.jsonl line").at_least(1);
  s.add("train.sample_every", &o.sample_every, "image datasets: steps between sample grids (samples/step-N.png); 0 = none")
      .non_negative();
  s.add("train.ckpt_every", &o.ckpt_every, "steps per checkpoint, 0 = only at the end").at_least(0);
  s.add("train.label_dropout", &o.label_dropout,
        "class-conditional models: share of labels replaced by the null class (classifier-free guidance)")
      .non_negative()
      .below(1.0);
  s.add("train.posthoc_sigma_rels", &o.posthoc_sigma_rels,
        "post-hoc EMA: sigma_rel of the power-function EMAs to keep (EDM2: [0.05, 0.1]); [] = none")
      .positive()
      .at_most(0.288675);  // 1/(2√3), the length of γ = 0
  s.add("train.posthoc_every", &o.posthoc_every, "post-hoc EMA: steps between snapshots (posthoc/step-N.safetensors)")
      .at_least(1);
}

double learning_rate(const TrainOptions& o, int64_t step) {
  const double n = static_cast<double>(step);
  if (o.warmup > 0 && step < o.warmup) return o.lr * (n + 1) / static_cast<double>(o.warmup);
  if (o.schedule == "constant" || o.steps <= o.warmup) return o.lr;
  double progress = std::min(1.0, (n - o.warmup) / static_cast<double>(o.steps - o.warmup));
  return o.lr * (o.lr_final_ratio + (1 - o.lr_final_ratio) * 0.5 * (1 + std::cos(M_PI * progress)));
}

static std::vector<torch::Tensor> parameters_of(torch::nn::Module& m, std::vector<std::string>* names) {
  std::vector<torch::Tensor> out;
  for (const auto& item : m.named_parameters()) {
    if (names != nullptr) names->push_back(item.key());
    out.push_back(item.value());
  }
  return out;
}

Trainer::Trainer(ScoreModel model, std::shared_ptr<const NoiseProcess> process, Objective objective, int64_t levels,
                 torch::Tensor data, const TrainOptions& options, uint64_t seed)
    : model_(std::move(model)),
      process_(std::move(process)),
      objective_(std::move(objective)),
      levels_(levels),
      data_(std::move(data)),
      options_(options),
      params_(parameters_of(*model_, &param_names_)),
      adam_(params_, AdamOptions{options.beta1, options.beta2, options.adam_eps, options.weight_decay}),
      ema_(params_, options.ema_decay),
      gen_(make_generator(derive_seed(seed, "train"), data_.device())) {
  require(data_.dim() >= 2 && data_.size(0) > 0, "training data must be a non-empty [N, ...] tensor");
  for (auto& p : params_) p.mutable_grad() = torch::zeros_like(p);
  for (double sigma_rel : options.posthoc_sigma_rels)
    posthoc_.push_back(Ema::power_function(params_, power_ema_gamma(sigma_rel)));
}

void Trainer::set_labels(torch::Tensor labels) {
  const int64_t k = model_->classes();
  require(k > 0, "labels given to a model without classes (model.classes = 0)");
  require(labels.dim() == 1 && labels.size(0) == data_.size(0), "{} labels for {} training rows",
          labels.dim() == 1 ? labels.size(0) : labels.numel(), data_.size(0));
  require(labels.scalar_type() == torch::kInt64, "labels must be int64");
  const int64_t low = labels.min().item<int64_t>(), high = labels.max().item<int64_t>();
  require(low >= 0 && high < k, "labels in [{}, {}] do not fit model.classes = {} (they must lie in [0, {}))", low, high, k,
          k);
  labels_ = labels.to(data_.device());
}

StepStats Trainer::step() {
  model_->train();
  StepStats stats;
  stats.lr = learning_rate(options_, step_);
  const int64_t batch_size = options_.batch;
  torch::Tensor index = torch::randint(0, data_.size(0), {batch_size}, gen_, torch::TensorOptions().dtype(torch::kInt64).device(data_.device()));
  torch::Tensor batch = data_.index_select(0, index);
  torch::Tensor labels;
  if (labels_.defined()) {
    labels = labels_.index_select(0, index);
    if (options_.label_dropout > 0) {
      torch::Tensor drop = torch::rand({batch_size}, gen_, torch::TensorOptions().device(data_.device())) <
                           options_.label_dropout;
      labels = labels.masked_fill(drop, model_->classes());
    }
  }
  const bool parallel = group_ && group_->world_size() > 1;
  int64_t begin = 0, end = batch_size;
  if (parallel) std::tie(begin, end) = shard_rows(batch_size, group_->rank(), group_->world_size());
  const DsmObjective* fused = parallel ? nullptr : fused_dsm_objective(model_, objective_, data_);
  ContrastiveDivergence* contrastive = objective_.target<ContrastiveDivergence>();
  require(contrastive == nullptr || !parallel, "objective.name = 'cd' trains in one process (its replay buffer is not shared)");
  LossTerms terms;
  torch::Tensor loss;
  if (fused != nullptr) {
    // SiLU MLPs under DSM: the same step without autograd (train/fused_dsm.hpp), into the parameters' .grad.
    terms = fused_dsm_step(model_, *process_, fused->options, batch, gen_, labels);
  } else {
    ScoreFn score = model_score_fn(model_, process_, parallel && labels.defined() ? labels.slice(0, begin, end) : labels);
    if (parallel) score = shard_score(std::move(score), batch_size, begin, end);
    terms = contrastive != nullptr ? contrastive->loss(model_energy(model_, process_), *process_, batch, gen_)
                                   : objective_(score, *process_, batch, gen_);
    torch::Tensor per_sample = terms.loss;
    if (model_->has_loss_uncertainty()) {
      require(terms.sigma.defined() && contrastive == nullptr,
              "model.loss_uncertainty needs an objective that draws a noise level per sample, not 'cd'");
      per_sample = uncertainty_weighted(terms.loss, model_->log_variance(terms.sigma), batch[0].numel());
    }
    // One process: the batch mean. Data parallel: this rank's share of the global batch's mean, summed below.
    loss = parallel ? per_sample.slice(0, begin, end).sum() / static_cast<double>(batch_size) : per_sample.mean();
    // Gradients start undefined, so that autograd moves each one in instead of adding it to zeros (two ATen
    // operations per parameter less); a parameter the loss does not reach gets zeros, as before.
    for (auto& p : params_) p.mutable_grad().reset();
    loss.backward();
    for (auto& p : params_)
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
  }
  {
    torch::NoGradGuard no_grad;
    torch::Tensor per = terms.loss.detach().slice(0, begin, end);
    level_sums(per, terms.level.slice(0, begin, end), levels_, stats.level_loss_sum, stats.level_count);
    if (parallel) {
      // Gradients, and [loss sum, per-level sums, per-level counts, stop requests] in one float64 tensor.
      std::vector<torch::Tensor> tensors;
      for (auto& p : params_) tensors.push_back(p.mutable_grad());
      tensors.push_back(torch::cat({per.to(torch::kCPU, torch::kFloat64).sum().view({1}), stats.level_loss_sum, stats.level_count.to(torch::kFloat64),
                                    torch::full({1}, interrupt_requested() ? 1.0 : 0.0, torch::kFloat64)}));
      group_->sum(tensors, fmt::format("the gradient all-reduce of step {}", step_ + 1));
      const torch::Tensor& summary = tensors.back();
      stats.loss = summary[0].item<double>() / static_cast<double>(batch_size);
      stats.level_loss_sum = summary.slice(0, 1, 1 + levels_).clone();
      stats.level_count = summary.slice(0, 1 + levels_, 1 + 2 * levels_).round().to(torch::kInt64);
      stats.stop = summary[-1].item<double>() > 0;
    } else if (fused != nullptr) {
      const double* sums = stats.level_loss_sum.data_ptr<double>();  // every sample lies in one level
      stats.loss = std::accumulate(sums, sums + levels_, 0.0) / static_cast<double>(batch_size);
    } else {
      // The objective's own loss, also under the loss uncertainty (whose weighted loss is not comparable across runs).
      stats.loss = model_->has_loss_uncertainty() ? per.mean().item<double>() : loss.item<double>();
    }
  }
  double max_norm = options_.grad_clip > 0 ? options_.grad_clip : std::numeric_limits<double>::infinity();
  const GradNorm clip = gradient_norm(params_, max_norm);  // applied inside the Adam update
  stats.grad_norm = clip.norm;
  ++step_;
  if (!std::isfinite(stats.loss) || !std::isfinite(stats.grad_norm)) {
    stats.skipped = true;
    if (++consecutive_skips_ >= kMaxConsecutiveSkips)
      fail("training diverged: non-finite loss or gradient for {} consecutive steps (at step {}); lower train.lr or "
           "set train.grad_clip",
           kMaxConsecutiveSkips, step_);
    return stats;
  }
  consecutive_skips_ = 0;
  adam_.step(stats.lr, clip.scale);
  if (!parallel || group_->rank() == 0) {
    ema_.update(params_, step_);
    for (Ema& e : posthoc_) e.update(params_, step_);
  }
  return stats;
}

TensorFile Trainer::posthoc_state() const {
  TensorFile file;
  for (size_t k = 0; k < posthoc_.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i)
      file.tensors.emplace_back(fmt::format("posthoc.{}.{}", k, param_names_[i]), posthoc_[k].shadow()[i]);
  return file;
}

TensorFile Trainer::state() const {
  TensorFile file;
  for (const auto& item : model_->named_parameters()) file.tensors.emplace_back("model." + item.key(), item.value());
  for (const auto& item : model_->named_buffers()) file.tensors.emplace_back("model." + item.key(), item.value());
  for (size_t i = 0; i < params_.size(); ++i) file.tensors.emplace_back("ema." + param_names_[i], ema_.shadow()[i]);
  for (size_t i = 0; i < params_.size(); ++i) {
    file.tensors.emplace_back("optim.exp_avg." + param_names_[i], adam_.exp_avg()[i]);
    file.tensors.emplace_back("optim.exp_avg_sq." + param_names_[i], adam_.exp_avg_sq()[i]);
  }
  for (auto& item : posthoc_state().tensors) file.tensors.push_back(std::move(item));
  file.tensors.emplace_back("optim.steps", torch::tensor({adam_.steps()}, torch::kInt64));
  file.tensors.emplace_back("train.step", torch::tensor({step_}, torch::kInt64));
  file.tensors.emplace_back("train.consecutive_skips", torch::tensor({consecutive_skips_}, torch::kInt64));
  if (const auto* contrastive = objective_.target<ContrastiveDivergence>()) contrastive->save(file);
  if (const auto* consistency = objective_.target<ConsistencyObjective>()) consistency->save(file);
  at::Generator gen = gen_;
  std::lock_guard<std::mutex> lock(gen.mutex());
  file.tensors.emplace_back("rng.train", gen.get_state());
  return file;
}

void Trainer::restore(const TensorFile& file) {
  const std::string origin = "checkpoint";
  load_module(*model_, file, "model.", origin);
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& target) {
    if (!file.contains(name)) fail("{} has no tensor '{}'", origin, name);
    const torch::Tensor& source = file.at(name);
    if (source.sizes() != target.sizes())
      fail("{}: tensor '{}' has shape [{}], expected [{}]", origin, name, fmt::join(source.sizes(), ", "),
           fmt::join(target.sizes(), ", "));
    target.copy_(source);
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    copy("ema." + param_names_[i], ema_.shadow()[i]);
    copy("optim.exp_avg." + param_names_[i], adam_.exp_avg()[i]);
    copy("optim.exp_avg_sq." + param_names_[i], adam_.exp_avg_sq()[i]);
  }
  for (size_t k = 0; k < posthoc_.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i) copy(fmt::format("posthoc.{}.{}", k, param_names_[i]), posthoc_[k].shadow()[i]);
  auto scalar = [&](const std::string& name) {
    if (!file.contains(name)) fail("{} has no tensor '{}'", origin, name);
    return file.at(name).item<int64_t>();
  };
  adam_.set_steps(scalar("optim.steps"));
  step_ = scalar("train.step");
  consecutive_skips_ = scalar("train.consecutive_skips");
  if (auto* contrastive = objective_.target<ContrastiveDivergence>()) contrastive->restore(file, origin);
  if (auto* consistency = objective_.target<ConsistencyObjective>()) consistency->restore(file, origin);
  if (!file.contains("rng.train")) fail("{} has no tensor 'rng.train'", origin);
  std::lock_guard<std::mutex> lock(gen_.mutex());
  try {
    gen_.set_state(file.at("rng.train"));
  } catch (const c10::Error&) {
    fail("{}: tensor 'rng.train' is not a valid generator state", origin);
  }
}

void Trainer::copy_ema_to(ScoreModel& target) const {
  torch::NoGradGuard no_grad;
  auto params = target->named_parameters();
  require(params.size() == params_.size(), "EMA copy into a model of a different architecture");
  for (size_t i = 0; i < params_.size(); ++i) params[param_names_[i]].copy_(ema_.shadow()[i]);
  auto source = model_->named_buffers();
  for (auto& item : target->named_buffers()) item.value().copy_(source[item.key()]);
}

void load_module(torch::nn::Module& module, const TensorFile& file, const std::string& prefix, const std::string& origin) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> expected;
  auto load = [&](const std::string& name, torch::Tensor& target) {
    std::string key = prefix + name;
    expected.push_back(key);
    if (!file.contains(key)) fail("{} does not match the model: missing tensor '{}'", origin, key);
    const torch::Tensor& source = file.at(key);
    if (source.sizes() != target.sizes())
      fail("{} does not match the model: tensor '{}' has shape [{}], the model expects [{}]", origin, key,
           fmt::join(source.sizes(), ", "), fmt::join(target.sizes(), ", "));
    target.copy_(source);
  };
  for (auto& item : module.named_parameters()) load(item.key(), item.value());
  for (auto& item : module.named_buffers()) load(item.key(), item.value());
  for (const auto& [name, tensor] : file.tensors)
    if (name.compare(0, prefix.size(), prefix) == 0 && std::find(expected.begin(), expected.end(), name) == expected.end())
      fail("{} does not match the model: unexpected tensor '{}'", origin, name);
}

}  // namespace scorediff
