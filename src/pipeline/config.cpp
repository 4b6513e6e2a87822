#include "scorediff/pipeline/config.hpp"

#include <filesystem>
#include <regex>

#include "scorediff/core/runtime.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/pipeline/presets.hpp"

namespace scorediff {
namespace {

void bind(Schema& s, RunOptions& o) {
  s.add("run.name", &o.name, "run name (the default output directory is runs/<name>)");
  s.add("run.seed", &o.seed, "seed for every random draw").non_negative();
  s.add("run.threads", &o.threads, "intra-op threads").at_least(1);
  s.add("run.device", &o.device, "cpu, cuda or cuda:N");
}

}  // namespace

Schema Config::schema() {
  Schema s;
  bind(s, run);
  scorediff::bind(s, data);
  scorediff::bind(s, process);
  scorediff::bind(s, model);
  scorediff::bind(s, objective);
  scorediff::bind(s, train);
  scorediff::bind(s, sample);
  return s;
}

std::optional<int64_t> guide_step(const std::string& guide) {
  static const std::regex step_name("step-([0-9]+)");
  std::smatch match;
  if (!std::regex_match(guide, match, step_name)) return std::nullopt;
  return std::stoll(match[1]);
}

void Config::validate() {
  schema().check();
  parse_device(run.device);
  resolve(data);
  scorediff::validate(process);
  require(sample.s_tmin <= sample.s_tmax, "sample.s_tmin ({}) must not exceed sample.s_tmax ({})", sample.s_tmin,
          sample.s_tmax);
  require(train.weight_decay * train.lr < 1, "train.weight_decay * train.lr = {} must be < 1 (each step scales weights by 1 - lr wd)",
          train.weight_decay * train.lr);
  require(sample.init_low < sample.init_high, "sample.init_low ({}) must be smaller than sample.init_high ({})",
          sample.init_low, sample.init_high);
  require(sample.guidance == 1.0 || !sample.guide.empty(),
          "sample.guidance = {} needs sample.guide (a weaker checkpoint: \"step-N\" of the run, or a path)",
          sample.guidance);
  require(train.label_dropout == 0 || model.classes > 0,
          "train.label_dropout = {} needs a class-conditional model (model.classes > 0)", train.label_dropout);
  require(sample.cfg == 0 || model.classes > 0,
          "sample.cfg = {} is classifier-free guidance: it needs a class-conditional model (model.classes > 0)", sample.cfg);
  // Its classes fit the model; an unconditional model guided by a classifier takes the classifier's classes,
  // checked when it is loaded (sampling_labels).
  if (model.classes > 0 || sample.classifier.empty()) sample_labels(sample.label, model.classes, 1);
  require(sample.classifier_scale == 1.0 || !sample.classifier.empty(),
          "sample.classifier_scale = {} needs sample.classifier (train-classifier --noisy --ckpt RUN)",
          sample.classifier_scale);
  if (auto step = guide_step(sample.guide))
    require(*step <= train.steps, "sample.guide = {} is beyond the run's train.steps = {}", sample.guide, train.steps);
  // "auto" noise levels are known only once the data is drawn (prepare); stand-ins of the same kind
  // check that the objective and the sampler fit the process.
  ProcessOptions shape = process;
  if (shape.sigma_min_auto) shape.sigma_min = shape.sigma_max_auto ? 0.01 : shape.sigma_max / 1000;
  if (shape.sigma_max_auto) shape.sigma_max = shape.sigma_min * 1000;
  if (shape.levels_auto) shape.levels = 10;
  shape.sigma_min_auto = shape.sigma_max_auto = shape.levels_auto = false;
  auto noise = make_process(shape);
  scorediff::validate(objective, *noise);
  if (objective.name == "cd") {
    require(model.name.rfind("energy-", 0) == 0,
            "objective.name = 'cd' trains an energy model (model.name = 'energy-mlp' or 'energy-cnn'), not '{}'",
            model.name);
    require(objective.buffer >= train.batch, "objective.buffer = {} must hold at least train.batch = {} chains",
            objective.buffer, train.batch);
    require(!model.loss_uncertainty, "model.loss_uncertainty needs an objective that draws a noise level per sample, "
                                     "not objective.name = 'cd'");
  }
  check_sampler(sample, *noise);
}

std::string Config::to_toml() { return schema().to_toml(); }

namespace {

// Reads text (or the file at path when text is null), applies the assignments, validates; `assigned`
// receives the keys the text and the assignments set.
Config read_config(const std::string* text, const std::string& origin, const std::vector<std::string>& assignments,
                   std::vector<std::string>* assigned = nullptr) {
  Config config;
  Schema schema = config.schema();
  if (text) schema.load_string(*text, origin);
  else schema.load_file(origin);
  for (const auto& a : assignments) schema.set(a);
  config.validate();
  if (assigned) *assigned = schema.assigned();
  return config;
}

}  // namespace

void warn_unread_sample_keys(const SampleOptions& options, const std::vector<std::string>& assigned) {
  std::string warning = unread_keys_warning(options, assigned);
  if (!warning.empty()) fmt::print(stderr, "scorediff: warning: {}\n", warning);
}

Config config_from_toml(const std::string& text, const std::string& origin, const std::vector<std::string>& assignments) {
  return read_config(&text, origin, assignments);
}

Config load_config(const std::string& name_or_path, const std::vector<std::string>& assignments) {
  std::error_code ec;
  std::vector<std::string> assigned;
  if (std::filesystem::is_regular_file(name_or_path, ec)) {
    Config config = read_config(nullptr, name_or_path, assignments, &assigned);
    warn_unread_sample_keys(config.sample, assigned);
    return config;
  }
  auto names = preset_names();
  bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                         std::filesystem::path(name_or_path).extension() == ".toml";
  if (looks_like_path) fail("config file '{}' not found", name_or_path);
  if (std::find(names.begin(), names.end(), name_or_path) == names.end())
    fail("unknown preset '{}' (and no such file); presets: {}", name_or_path, join_names(names));
  Config config = read_config(&preset_text(name_or_path), "preset " + name_or_path, assignments);
  // A preset is not the user's choice: only the keys the assignments set are checked.
  for (const auto& assignment : assignments) assigned.push_back(assignment.substr(0, assignment.find('=')));
  warn_unread_sample_keys(config.sample, assigned);
  return config;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (const auto& p : embedded_presets()) out.push_back(p.name);
  return out;
}

const std::string& preset_text(const std::string& name) {
  for (const auto& p : embedded_presets())
    if (p.name == name) return p.text;
  fail("unknown preset '{}'; valid: {}", name, join_names(preset_names()));
}

}  // namespace scorediff
