// Sample quality of an image model: the dataset's classifier measures the samples and, as the floor,
// as many real held-out images, both against the same reference set of training images.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>

#include "scorediff/data/toy.hpp"
#include "scorediff/metrics/image_metrics.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff {

// Where `scorediff train-classifier` puts the classifier of a dataset by default:
// runs/classifier-<name>.safetensors, or runs/classifier-<name>-<size>.safetensors for a resized set.
std::filesystem::path default_classifier_path(const DataOptions& data);

// The classifier at `path` (default_classifier_path when empty), checked against the dataset; fails
// with one line telling how to train one when the default file is missing.
LoadedClassifier classifier_for(const ToyDataset& dataset, const DataOptions& data, const std::string& path);

// The dataset's classifier at default_classifier_path, trained (default options, seed 0) and saved there
// first when the file is missing, so an experiment runs from one command.
LoadedClassifier ensure_classifier(const ToyDataset& dataset, const DataOptions& data, bool quiet);

struct ImageEvaluation {
  ImageQuality samples;  // the model's samples
  ImageQuality real;     // held-out images, as many as samples: the floor every figure is read against
  std::string classifier;
  nlohmann::json to_json() const;  // fd_cls, kid_cls, ..., and the same with a _real suffix
};

// Which held-out images give the floor: all of them, or one half, so that a setting chosen on one half is
// reported on the other (the first half: the images the dataset holds out first).
enum class HeldOut { All, FirstHalf, SecondHalf };

// samples [N, C·H·W] in the dataset's pixel range; reference: up to 10 000 training images drawn with
// the "eval" stream of seed, the held-out images likewise (from `part` of them).
ImageEvaluation evaluate_images(const ToyDataset& dataset, const torch::Tensor& samples, LoadedClassifier& classifier,
                                uint64_t seed, HeldOut part = HeldOut::All);

// What `scorediff eval` prints: samples [N, D] in model units against `dataset` (made from `data`):
// evaluate_samples for points (projections, reference_sets), evaluate_images for images with the classifier at
// `classifier` (default_classifier_path when empty). The caller has checked the shape and the values.
nlohmann::json evaluate_model_samples(const ToyDataset& dataset, const DataOptions& data, const torch::Tensor& samples,
                                      uint64_t seed, int64_t projections, int reference_sets,
                                      const std::string& classifier);

// Flat samples [N, C·H·W] in the dataset's pixel range -> images [N, C, H, W] in [0, 1].
torch::Tensor to_unit_images(const ToyDataset& dataset, const torch::Tensor& samples);

// Flat samples [N, C·H·W] as one PNG grid, `cols` images per row (0: a square-ish grid).
void save_image_grid(const std::filesystem::path& path, const ToyDataset& dataset, const torch::Tensor& samples,
                     int64_t cols = 0);

// n samples of `model` with the run's sampler, drawn from the "grid" stream of its seed (the same noise
// at every call, so grids along a run compare), written as a PNG grid.
void write_sample_grid(const std::filesystem::path& path, const Config& config, const Prepared& prepared,
                       ScoreModel& model, int64_t n);

}  // namespace scorediff
