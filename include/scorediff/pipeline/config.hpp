// The configuration of a run: one options struct per module, bound into one Schema. Read from a TOML
// preset, changed by --set, validated in one place, printed whole by --dry-run, stored in checkpoints.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "scorediff/core/schema.hpp"
#include "scorediff/data/toy.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/objectives/objective.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/samplers/sample_options.hpp"
#include "scorediff/train/trainer.hpp"

namespace scorediff {

struct RunOptions {
  std::string name = "run";
  int64_t seed = 0;
  int64_t threads = 1;
  std::string device = "cpu";
};

struct Config {
  RunOptions run;
  DataOptions data;
  ProcessOptions process;
  ModelOptions model;
  ObjectiveOptions objective;
  TrainOptions train;
  SampleOptions sample;

  // A schema whose fields point into *this (rebuild it after copying a Config).
  Schema schema();
  // Fills presets (mixture parameters), checks every range, choice and cross-field rule.
  void validate();
  std::string to_toml();
};

// N when sample.guide names a step of the run ("step-N"), nothing when it is a path (or empty).
std::optional<int64_t> guide_step(const std::string& guide);

// Loads a preset by name (configs/<name>.toml, embedded in the binary) or a TOML file by path, then
// applies the --set assignments in order and validates.

// A sample.* key that a TOML file or an assignment sets (not an embedded preset) but the chosen sampler does not
// read gets one warning line on stderr (unread_keys_warning).
Config load_config(const std::string& name_or_path, const std::vector<std::string>& assignments = {});
Config config_from_toml(const std::string& text, const std::string& origin,
                        const std::vector<std::string>& assignments = {});
// Prints the unread-keys warning for these assigned keys, if any (load_config does it for its own).
void warn_unread_sample_keys(const SampleOptions& options, const std::vector<std::string>& assigned);
std::vector<std::string> preset_names();
const std::string& preset_text(const std::string& name);

}  // namespace scorediff
