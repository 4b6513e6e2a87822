#include "scorediff/train/hooks/posthoc_snapshots.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scorediff/io/safetensors.hpp"
#include "scorediff/train/posthoc_ema.hpp"

namespace scorediff {

PosthocSnapshots::PosthocSnapshots(const Trainer& trainer, std::filesystem::path run_dir, std::vector<double> sigma_rels,
                                   int64_t every, bool lead)
    : trainer_(trainer), run_dir_(std::move(run_dir)), sigma_rels_(std::move(sigma_rels)), every_(every), lead_(lead) {}

void PosthocSnapshots::write(int64_t step) const {
  if (!lead_ || sigma_rels_.empty()) return;
  TensorFile file = trainer_.posthoc_state();
  nlohmann::json gammas = nlohmann::json::array();
  for (double s : sigma_rels_) gammas.push_back(power_ema_gamma(s));
  file.metadata["format"] = kPosthocFormat;
  file.metadata["step"] = std::to_string(step);
  file.metadata["sigma_rels"] = nlohmann::json(sigma_rels_).dump();
  file.metadata["gammas"] = gammas.dump();
  std::filesystem::create_directories(run_dir_ / "posthoc");
  write_safetensors(run_dir_ / "posthoc" / fmt::format("step-{}.safetensors", step), file);
}

bool PosthocSnapshots::after_step(const StepEvent& e) {
  const bool due = !sigma_rels_.empty() && e.step % every_ == 0 && !e.last();
  if (due) write(e.step);
  return due;
}

void PosthocSnapshots::finish(const StepEvent& last) { write(last.step); }

}  // namespace scorediff
