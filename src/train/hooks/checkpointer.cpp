#include "scorediff/train/hooks/checkpointer.hpp"

#include <fmt/core.h>

#include "scorediff/io/safetensors.hpp"

namespace scorediff {

void write_checkpoint(const std::filesystem::path& path, const Trainer& trainer, const std::string& config_toml) {
  TensorFile file = trainer.state();
  file.metadata["format"] = kCheckpointFormat;
  file.metadata["config"] = config_toml;
  file.metadata["step"] = std::to_string(trainer.steps_done());
  file.metadata["scorediff_version"] = SCOREDIFF_VERSION;
  write_safetensors(path, file);
}

Checkpointer::Checkpointer(const Trainer& trainer, std::filesystem::path run_dir, std::string config_toml,
                           int64_t every, bool lead)
    : trainer_(trainer), run_dir_(std::move(run_dir)), config_toml_(std::move(config_toml)), every_(every),
      lead_(lead) {}

void Checkpointer::write_both(int64_t step) const {
  if (!lead_) return;
  write_checkpoint(run_dir_ / "ckpt" / fmt::format("step-{}.safetensors", step), trainer_, config_toml_);
  write_checkpoint(last_path(), trainer_, config_toml_);
}

bool Checkpointer::after_step(const StepEvent& e) {
  const bool due = every_ > 0 && e.step % every_ == 0 && !e.last();
  if (due || e.stopped_early()) write_both(e.step);
  return due;
}

void Checkpointer::finish(const StepEvent& last) { write_both(last.step); }

}  // namespace scorediff
