// The score to sample a trained model with: its own, or autoguided by a weaker checkpoint, class-conditional
// and classifier-free or classifier guided; bfloat16 hidden products when asked.
#include "scorediff/pipeline/sampling_score.hpp"

#include <torch/torch.h>

#include <utility>

#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/models/fused_mlp.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/classifier_guidance.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/samplers/guidance.hpp"

namespace scorediff {
namespace {

std::filesystem::path guide_path(const std::string& guide, const std::filesystem::path& run_dir) {
  if (guide_step(guide)) return run_dir / "ckpt" / (guide + ".safetensors");
  return guide;
}

// The model's score, or its autoguided combination with sample.guide (see sampling_score_fn).
ScoreFn autoguided_score_fn(const Config& config, ScoreModel model, const Prepared& prepared,
                            const std::filesystem::path& run_dir, const torch::Tensor& labels) {
  const SampleOptions& o = config.sample;
  ScoreFn own = labelled_score_fn(model, prepared, labels, o.cfg);
  if (o.guide.empty() || o.guidance == 1.0) return own;
  const std::filesystem::path path = guide_path(o.guide, run_dir);
  require(std::filesystem::exists(path), "sample.guide: checkpoint '{}' does not exist", path.string());
  TensorFile file = read_safetensors(path);
  Config guide_config = checkpoint_config(file, path);
  // The two scores are combined at the same (x, t), so both must be trained for the same process on the
  // same data; the architecture may differ (Karras et al. use a smaller guide).
  require(guide_config.data.name == config.data.name, "sample.guide '{}' was trained on '{}', not '{}'",
          path.string(), guide_config.data.name, config.data.name);
  if (const SettingDifference d = first_setting_difference(classifier_process_text(guide_config), config))
    fail("sample.guide '{}' has {}, the model {}: guidance needs the same process", path.string(), d.theirs, d.mine);
  guide_config.model.image_shape = prepared.dataset->image_shape();
  at::Generator unused = make_generator(0);
  ScoreModel guide = make_model(guide_config.model, prepared.train_data.size(1), unused);
  load_weights(*guide, file, /*ema=*/true, "sample.guide '" + path.string() + "'");
  guide->to(prepared.train_data.device());
  guide->eval();
  // Classifier-free guidance inside each network, autoguidance across them: a conditional guide gets the
  // same labels and w; an unconditional one guides every class with its single score.
  require(!labels.defined() || guide->classes() == 0 || guide->classes() == model->classes(),
          "sample.guide '{}' has {} classes, the model {}", path.string(), guide->classes(), model->classes());
  return autoguided(own, labelled_score_fn(guide, prepared, guide->classes() > 0 ? labels : torch::Tensor(), o.cfg),
                    o.guidance);
}

// The networks' score (autoguided_score_fn), classifier guided when sample.classifier is given.
ScoreFn guided_score_fn(const Config& config, ScoreModel model, const Prepared& prepared,
                        const std::filesystem::path& run_dir) {
  const SampleOptions& o = config.sample;
  const torch::Tensor labels = sampling_labels(config, *model);
  // An unconditional model guided by a classifier: the labels are the classifier's alone.
  ScoreFn score = autoguided_score_fn(config, model, prepared, run_dir, model->classes() > 0 ? labels : torch::Tensor());
  if (o.classifier.empty()) return score;
  require(labels.defined() && o.label != "none",
          "sample.classifier guides towards classes: sample.class = none leaves it nothing to guide towards");
  LoadedClassifier classifier = guidance_classifier(o.classifier, config, *prepared.dataset);
  return classifier_guided(std::move(score), classifier_log_prob(std::move(classifier), prepared, config.data.pixels, labels),
                           o.classifier_scale);
}

}  // namespace

ScoreFn labelled_score_fn(ScoreModel model, const Prepared& prepared, const torch::Tensor& labels, double cfg) {
  if (!labels.defined()) return model_score_fn(model, prepared.process);
  ScoreFn conditional = model_score_fn(model, prepared.process, labels);
  if (cfg == 0) return conditional;
  return classifier_free(conditional, model_score_fn(model, prepared.process, torch::full_like(labels, model->classes())),
                         cfg);
}

torch::Tensor sampling_labels(const Config& config, const ScoreModelImpl& model) {
  const SampleOptions& o = config.sample;
  int64_t classes = model.classes();
  if (!o.classifier.empty()) {
    // Classifier guidance: the classifier's classes for an unconditional model, the same classes for a conditional one.
    require(std::filesystem::exists(o.classifier), "sample.classifier: '{}' does not exist", o.classifier);
    const int64_t guiding = load_classifier(o.classifier).classifier->classes();
    require(classes == 0 || classes == guiding, "sample.classifier '{}' has {} classes, the model {}", o.classifier,
            guiding, classes);
    classes = guiding;
  }
  torch::Tensor labels = sample_labels(o.label, classes, o.n);
  require(o.cfg == 0 || (labels.defined() && o.label != "none"),
          "sample.cfg = {} is classifier-free guidance: it needs a class-conditional model (model.classes > 0) and "
          "sample.class other than none",
          o.cfg);
  static bool warned = false;
  if ((o.cfg > 0 || o.label == "none") && model.classes() > 0 && config.train.label_dropout == 0 &&
      !std::exchange(warned, true))
    fmt::print(stderr, "scorediff: warning: {} uses the null class, which this model never saw in training "
                       "(train.label_dropout = 0): expect poor samples\n",
               o.cfg > 0 ? fmt::format("sample.cfg = {}", o.cfg) : std::string("sample.class = none"));
  return labels;
}

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

Config with_command_sets(Config config, const std::vector<std::string>& sets,
                         const std::vector<std::string>& allowed_prefixes) {
  Schema schema = config.schema();
  for (const auto& s : sets) {
    bool allowed = s.rfind("run.seed=", 0) == 0 || s.rfind("run.threads=", 0) == 0;
    for (const auto& prefix : allowed_prefixes) allowed = allowed || s.rfind(prefix, 0) == 0;
    require(allowed, "--set with --ckpt accepts only {} keys here, got '{}'", join_names(allowed_prefixes), s);
    schema.set(s);
  }
  config.validate();
  warn_unread_sample_keys(config.sample, schema.assigned());
  return config;
}

SampleResult draw_samples(const Config& config, const ScoreFn& score, const Prepared& p, bool quiet,
                          const torch::Tensor& initial) {
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "sample"), p.train_data.device());
  return run_sampler(config.sample, score, *p.process, p.train_data.size(1), gen, quiet, false, initial);
}

}  // namespace scorediff
