// Samplers by name, driven by the [sample] section of a configuration.
#pragma once
#include <ATen/core/Generator.h>

#include "scorediff/core/registry.hpp"
#include "scorediff/samplers/sampler.hpp"

namespace scorediff {

struct SampleOptions;

// snapshots: record intermediate states (ald: the end of each level; langevin: 10 evenly spaced).
using SamplerEntry = std::function<SampleResult(const ScoreFn&, const NoiseProcess&, torch::Tensor x_init,
                                                const SampleOptions&, bool snapshots, at::Generator&,
                                                const StepCallback&)>;
void register_builtins(Registry<SamplerEntry>& registry);
const Registry<SamplerEntry>& samplers();

// One line naming the problem when the sampler cannot run on this process (ancestral needs vp, ald a
// ladder) or its options do not fit it (t_end outside the process' times, nfe too small).
void check_sampler(const SampleOptions& options, const NoiseProcess& process);
// Names of the samplers that run on this process.
std::vector<std::string> samplers_for(const NoiseProcess& process);
// The score evaluations a reverse-time sampler spends by default (0 for ald, langevin, ode-rk45).
int64_t default_nfe(const std::string& sampler);
// The DiffusionOptions of a reverse-time sampler: grid intervals from sample.nfe, default grid per sampler
// and process.
DiffusionOptions diffusion_options(const SampleOptions& options, const NoiseProcess& process);

// The initial state [n, dim] per sample.init: the process' prior or uniform in [init_low, init_high]^D.
torch::Tensor initial_state(const SampleOptions& options, const NoiseProcess& process, int64_t n, int64_t dim,
                            at::Generator& gen, const torch::TensorOptions& tensor_options = {});

// Draws options.n samples with the configured sampler, with a progress bar unless quiet.
SampleResult run_sampler(const SampleOptions& options, const ScoreFn& score, const NoiseProcess& process, int64_t dim,
                         at::Generator& gen, bool quiet, bool snapshots = false);

}  // namespace scorediff
