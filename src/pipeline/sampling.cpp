#include "scorediff/pipeline/sampling.hpp"

#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/pipeline/config.hpp"

namespace scorediff {

void register_builtins(Registry<SamplerEntry>& r) {
  r.add("ald", [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
                  bool snapshots, at::Generator& gen, const StepCallback& callback) {
    AnnealedLangevinOptions options;
    options.eps = o.eps;
    options.steps_per_level = o.steps_per_level;
    options.denoise = o.denoise;
    options.snapshots = snapshots;
    return sample_annealed_langevin(score, process, std::move(x), options, gen, callback);
  }, "annealed Langevin dynamics over the process' levels (seed 002 Alg. 1)");
  r.add("langevin", [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
                       bool snapshots, at::Generator& gen, const StepCallback& callback) {
    LangevinOptions options;
    options.step_size = o.step_size;
    options.steps = o.steps;
    options.denoise = o.denoise;
    options.snapshots = snapshots ? 10 : 0;
    return sample_langevin(score, process, std::move(x), options, gen, callback);
  }, "Langevin dynamics at the smallest noise level");
}

const Registry<SamplerEntry>& samplers() { return builtin_registry<SamplerEntry>("sampler"); }

torch::Tensor initial_state(const SampleOptions& o, const NoiseProcess& process, int64_t n, int64_t dim,
                            at::Generator& gen, const torch::TensorOptions& tensor_options) {
  if (o.init == "uniform") return o.init_low + (o.init_high - o.init_low) * torch::rand({n, dim}, gen, tensor_options);
  return process.prior_sample(n, dim, gen, tensor_options);
}

SampleResult run_sampler(const SampleOptions& o, const ScoreFn& score, const NoiseProcess& process, int64_t dim,
                         at::Generator& gen, bool quiet, bool snapshots) {
  const SamplerEntry& sampler = samplers().get(o.sampler);
  torch::Tensor x = initial_state(o, process, o.n, dim, gen);
  Progress progress("sample " + o.sampler, 0, "step", quiet);
  SampleResult result = sampler(score, process, x, o, snapshots, gen, [&progress](int64_t done, int64_t total) {
    progress.set_total(total);
    progress.update(done);
  });
  progress.finish(fmt::format("{} NFE", result.nfe));
  return result;
}

}  // namespace scorediff
