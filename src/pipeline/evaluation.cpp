#include "scorediff/pipeline/evaluation.hpp"

#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/metrics/metrics.hpp"

namespace scorediff {

nlohmann::json SampleMetrics::to_json() const {
  nlohmann::json j = {{"n", n},
                      {"nan_count", nan_count},
                      {"swd", swd},
                      {"swd_data_vs_data", swd_data_vs_data},
                      {"max_radius_ratio", max_radius_ratio}};
  if (!mode_weights.empty()) {
    j["mode_weights"] = mode_weights;
    j["true_weights"] = true_weights;
  }
  return j;
}

SampleMetrics evaluate_samples(const ToyDataset& dataset, const torch::Tensor& samples, uint64_t seed,
                               int64_t projections, int reference_sets) {
  require(samples.dim() == 2 && samples.size(1) == dataset.dim(), "samples of shape [{}] do not match the data dimension {}",
          fmt::join(samples.sizes(), ", "), dataset.dim());
  require(reference_sets >= 1, "the SWD needs at least one reference set, got {}", reference_sets);
  SampleMetrics m;
  torch::Tensor x = samples.to(torch::kCPU, torch::kFloat32);
  m.n = x.size(0);
  m.nan_count = count_non_finite(x);
  torch::Tensor finite = x.index({torch::isfinite(x).all(1)});
  at::Generator gen = make_generator(derive_seed(seed, "eval"));
  double largest_data_norm = 0;
  // A finite table: its held-out rows are the reference and its training rows the floor's other set.
  const torch::Tensor held_out = dataset.held_out();
  for (int r = 0; r < reference_sets; ++r) {
    torch::Tensor reference = held_out.defined() ? held_out : dataset.sample(m.n, gen);
    torch::Tensor second = held_out.defined() ? dataset.sample(std::numeric_limits<int64_t>::max(), gen) : dataset.sample(m.n, gen);
    largest_data_norm = std::max(largest_data_norm, reference.norm(2, 1).max().item<double>());
    // The same projections for both figures of one reference set.
    at::Generator proj = make_generator(derive_seed(seed, "swd-" + std::to_string(r)));
    at::Generator proj_again = proj.clone();
    if (finite.size(0) > 0) m.swd += sliced_wasserstein(finite, reference, projections, proj) / reference_sets;
    m.swd_data_vs_data += sliced_wasserstein(second, reference, projections, proj_again) / reference_sets;
  }
  if (finite.size(0) > 0) {
    m.max_radius_ratio = finite.norm(2, 1).max().item<double>() / largest_data_norm;
  } else {
    m.swd = m.max_radius_ratio = std::numeric_limits<double>::infinity();
  }
  if (const GaussianMixture* mixture = dataset.mixture(); mixture != nullptr && mixture->components() <= 64) {
    m.mode_weights = mode_weights(x, mixture->means());
    torch::Tensor w = mixture->weights();
    for (int64_t k = 0; k < w.size(0); ++k) m.true_weights.push_back(w[k].item<double>());
  }
  return m;
}

}  // namespace scorediff
