// A trained model back from its checkpoint: the stored configuration, the prepared data and process, the
// raw or EMA weights.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scorediff/io/safetensors.hpp"
#include "scorediff/pipeline/config.hpp"
#include "scorediff/pipeline/prepared.hpp"

namespace scorediff {

struct LoadedModel {
  Config config;
  Prepared prepared;
  ScoreModel model{nullptr};
  int64_t step = 0;
};
// ema = true loads the EMA weights (the default for sampling and evaluation), false the raw ones, and no
// value what the checkpoint's sample.use_ema says after `sets` (config overrides, applied before the data
// is prepared).
LoadedModel load_trained(const std::filesystem::path& checkpoint, std::optional<bool> ema = std::nullopt,
                         const std::vector<std::string>& sets = {});

// The folder a checkpoint's run lives in: the one holding last.safetensors and ckpt/.
std::filesystem::path run_dir_of(const std::filesystem::path& checkpoint);

// The configuration stored in a checkpoint; one line when the file is not a scorediff checkpoint.
Config checkpoint_config(const TensorFile& file, const std::filesystem::path& path);
// The training step a checkpoint was written at (train.step); one line when it has none.
int64_t checkpoint_step(const TensorFile& file, const std::filesystem::path& path);
// One line naming the keys that differ, unless only those a resumed run may change do.
void check_resume_compatible(Config stored, Config requested, const std::filesystem::path& path);
// Copies the EMA weights (ema = true) or the raw ones into `model`.
void load_weights(torch::nn::Module& model, const TensorFile& file, bool ema, const std::string& origin);

}  // namespace scorediff
