// Reading checkpoints back: the stored configuration, weights (raw or EMA), resume compatibility.
#include "scorediff/pipeline/checkpoint.hpp"

#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/safetensors.hpp"

namespace scorediff {
namespace {

// Keys a resumed run may change: they do not alter the loss sequence's definition (model.channels_last: the
// memory layout only; the dropout masks are the same in both).
bool may_differ_on_resume(const std::string& key) {
  return key == "train.steps" || key == "train.ckpt_every" || key == "train.log_every" || key == "train.sample_every" ||
         key == "train.posthoc_every" ||
         key == "run.threads" || key == "model.channels_last" ||
         key == "run.device" || key == "run.name" || key.rfind("sample.", 0) == 0;
}

}  // namespace

Config checkpoint_config(const TensorFile& file, const std::filesystem::path& path) {
  auto it = file.metadata.find("config");
  if (file.metadata.count("format") == 0 || it == file.metadata.end())
    fail("'{}' is not a scorediff checkpoint (no config in its metadata)", path.string());
  return config_from_toml(it->second, path.string() + " (stored config)");
}

int64_t checkpoint_step(const TensorFile& file, const std::filesystem::path& path) {
  require(file.contains("train.step") && file.at("train.step").numel() == 1,
          "'{}' is not a training checkpoint (no train.step)", path.string());
  return file.at("train.step").item<int64_t>();
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

LoadedModel load_trained(const std::filesystem::path& checkpoint, std::optional<bool> ema,
                         const std::vector<std::string>& sets) {
  TensorFile file = read_safetensors(checkpoint);
  LoadedModel out;
  out.config = checkpoint_config(file, checkpoint);
  if (!sets.empty()) {
    Schema schema = out.config.schema();
    for (const auto& s : sets) schema.set(s);
    out.config.validate();
    warn_unread_sample_keys(out.config.sample, schema.assigned());
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

}  // namespace scorediff
