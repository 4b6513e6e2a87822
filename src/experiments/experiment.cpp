#include "scorediff/experiments/experiment.hpp"

#include "scorediff/io/files.hpp"

namespace scorediff {

void register_builtins(Registry<ExperimentEntry>& r) {
  r.add("circle", {run_circle, "circle"}, "seed 000: learned score field on a circle vs the exact one");
  r.add("mog-mixing", {run_mog_mixing, "mog2"}, "seed 000: Langevin vs annealed Langevin on a 1/5-4/5 mixture");
  r.add("swiss-roll", {run_swiss_roll, "swiss-roll"}, "seed 001: DSM + annealed Langevin on the Swiss roll");
}

const Registry<ExperimentEntry>& experiments() { return builtin_registry<ExperimentEntry>("experiment"); }

Config experiment_config(const std::string& preset, const ExperimentContext& context) {
  std::vector<std::string> sets = {fmt::format("run.seed={}", context.seed),
                                   fmt::format("run.threads={}", context.threads)};
  sets.insert(sets.end(), context.sets.begin(), context.sets.end());
  return load_config(preset, sets);
}

void write_metrics(const ExperimentContext& context, const nlohmann::json& metrics) {
  write_file_atomic(context.out / "metrics.json", metrics.dump(2) + "\n");
}

}  // namespace scorediff
