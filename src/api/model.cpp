// The public Model (scorediff/scorediff.hpp) over the pipeline: the same functions `scorediff sample`,
// `likelihood` and `eval` call, so a seed gives the command's samples bit for bit.
#include <torch/torch.h>

#include "api/arrays.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/likelihood/ode_likelihood.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/pipeline/sampling_score.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/scorediff.hpp"

namespace scorediff {

namespace {

// A model's score at some points and each row's time, on the model's device.
struct ScoreAt {
  torch::Tensor x, t, score;
};

// The loaded state of a Model (a template: Model::Impl is private to Model).
template <class Impl>
Impl& checked(const std::shared_ptr<Impl>& impl) {
  require(impl != nullptr, "this scorediff::Model holds no checkpoint (use Model::load)");
  return *impl;
}

// The time of each row's noise level: sigma holds one value (every row) or one per row, each inside the process'
// noise range, as `scorediff denoise --sigma` requires.
torch::Tensor row_times(const NoiseProcess& process, const std::vector<double>& sigma, int64_t rows) {
  require(sigma.size() == 1 || static_cast<int64_t>(sigma.size()) == rows,
          "sigma has {} values for {} rows: give one, or one per row", sigma.size(), rows);
  std::vector<double> t;
  for (double s : sigma) {
    require(std::isfinite(s) && s >= process.sigma_min() && s <= process.sigma_max(),
            "sigma {} is outside the model's noise range [{}, {}]", s, process.sigma_min(), process.sigma_max());
    t.push_back(process.t_at_sigma(s));
  }
  const torch::Tensor times = torch::tensor(t, torch::kFloat64).to(torch::kFloat32);
  return sigma.size() == 1 ? times.expand({rows}).contiguous() : times;
}

}  // namespace

struct Model::Impl {
  LoadedModel loaded;
  std::filesystem::path checkpoint;
  int threads = 1;
  torch::Tensor last_labels;

  // The threads of this model's run (or the load option), set before each computation: the setting is
  // process-wide, and another Model may have changed it.
  void use_threads(int count) const { set_threads(count, workload_of(loaded.config.model)); }
  int64_t dim() const { return loaded.prepared.train_data.size(1); }
  ScoreFn plain_score() const { return model_score_fn(loaded.model, loaded.prepared.process); }

  // The model's score at points x (model units) and noise levels sigma (one, or one per row), on its device.
  ScoreAt score_at(const Array& x, const std::vector<double>& sigma) const;
};

ScoreAt Model::Impl::score_at(const Array& x, const std::vector<double>& sigma) const {
  const torch::Device device = loaded.prepared.train_data.device();
  ScoreAt at;
  at.x = api::to_points(x, dim(), "x").to(device);
  use_threads(threads);
  const NoiseProcess& process = *loaded.prepared.process;
  at.t = row_times(process, sigma, at.x.size(0)).to(device);
  torch::InferenceMode guard;
  at.score = plain_score()(at.x, at.t);
  return at;
}

Model Model::load(const std::string& checkpoint, const LoadOptions& options) {
  return api::guarded([&] {
    require(options.threads >= 0, "threads must be >= 0 (0: the run's), got {}", options.threads);
    auto impl = std::make_shared<Impl>();
    impl->loaded = load_trained(checkpoint, options.ema);
    impl->checkpoint = checkpoint;
    impl->threads = options.threads > 0 ? options.threads : static_cast<int>(impl->loaded.config.run.threads);
    Model model;
    model.impl_ = std::move(impl);
    return model;
  });
}

Array Model::sample(const SampleRequest& request) const {
  return api::guarded([&] {
    const Impl& impl = checked(impl_);
    require(request.n >= 0, "n must be >= 0 (0: the checkpoint's sample.n), got {}", request.n);
    require(request.nfe >= 0, "nfe must be >= 0 (0: the checkpoint's sample.nfe), got {}", request.nfe);
    require(request.cfg < 0 || std::isfinite(request.cfg), "cfg must be finite, got {}", request.cfg);
    // In the order `scorediff sample` applies them: --set first, then its options.
    std::vector<std::string> sets = request.sets;
    if (!request.sampler.empty()) sets.push_back("sample.sampler=" + request.sampler);
    if (request.n > 0) sets.push_back(fmt::format("sample.n={}", request.n));
    if (!request.classes.empty()) sets.push_back("sample.class=" + request.classes);
    if (request.cfg >= 0) sets.push_back(fmt::format("sample.cfg={}", request.cfg));
    if (request.nfe > 0) sets.push_back(fmt::format("sample.nfe={}", request.nfe));
    if (request.seed >= 0) sets.push_back(fmt::format("run.seed={}", request.seed));
    const Config config = with_command_sets(impl.loaded.config, sets, {"sample."});
    // --set run.threads=N for this call, as the command takes it; else the model's.
    impl.use_threads(config.run.threads != impl.loaded.config.run.threads ? static_cast<int>(config.run.threads)
                                                                            : impl.threads);
    const Prepared& p = impl.loaded.prepared;
    const ScoreFn score = sampling_score_fn(config, impl.loaded.model, p, run_dir_of(impl.checkpoint));
    SampleResult result = draw_samples(config, score, p, request.quiet);
    impl_->last_labels = sampling_labels(config, *impl.loaded.model);
    const std::vector<int64_t> image = p.dataset->image_shape();
    std::vector<int64_t> shape = image.empty() ? std::vector<int64_t>{impl.dim()} : image;
    shape.insert(shape.begin(), result.samples.size(0));
    return api::to_array(p.dataset->to_data_units(result.samples.to(torch::kCPU)), shape);
  });
}

std::vector<int64_t> Model::last_labels() const {
  return api::guarded([&]() -> std::vector<int64_t> {
    const Impl& impl = checked(impl_);
    if (!impl.last_labels.defined()) return {};
    const torch::Tensor labels = impl.last_labels.to(torch::kCPU, torch::kInt64).contiguous();
    return std::vector<int64_t>(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  });
}

Array Model::score(const Array& x, const std::vector<double>& sigma) const {
  return api::guarded([&] {
    const ScoreAt at = checked(impl_).score_at(x, sigma);
    return api::to_array(at.score.to(torch::kCPU), x.shape);
  });
}

Array Model::denoise(const Array& x, const std::vector<double>& sigma) const {
  return api::guarded([&] {
    const Impl& impl = checked(impl_);
    const ScoreAt at = impl.score_at(x, sigma);
    // Tweedie's mean, as `scorediff denoise` computes it: (x + std² s)/m.
    const NoiseProcess& process = *impl.loaded.prepared.process;
    const torch::Tensor m = process.mean_coef(at.t).unsqueeze(1), sd = process.std(at.t).unsqueeze(1);
    return api::to_array(((at.x + sd * sd * at.score) / m).to(torch::kCPU), x.shape);
  });
}

std::vector<double> Model::log_likelihood(const Array& x, const LikelihoodRequest& request) const {
  return api::guarded([&] {
    const Impl& impl = checked(impl_);
    require(request.divergence == "exact" || request.divergence == "hutchinson",
            "divergence must be exact or hutchinson, got '{}'", request.divergence);
    const torch::Tensor points = api::to_points(x, impl.dim(), "x").to(torch::kFloat64);
    impl.use_threads(impl.threads);
    scorediff::LikelihoodOptions options;
    options.divergence = request.divergence;
    const int64_t seed = request.seed >= 0 ? request.seed : impl.loaded.config.run.seed;
    at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(seed), "likelihood"));
    // The score `scorediff likelihood` integrates: the sampling score of the checkpoint's own settings.
    const ScoreFn score =
        sampling_score_fn(impl.loaded.config, impl.loaded.model, impl.loaded.prepared, run_dir_of(impl.checkpoint));
    const LikelihoodResult r = ode_log_likelihood(score, *impl.loaded.prepared.process, points, options, gen);
    const torch::Tensor lp = r.log_prob.to(torch::kCPU, torch::kFloat64).contiguous();
    return std::vector<double>(lp.data_ptr<double>(), lp.data_ptr<double>() + lp.numel());
  });
}

std::map<std::string, Array> Model::weights() const {
  return api::guarded([&] {
    const Impl& impl = checked(impl_);
    std::map<std::string, Array> out;
    for (const auto& item : impl.loaded.model->named_parameters(true)) out[item.key()] = api::to_array(item.value());
    for (const auto& item : impl.loaded.model->named_buffers(true)) out[item.key()] = api::to_array(item.value());
    return out;
  });
}

std::vector<int64_t> Model::sample_shape() const {
  return api::guarded([&] {
    const Impl& impl = checked(impl_);
    const std::vector<int64_t> image = impl.loaded.prepared.dataset->image_shape();
    return image.empty() ? std::vector<int64_t>{impl.dim()} : image;
  });
}

int64_t Model::step() const {
  return api::guarded([&] { return checked(impl_).loaded.step; });
}

std::string Model::config_toml() const {
  return api::guarded([&] { return checked(impl_).loaded.config.to_toml(); });
}

std::map<std::string, double> evaluate(const Array& samples, const std::string& data, int64_t seed) {
  return api::guarded([&] {
    require(seed >= 0, "seed must be >= 0, got {}", seed);
    Config config;
    Schema schema = config.schema();
    schema.set("data.name=" + data);
    config.validate();
    std::shared_ptr<const ToyDataset> dataset = make_dataset(config.data);
    const torch::Tensor points = dataset->to_model_units(api::to_points(samples, dataset->dim(), "samples"));
    const nlohmann::json metrics =
        evaluate_model_samples(*dataset, config.data, points, static_cast<uint64_t>(seed), 1000, kReferenceSets, "");
    std::map<std::string, double> out;
    for (const auto& [key, value] : metrics.items())
      if (value.is_number()) out[key] = value.get<double>();
    return out;
  });
}

std::string version() { return SCOREDIFF_VERSION; }

}  // namespace scorediff
