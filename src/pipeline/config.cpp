#include "scorediff/pipeline/config.hpp"

#include <filesystem>
#include <regex>

#include "scorediff/core/runtime.hpp"
#include "scorediff/pipeline/sampling.hpp"
#include "scorediff/pipeline/presets.hpp"

namespace scorediff {
namespace {

void bind(Schema& s, RunOptions& o) {
  s.add("run.name", &o.name, "run name (the default output directory is runs/<name>)");
  s.add("run.seed", &o.seed, "seed for every random draw").non_negative();
  s.add("run.threads", &o.threads, "intra-op threads").at_least(1);
  s.add("run.device", &o.device, "cpu, cuda or cuda:N");
}

void bind(Schema& s, SampleOptions& o) {
  s.add("sample.sampler", &o.sampler, "sampler").one_of(samplers().names());
  s.add("sample.n", &o.n, "number of samples").at_least(1);
  s.add("sample.eps", &o.eps, "ald: step size at the smallest level").positive();
  s.add("sample.steps_per_level", &o.steps_per_level, "ald: steps per noise level").at_least(1);
  s.add("sample.step_size", &o.step_size, "langevin: step size").positive();
  s.add("sample.steps", &o.steps, "langevin: steps").at_least(0);
  s.add("sample.nfe", &o.nfe, "reverse-time samplers: score evaluations (0 = the sampler's default)").at_least(0);
  s.add("sample.grid", &o.grid, "reverse-time samplers: time grid").one_of({"default", "karras", "log-snr", "uniform"});
  s.add("sample.rho", &o.rho, "karras grid: rho").positive();
  s.add("sample.t_end", &o.t_end, "reverse-time samplers: last grid time (0 = the process' t_min)").non_negative();
  s.add("sample.predictor", &o.predictor, "pc: predictor")
      .one_of({"ancestral", "ddim", "em", "none", "ode-euler", "reverse-diffusion"});
  s.add("sample.corrector", &o.corrector, "pc: corrector").one_of({"langevin", "none"});
  s.add("sample.snr", &o.snr, "Langevin corrector: signal-to-noise ratio").non_negative();
  s.add("sample.corrector_steps", &o.corrector_steps, "Langevin corrector: steps per grid time").at_least(1);
  s.add("sample.eta", &o.eta, "ddim: stochasticity (0 deterministic, 1 DDPM)").in_range(0, 1);
  s.add("sample.s_churn", &o.s_churn, "edm: churn").non_negative();
  s.add("sample.s_tmin", &o.s_tmin, "edm: smallest sigma with churn").non_negative();
  s.add("sample.s_tmax", &o.s_tmax, "edm: largest sigma with churn").non_negative();
  s.add("sample.s_noise", &o.s_noise, "edm: noise inflation").positive();
  s.add("sample.rtol", &o.rtol, "ode-rk45: relative tolerance").positive();
  s.add("sample.atol", &o.atol, "ode-rk45: absolute tolerance").positive();
  s.add("sample.denoise", &o.denoise, "finish with a Tweedie denoising step");
  s.add("sample.use_ema", &o.use_ema, "sample with the EMA weights");
  s.add("sample.guide", &o.guide,
        "autoguidance: a weaker checkpoint of the same process (\"step-N\" of the run, or a path); \"\" = none");
  s.add("sample.guidance", &o.guidance, "autoguidance weight w: s_guide + w (s_model - s_guide)").non_negative();
  s.add("sample.precision", &o.precision,
        "MLP hidden-layer products while sampling: bfloat16 is 2-4x faster on CPUs with AVX-512 BF16 or AMX, "
        "scores within about 1e-2 relative")
      .one_of({"bfloat16", "float32"});
  s.add("sample.init", &o.init, "initial state").one_of({"prior", "uniform"});
  s.add("sample.init_low", &o.init_low, "uniform init: lower bound");
  s.add("sample.init_high", &o.init_high, "uniform init: upper bound");
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
  bind(s, sample);
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
  require(sample.init_low < sample.init_high, "sample.init_low ({}) must be smaller than sample.init_high ({})",
          sample.init_low, sample.init_high);
  require(sample.guidance == 1.0 || !sample.guide.empty(),
          "sample.guidance = {} needs sample.guide (a weaker checkpoint: \"step-N\" of the run, or a path)",
          sample.guidance);
  if (auto step = guide_step(sample.guide))
    require(*step <= train.steps, "sample.guide = {} is beyond the run's train.steps = {}", sample.guide, train.steps);
  auto noise = make_process(process);
  scorediff::validate(objective, *noise);
  check_sampler(sample, *noise);
}

std::string Config::to_toml() { return schema().to_toml(); }

Config config_from_toml(const std::string& text, const std::string& origin, const std::vector<std::string>& assignments) {
  Config config;
  Schema schema = config.schema();
  schema.load_string(text, origin);
  for (const auto& a : assignments) schema.set(a);
  config.validate();
  return config;
}

Config load_config(const std::string& name_or_path, const std::vector<std::string>& assignments) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(name_or_path, ec)) {
    Config config;
    Schema schema = config.schema();
    schema.load_file(name_or_path);
    for (const auto& a : assignments) schema.set(a);
    config.validate();
    return config;
  }
  auto names = preset_names();
  bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                         std::filesystem::path(name_or_path).extension() == ".toml";
  if (looks_like_path) fail("config file '{}' not found", name_or_path);
  if (std::find(names.begin(), names.end(), name_or_path) == names.end())
    fail("unknown preset '{}' (and no such file); presets: {}", name_or_path, join_names(names));
  return config_from_toml(preset_text(name_or_path), "preset " + name_or_path, assignments);
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
