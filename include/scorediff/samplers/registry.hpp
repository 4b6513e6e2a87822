// Samplers by name: each registry entry is a spec that says everything the rest of the program needs to
// know about a sampler (its kind, score evaluations per step, default NFE and grid, the processes it
// fits, the sample.* keys it reads) next to the function that runs it. Adding a sampler is one file
// with its function and spec, and one registration line in src/samplers/builtin.cpp.
#pragma once
#include <ATen/core/Generator.h>

#include <functional>
#include <string>
#include <vector>

#include "scorediff/core/registry.hpp"
#include "scorediff/samplers/sample_options.hpp"
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

// Langevin: its own step counts, no grid. ReverseSde: a stochastic grid sampler. Ode: deterministic on
// the grid. Adaptive: deterministic, picks its own steps between the grid's ends. Only Langevin and
// ReverseSde samplers receive a generator.
enum class SamplerKind { Langevin, ReverseSde, Ode, Adaptive };
const char* kind_name(SamplerKind kind);

// What a registered sampler receives besides the score, the process and the starting point.
struct SamplerCall {
  GridOptions grid;               // grid samplers: from sample.nfe, grid, rho, t_end, denoise (grid_options)
  at::Generator* gen = nullptr;   // Langevin and ReverseSde kinds only
  bool snapshots = false;         // record intermediate states (ald: each level's end; others: 10)
  StepCallback callback;
};

using SamplerFn = std::function<SampleResult(const ScoreFn&, const NoiseProcess&, torch::Tensor x_init,
                                             const SampleOptions&, const SamplerCall&)>;

struct SamplerSpec {
  std::string name;
  std::string help;
  SamplerKind kind = SamplerKind::ReverseSde;
  SamplerFn run;
  // Grid samplers: score evaluations per grid interval (the final Tweedie step adds one); empty = 1.
  std::function<int64_t(const SampleOptions&)> nfe_per_step;
  int64_t default_nfe = 0;                   // grid samplers: the budget when sample.nfe = 0
  GridKind default_grid = GridKind::Uniform;  // under sample.grid = "default"; the edm process always karras
  // false: the sampler's last evaluation is its answer (consistency), so no final Tweedie step and no
  // evaluation reserved for it, whatever sample.denoise says.
  bool final_denoise = true;
  // The processes it runs on; empty = every process. fits_text says which, for messages and --help.
  std::function<bool(const NoiseProcess&)> fits;
  std::string fits_text = "any";
  // The sample.* keys it reads (without "sample."), besides the ones read for every sampler
  // (common_sample_keys). Grid samplers list grid_sample_keys() among them.
  std::vector<std::string> keys;
  // Checks of its own (combinations of keys, process), one line each; may be empty.
  std::function<void(const SampleOptions&, const NoiseProcess&)> check;
};

// Keys the pipeline reads whatever the sampler: sampler, n, denoise, use_ema, guide, guidance, precision,
// init, init_low, init_high, class, cfg.
const std::vector<std::string>& common_sample_keys();
// Keys every grid sampler reads: nfe, grid, rho, t_end.
const std::vector<std::string>& grid_sample_keys();

// Spec helpers for the common cases: a grid sampler that reads only the grid keys. The ODE form calls fn without
// a generator; the reverse-SDE form with one. Callers adjust the rest (nfe_per_step, fits, keys, check).
using OdeGridFn = SampleResult (*)(const ScoreFn&, const NoiseProcess&, torch::Tensor, const GridOptions&,
                                   const StepCallback&);
using SdeGridFn = SampleResult (*)(const ScoreFn&, const NoiseProcess&, torch::Tensor, const GridOptions&,
                                   at::Generator&, const StepCallback&);
SamplerSpec ode_grid_spec(std::string name, std::string help, OdeGridFn fn, int64_t default_nfe,
                          GridKind default_grid = GridKind::Uniform);
SamplerSpec sde_grid_spec(std::string name, std::string help, SdeGridFn fn, int64_t default_nfe);

void register_builtins(Registry<SamplerSpec>& registry);
const Registry<SamplerSpec>& samplers();

// Names of the samplers that run on this process.
std::vector<std::string> samplers_for(const NoiseProcess& process);
// One line naming the problem when the sampler cannot run on this process (ancestral needs vp, ald a
// ladder) or its options do not fit it (t_end outside the process' times, nfe too small).
void check_sampler(const SampleOptions& options, const NoiseProcess& process);
// A grid sampler's grid: intervals from sample.nfe (or the spec's default) and its evaluations per
// interval, the spec's default grid unless sample.grid names one.
GridOptions grid_options(const SampleOptions& options, const NoiseProcess& process);
// Keys among `assigned` (full "sample.x" names, e.g. those a config file or --set assigned) that the
// configured sampler does not read.
std::vector<std::string> unread_sample_keys(const SampleOptions& options, const std::vector<std::string>& assigned);
// The one-line warning for them ("" when there are none): names the sampler and the keys it reads.
std::string unread_keys_warning(const SampleOptions& options, const std::vector<std::string>& assigned);
// One line per sampler: name, kind, default NFE, processes, keys; for --help and experiment --list.
std::string describe_samplers();

// The initial state [n, dim] per sample.init on the generator's device: the process' prior or uniform in
// [init_low, init_high]^D.
torch::Tensor initial_state(const SampleOptions& options, const NoiseProcess& process, int64_t n, int64_t dim,
                            at::Generator& gen);

// Whether sample.t_start or sample.sigma_start asks to edit given points, and the time they start from (the
// process' t_max when neither is set). One line for both set or a start outside the process.
bool editing(const SampleOptions& options);
double start_time(const SampleOptions& options, const NoiseProcess& process);

// Draws options.n samples of dimension dim with the configured sampler, on the generator's device, with
// a progress bar unless quiet. start [n, dim] (optional): the initial state itself (saved noise, or the
// latents of `encode`), or, when editing (sample.t_start / sigma_start), points in model units noised to the
// start time first (SDEdit).
SampleResult run_sampler(const SampleOptions& options, const ScoreFn& score, const NoiseProcess& process, int64_t dim,
                         at::Generator& gen, bool quiet, bool snapshots = false, const torch::Tensor& start = {});

}  // namespace scorediff
