#include "scorediff/pipeline/image_evaluation.hpp"

#include <torch/torch.h>

#include "scorediff/core/error.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/png.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/sampling_score.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

constexpr int64_t kReferenceImages = 10000;

// n rows of set [M, ...] chosen without replacement by gen (all of them, in order, when n >= M).
torch::Tensor subset(const torch::Tensor& set, int64_t n, at::Generator& gen) {
  if (n >= set.size(0)) return set;
  return set.index_select(0, torch::randperm(set.size(0), gen, torch::kInt64).slice(0, 0, n));
}

}  // namespace

std::filesystem::path default_classifier_path(const DataOptions& data) {
  std::string name = "classifier-" + data.name;
  if (data.image_size > 0) name += "-" + std::to_string(data.image_size);
  return std::filesystem::path("runs") / (name + ".safetensors");
}

LoadedClassifier classifier_for(const ToyDataset& dataset, const DataOptions& data, const std::string& path) {
  require(dataset.images() != nullptr, "dataset '{}' has no images to classify", data.name);
  std::filesystem::path file = path.empty() ? default_classifier_path(data) : std::filesystem::path(path);
  std::error_code ec;
  if (path.empty() && !std::filesystem::exists(file, ec)) {
    std::string size = data.image_size > 0 ? fmt::format(" --image-size {}", data.image_size) : "";
    fail("no classifier for {} at '{}'; train one with: scorediff train-classifier --data {}{}", data.name,
         file.string(), data.name, size);
  }
  LoadedClassifier loaded = load_classifier(file);
  check_classifier_matches(loaded, data.name, dataset.image_shape());
  return loaded;
}

LoadedClassifier ensure_classifier(const ToyDataset& dataset, const DataOptions& data, bool quiet) {
  require(dataset.images() != nullptr && dataset.images()->classes > 0, "dataset '{}' has no labels to train a classifier on",
          data.name);
  const std::filesystem::path file = default_classifier_path(data);
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    if (!quiet) fmt::print(stderr, "no classifier at '{}': training one\n", file.string());
    ensure_output_dir(file.parent_path());
    TrainedClassifier trained = train_classifier(*dataset.images(), ClassifierOptions{}, 0, quiet);
    save_classifier(file, trained.classifier, data.name, trained.test_accuracy);
  }
  return classifier_for(dataset, data, file.string());
}

torch::Tensor to_unit_images(const ToyDataset& dataset, const torch::Tensor& samples) {
  std::vector<int64_t> shape = dataset.image_shape();
  require(shape.size() == 3, "dataset has no image shape");
  require(samples.dim() == 2 && samples.size(1) == shape[0] * shape[1] * shape[2],
          "samples have shape [{}], expected [N, {}] for {}x{}x{} images", fmt::join(samples.sizes(), ", "),
          shape[0] * shape[1] * shape[2], shape[0], shape[1], shape[2]);
  return range_to_unit(samples.to(torch::kCPU, torch::kFloat32), dataset.pixel_range())
      .reshape({samples.size(0), shape[0], shape[1], shape[2]});
}

ImageEvaluation evaluate_images(const ToyDataset& dataset, const torch::Tensor& samples, LoadedClassifier& classifier,
                                uint64_t seed, HeldOut part) {
  const ImageData* data = dataset.images();
  require(data != nullptr, "evaluate_images needs an image dataset");
  at::Generator gen = make_generator(derive_seed(seed, "eval"));
  torch::Tensor reference = subset(data->train.images, kReferenceImages, gen);
  torch::Tensor images = to_unit_images(dataset, samples);
  const int64_t half = data->test.images.size(0) / 2;
  const torch::Tensor& test = data->test.images;
  torch::Tensor pool = part == HeldOut::All         ? test
                       : part == HeldOut::FirstHalf ? test.narrow(0, 0, half)
                                                    : test.narrow(0, half, test.size(0) - half);
  torch::Tensor held_out = subset(pool, images.size(0), gen);
  ImageEvaluation out;
  out.classifier = classifier.path;
  out.samples = image_quality(classifier.classifier, images, reference, data->classes, 0.9, seed);
  out.real = image_quality(classifier.classifier, held_out, reference, data->classes, 0.9, seed);
  return out;
}

void save_image_grid(const std::filesystem::path& path, const ToyDataset& dataset, const torch::Tensor& samples,
                     int64_t cols) {
  torch::Tensor images = to_unit_images(dataset, samples);
  if (cols <= 0) cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(images.size(0)))));
  ensure_output_dir(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
  write_png(path, image_grid(images, cols));
}

void write_sample_grid(const std::filesystem::path& path, const Config& config, const Prepared& prepared,
                       ScoreModel& model, int64_t n) {
  SampleOptions options = config.sample;
  options.n = n;
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "grid"), prepared.train_data.device());
  // Class-conditional models: sample.class and sample.cfg as configured, over the grid's n samples.
  const ScoreFn score = labelled_score_fn(model, prepared, sample_labels(options.label, model->classes(), n), options.cfg);
  torch::Tensor samples = run_sampler(options, score, *prepared.process,
                                      prepared.train_data.size(1), gen, /*quiet=*/true)
                              .samples;
  save_image_grid(path, *prepared.dataset, samples);
}

nlohmann::json ImageEvaluation::to_json() const {
  nlohmann::json out = samples.to_json();
  // Held in a named object: items() of a temporary would dangle once the range expression ends.
  const nlohmann::json held_out = real.to_json();
  for (const auto& [key, value] : held_out.items()) out[key + "_real"] = value;
  out["classifier"] = classifier;
  return out;
}

nlohmann::json evaluate_model_samples(const ToyDataset& dataset, const DataOptions& data, const torch::Tensor& samples,
                                      uint64_t seed, int64_t projections, int reference_sets,
                                      const std::string& classifier) {
  if (dataset.images()) {
    LoadedClassifier loaded = classifier_for(dataset, data, classifier);
    return evaluate_images(dataset, samples, loaded, seed).to_json();
  }
  return evaluate_samples(dataset, samples, seed, projections, reference_sets).to_json();
}

}  // namespace scorediff
