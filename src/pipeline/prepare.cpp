#include "scorediff/pipeline/prepared.hpp"

#include <torch/torch.h>

#include <utility>

#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/models/analytic.hpp"

namespace scorediff {

Prepared prepare(Config& config) {
  set_threads(static_cast<int>(config.run.threads), workload_of(config.model));
  c10::Device device = parse_device(config.run.device);
  static bool warned = false;
  if (config.model.name == "unet" && config.model.conv_precision == "bfloat16" && device.is_cpu() &&
      !cpu_has_bfloat16_arithmetic() && !std::exchange(warned, true))
    fmt::print(stderr,
               "scorediff: warning: model.conv_precision = bfloat16, but this CPU has no bfloat16 arithmetic (AVX-512 "
               "BF16, AMX); --set model.conv_precision=float32 is likely faster here\n");
  Prepared p;
  p.dataset = make_dataset(config.data);
  p.dataset->record(config.data);
  p.process = make_process(config.process);
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "data"));
  p.train_data = p.dataset->sample(config.data.n_train, gen);
  config.model.image_shape = p.dataset->image_shape();
  if (config.model.sigma_data == 0.0) {
    torch::Tensor centred = p.train_data - p.train_data.mean(0, true);
    config.model.sigma_data = std::sqrt(centred.pow(2).mean().item<double>());
  }
  p.train_data = p.train_data.to(device);
  if (const GaussianMixture* mixture = p.dataset->mixture())
    p.reference = mixture_score_fn(std::shared_ptr<const GaussianMixture>(p.dataset, mixture), p.process);
  return p;
}

}  // namespace scorediff
