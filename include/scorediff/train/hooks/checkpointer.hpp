// Checkpoint hook: every `every` steps (not at the last, which finish() writes) and when the run stops
// early, rank 0 writes ckpt/step-N.safetensors and last.safetensors, each atomically (temporary file,
// fsync, rename): model, EMA, optimiser state, step, RNG state and the configuration.
#pragma once
#include <filesystem>
#include <string>

#include "scorediff/train/hook.hpp"

namespace scorediff {

// The checkpoint format tag stored in the metadata.
inline constexpr const char* kCheckpointFormat = "scorediff-checkpoint/1";

// One checkpoint of the trainer's state with the resolved configuration (TOML) in its metadata.
void write_checkpoint(const std::filesystem::path& path, const Trainer& trainer, const std::string& config_toml);

class Checkpointer : public TrainingHook {
 public:
  // lead: this process writes (rank 0); the others only report the same due steps.
  Checkpointer(const Trainer& trainer, std::filesystem::path run_dir, std::string config_toml, int64_t every,
               bool lead);
  bool after_step(const StepEvent& event) override;
  void finish(const StepEvent& last) override;
  std::filesystem::path last_path() const { return run_dir_ / "last.safetensors"; }

 private:
  void write_both(int64_t step) const;
  const Trainer& trainer_;
  std::filesystem::path run_dir_;
  std::string config_toml_;
  int64_t every_;
  bool lead_;
};

}  // namespace scorediff
