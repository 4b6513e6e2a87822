// Image classifier for sample-quality evaluation: a small CNN trained per dataset, whose penultimate
// layer gives the features of the classifier Fréchet distance and KID (metrics/image_metrics.hpp).
// These are "-cls" metrics on our own network, not Inception FID: numbers compare only between runs
// measured with the same classifier file.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <string>
#include <vector>

#include "scorediff/data/images.hpp"

namespace scorediff {

struct ClassifierOptions {
  // Architecture (stored in the file): conv3x3(c)-conv3x3(c)-maxpool2 - conv3x3(2c)-conv3x3(2c)-maxpool2 -
  // adaptive average pool to at most 7×7 - linear(features) - ReLU - dropout - linear(classes).
  int64_t channels = 32;
  int64_t features = 128;
  // Training.
  double dropout = 0.3;    // on the features, training only
  int64_t epochs = 4;
  int64_t batch = 128;
  double lr = 2e-3;        // Adam, cosine-decayed to 0 over the run
  double weight_decay = 0.0;
  int64_t shift = 2;       // augmentation: random translation by up to ±shift pixels (0 = none)
};

class ClassifierImpl : public torch::nn::Module {
 public:
  // shape = {C, H, W} of the images; every parameter is drawn from gen (PyTorch's default init).
  ClassifierImpl(std::vector<int64_t> shape, int64_t classes, const ClassifierOptions& options, at::Generator& gen);

  // x [B, C, H, W] in [0, 1] (normalised inside by a fixed mean and std) -> features [B, F], after ReLU.
  torch::Tensor features(const torch::Tensor& x);
  // features [B, F] -> logits [B, classes]; dropout, when training, is applied by the caller before this.
  torch::Tensor head(const torch::Tensor& features);
  // x [B, C, H, W] -> logits [B, classes].
  torch::Tensor logits(const torch::Tensor& x) { return head(features(x)); }
  torch::Tensor forward(const torch::Tensor& x) { return logits(x); }

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t classes() const { return classes_; }
  int64_t feature_dim() const { return options_.features; }
  const ClassifierOptions& options() const { return options_; }

 private:
  std::vector<int64_t> shape_;
  int64_t classes_;
  ClassifierOptions options_;
  int64_t pooled_h_, pooled_w_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, conv4_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Classifier);

// Augmentation: x [B, C, H, W] -> each image translated by its own (dy, dx), uniform in [−shift, shift]²,
// edge pixels replicated into the uncovered border.
torch::Tensor random_shift(const torch::Tensor& x, int64_t shift, at::Generator& gen);

// x [N, C, H, W] -> logits [N, classes], in batches under NoGradGuard.
torch::Tensor classify(Classifier& classifier, const torch::Tensor& x, int64_t batch = 500);
// Fraction of set's images whose arg-max logit equals the label.
double classifier_accuracy(Classifier& classifier, const ImageSet& set);

struct TrainedClassifier {
  Classifier classifier{nullptr};
  double test_accuracy = 0.0;  // on data.test
};

// Adam on cross-entropy over data.train, batches drawn from a generator seeded by `seed`; the returned
// classifier is in eval mode. Fails with one line when the data have no labels or the options are out of range.
TrainedClassifier train_classifier(const ImageData& data, const ClassifierOptions& options, uint64_t seed,
                                   bool quiet = false);

// safetensors with metadata: format "scorediff-classifier/1", dataset, shape "C,H,W", classes,
// test_accuracy and the options as JSON. Atomic.
void save_classifier(const std::filesystem::path& path, Classifier& classifier, const std::string& dataset,
                     double test_accuracy);

struct LoadedClassifier {
  Classifier classifier{nullptr};  // in eval mode
  std::string path, dataset;
  double test_accuracy = 0.0;
};
// Fails with one line for a missing or corrupt file and for a file that is not a classifier.
LoadedClassifier load_classifier(const std::filesystem::path& path);

// Fails with one line like "classifier 'c.safetensors' was trained on mnist 1x28x28, not fashion-mnist
// 1x28x28" unless the classifier was trained on this dataset at this image shape.
void check_classifier_matches(const LoadedClassifier& loaded, const std::string& dataset,
                              const std::vector<int64_t>& shape);

}  // namespace scorediff
