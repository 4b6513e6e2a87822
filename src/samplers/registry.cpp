#include "scorediff/samplers/registry.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "scorediff/core/progress.hpp"

namespace scorediff {

const char* kind_name(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::Langevin: return "langevin";
    case SamplerKind::ReverseSde: return "reverse-sde";
    case SamplerKind::Ode: return "ode";
    case SamplerKind::Adaptive: return "adaptive";
  }
  return "?";
}

const std::vector<std::string>& common_sample_keys() {
  static const std::vector<std::string> keys = {"sampler",   "n",    "denoise",  "use_ema",   "guide", "guidance",
                                                "precision", "init", "init_low", "init_high", "class", "cfg",
                                                "classifier", "classifier_scale",
                                                "t_start",   "sigma_start"};
  return keys;
}

const std::vector<std::string>& grid_sample_keys() {
  static const std::vector<std::string> keys = {"nfe", "grid", "rho", "t_end"};
  return keys;
}

const Registry<SamplerSpec>& samplers() { return builtin_registry<SamplerSpec>("sampler"); }

SamplerSpec ode_grid_spec(std::string name, std::string help, OdeGridFn fn, int64_t default_nfe, GridKind grid) {
  SamplerSpec s;
  s.name = std::move(name);
  s.help = std::move(help);
  s.kind = SamplerKind::Ode;
  s.default_nfe = default_nfe;
  s.default_grid = grid;
  s.keys = grid_sample_keys();
  s.run = [fn](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions&,
               const SamplerCall& call) { return fn(score, process, std::move(x), call.grid, call.callback); };
  return s;
}

SamplerSpec sde_grid_spec(std::string name, std::string help, SdeGridFn fn, int64_t default_nfe) {
  SamplerSpec s;
  s.name = std::move(name);
  s.help = std::move(help);
  s.kind = SamplerKind::ReverseSde;
  s.default_nfe = default_nfe;
  s.keys = grid_sample_keys();
  if (fn)
    s.run = [fn](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions&,
                 const SamplerCall& call) { return fn(score, process, std::move(x), call.grid, *call.gen, call.callback); };
  return s;
}

namespace {

bool is_grid(const SamplerSpec& spec) { return spec.kind != SamplerKind::Langevin; }

bool fits(const SamplerSpec& spec, const NoiseProcess& process) { return !spec.fits || spec.fits(process); }

}  // namespace

std::vector<std::string> samplers_for(const NoiseProcess& process) {
  std::vector<std::string> out;
  for (const auto& name : samplers().names())
    if (fits(samplers().get(name), process)) out.push_back(name);
  return out;
}

GridOptions grid_options(const SampleOptions& o, const NoiseProcess& process) {
  const SamplerSpec& spec = samplers().get(o.sampler);
  GridOptions g;
  const int64_t final_step = o.denoise && spec.final_denoise ? 1 : 0;
  if (spec.kind == SamplerKind::Adaptive) {
    g.steps = 1;  // the grid's ends only
  } else {
    const int64_t nfe = o.nfe > 0 ? o.nfe : spec.default_nfe;
    const int64_t per_step = std::max<int64_t>(1, spec.nfe_per_step ? spec.nfe_per_step(o) : 1);
    g.steps = (nfe - final_step) / per_step;
    require(g.steps >= 1, "sample.nfe = {} is too small for sampler '{}': it needs at least {}", nfe, o.sampler,
            per_step + final_step);
  }
  if (o.grid != "default") g.grid = parse_grid(o.grid);
  else g.grid = process.name() == "edm" ? GridKind::Karras : spec.default_grid;
  g.rho = o.rho;
  g.t_end = o.t_end;
  if (editing(o)) g.t_start = start_time(o, process);
  g.denoise = o.denoise && spec.final_denoise;
  return g;
}

void check_sampler(const SampleOptions& o, const NoiseProcess& process) {
  const SamplerSpec& spec = samplers().get(o.sampler);
  require(fits(spec, process), "sample.sampler = '{}' does not fit process '{}'; samplers for '{}': {}", o.sampler,
          process.name(), process.name(), join_names(samplers_for(process)));
  if (spec.check) spec.check(o, process);
  if (o.t_end > 0) process.check_time(o.t_end, "sample.t_end");
  if (is_grid(spec)) grid_options(o, process);
}

std::vector<std::string> unread_sample_keys(const SampleOptions& o, const std::vector<std::string>& assigned) {
  const SamplerSpec& spec = samplers().get(o.sampler);
  const auto& common = common_sample_keys();
  std::vector<std::string> out;
  for (const auto& full : assigned) {
    if (full.rfind("sample.", 0) != 0) continue;
    const std::string key = full.substr(7);
    if (std::find(common.begin(), common.end(), key) != common.end()) continue;
    if (std::find(spec.keys.begin(), spec.keys.end(), key) != spec.keys.end()) continue;
    if (std::find(out.begin(), out.end(), full) == out.end()) out.push_back(full);
  }
  return out;
}

std::string unread_keys_warning(const SampleOptions& o, const std::vector<std::string>& assigned) {
  auto unread = unread_sample_keys(o, assigned);
  if (unread.empty()) return {};
  const SamplerSpec& spec = samplers().get(o.sampler);
  std::vector<std::string> reads;
  for (const auto& key : spec.keys) reads.push_back("sample." + key);
  return fmt::format("sampler '{}' does not read {} (set but ignored); it reads {}", o.sampler, join_names(unread),
                     reads.empty() ? std::string("no sampler-specific keys") : join_names(reads));
}

std::string describe_samplers() {
  std::string out = fmt::format("{:<19} {:<12} {:>11}  {:<9} {}\n", "sampler", "kind", "default NFE", "processes",
                                "sample.* keys it reads (besides n, denoise, init, guide...)");
  for (const auto& name : samplers().names()) {
    const SamplerSpec& s = samplers().get(name);
    std::string nfe = s.kind == SamplerKind::Langevin ? "own steps"
                      : s.kind == SamplerKind::Adaptive ? "adaptive"
                                                        : std::to_string(s.default_nfe);
    out += fmt::format("{:<19} {:<12} {:>11}  {:<9} {}\n", name, kind_name(s.kind), nfe, s.fits_text,
                       join_names(s.keys));
  }
  return out;
}

torch::Tensor initial_state(const SampleOptions& o, const NoiseProcess& process, int64_t n, int64_t dim,
                            at::Generator& gen) {
  const auto options = torch::TensorOptions().device(gen.device());
  if (o.init == "uniform") return o.init_low + (o.init_high - o.init_low) * torch::rand({n, dim}, gen, options);
  return process.prior_sample(n, dim, gen, options);
}

bool editing(const SampleOptions& o) { return o.t_start > 0 || o.sigma_start > 0; }

double start_time(const SampleOptions& o, const NoiseProcess& process) {
  require(o.t_start == 0 || o.sigma_start == 0, "sample.t_start and sample.sigma_start both set: give one");
  if (o.t_start > 0) {
    process.check_time(o.t_start, "sample.t_start");
    return o.t_start;
  }
  if (o.sigma_start > 0) {
    require(o.sigma_start >= process.sigma_min() && o.sigma_start <= process.sigma_max(),
            "sample.sigma_start = {} is outside the process' noise levels [{}, {}]", o.sigma_start, process.sigma_min(),
            process.sigma_max());
    return process.t_at_sigma(o.sigma_start);
  }
  return process.t_max();
}

SampleResult run_sampler(const SampleOptions& o, const ScoreFn& score, const NoiseProcess& process, int64_t dim,
                         at::Generator& gen, bool quiet, bool snapshots, const torch::Tensor& start) {
  const SamplerSpec& spec = samplers().get(o.sampler);
  torch::Tensor x;
  if (start.defined()) {
    require(start.dim() == 2 && start.size(1) == dim && start.size(0) == o.n,
            "the initial points are {}, the sampler expects [{}, {}]", fmt::format("{}", start.sizes()), o.n, dim);
    x = start.to(gen.device(), torch::kFloat32);
    if (editing(o)) {
      // SDEdit: x_t = m(t) x + s(t) ε at the start time.
      torch::Tensor t = torch::full({1}, start_time(o, process), torch::kFloat64);
      x = process.mean_coef(t).item<double>() * x +
          process.std(t).item<double>() * torch::randn(x.sizes(), gen, x.options());
    }
  } else {
    require(!editing(o), "sample.t_start / sample.sigma_start edit given points: pass them (sample --init points.npy)");
    x = initial_state(o, process, o.n, dim, gen);
  }
  Progress progress("sample " + o.sampler, 0, "step", quiet);
  SamplerCall call;
  if (is_grid(spec)) {
    call.grid = grid_options(o, process);
    call.grid.snapshots = snapshots ? 10 : 0;
  }
  if (spec.kind == SamplerKind::Langevin || spec.kind == SamplerKind::ReverseSde) call.gen = &gen;
  call.snapshots = snapshots;
  call.callback = [&progress](int64_t done, int64_t total) {
    progress.set_total(total);
    progress.update(done);
  };
  SampleResult result = spec.run(score, process, x, o, call);
  progress.finish(fmt::format("{} NFE", result.nfe));
  return result;
}

}  // namespace scorediff
