// Image classifier for sample-quality evaluation: a small CNN trained per dataset, whose penultimate
// layer gives the features of the classifier Fréchet distance and KID (metrics/image_metrics.hpp).
// These are "-cls" metrics on our own network, not Inception FID: numbers compare only between runs
// measured with the same classifier file.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <string>
#include <vector>

#include "scorediff/data/images.hpp"

namespace scorediff {

// The defaults, measured with `scorediff train-classifier --data D` (2 cores, --threads 2): Fashion-MNIST
// 92.1 % on its 10 000 test images in 133 s (4 epochs); MNIST-10k 98.9 % on its 997 held-out digits in
// 66 s (14 epochs).
struct ClassifierOptions {
  // Architecture (stored in the file): [conv3x3(c)-BN-ReLU]×2 - maxpool2 - [conv3x3(2c)-BN-ReLU]×2 - maxpool2 -
  // average pool down to at most 7×7 - linear(features)-ReLU (the features) - dropout - linear(classes).
  // Batch norm: Fashion-MNIST at 16 channels measured 91.6 % after 3 epochs with it, 91.2 % after 6 without;
  // 24 channels gave 92.2 % after 3 epochs at 1.5× the time of 16 channels' 92.1 % after 4.
  int64_t channels = 16;
  int64_t features = 128;
  // Training.
  double dropout = 0.3;    // on the features, training only
  // Passes over the training split; 0 = enough to show min_images images, and at least 4 (Fashion-MNIST's
  // 60 000: 4; MNIST-10k's 9 000: 14).
  int64_t epochs = 0;
  int64_t min_images = 120000;
  int64_t batch = 128;
  double lr = 4e-3;        // Adam, cosine-decayed to 0 over the run (4e-3 beat 2e-3 and 8e-3 at 4 epochs)
  double weight_decay = 0.0;
  // Noise-conditional (classifier guidance): the input is an image in [0, 1] units plus Gaussian noise of std σ
  // (same units), σ given beside it; training draws log σ uniformly in [log noise_min, log noise_max] per image.
  // The network sees x normalised to unit scale, (x − ½)/½ / √(1 + (σ/½)²), and log σ / 4 as one more channel.
  bool noisy = false;
  double noise_min = 1e-3, noise_max = 40.0;
  int64_t shift = 0;       // augmentation: random translation by up to ±shift pixels (0 = none; ±1 and ±2
                           // cost Fashion-MNIST 0.4 % at 4 epochs: short runs underfit rather than overfit)
};

// The epochs a run over train_size images makes: options.epochs, or the automatic count when it is 0.
int64_t classifier_epochs(const ClassifierOptions& options, int64_t train_size);

class ClassifierImpl : public torch::nn::Module {
 public:
  // shape = {C, H, W} of the images. Conv and linear parameters are drawn from gen (PyTorch's default
  // init); batch norm starts at γ = 1, β = 0.
  ClassifierImpl(std::vector<int64_t> shape, int64_t classes, const ClassifierOptions& options, at::Generator& gen);

  // x [B, C, H, W] in [0, 1] (normalised inside by a fixed mean and std) -> features [B, F], after ReLU.
  // Noise-conditional classifiers take sigma [B] too (undefined: noise_min).
  torch::Tensor features(const torch::Tensor& x, const torch::Tensor& sigma = {});
  // features [B, F] -> logits [B, classes]; dropout, when training, is applied by the caller before this.
  torch::Tensor head(const torch::Tensor& features);
  // x [B, C, H, W] -> logits [B, classes].
  torch::Tensor logits(const torch::Tensor& x, const torch::Tensor& sigma = {}) { return head(features(x, sigma)); }
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
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr}, bn4_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Classifier);

// Augmentation: x [B, C, H, W] -> each image translated by its own (dy, dx), uniform in [−shift, shift]²,
// edge pixels replicated into the uncovered border.
torch::Tensor random_shift(const torch::Tensor& x, int64_t shift, at::Generator& gen);

// x [N, C, H, W] -> logits [N, classes], in batches under NoGradGuard; puts the classifier in eval mode.
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
// `process` (noise-conditional classifiers): the run's process and pixel range as text, checked by its users.
void save_classifier(const std::filesystem::path& path, Classifier& classifier, const std::string& dataset,
                     double test_accuracy, const std::string& process = "");

struct LoadedClassifier {
  Classifier classifier{nullptr};  // in eval mode
  std::string path, dataset;
  std::string process;  // save_classifier's `process`; "" for classifiers of clean images
  double test_accuracy = 0.0;
};
// Fails with one line for a missing or corrupt file and for a file that is not a classifier.
LoadedClassifier load_classifier(const std::filesystem::path& path);

// Fails with one line like "classifier 'c.safetensors' was trained on mnist 1x28x28, not fashion-mnist
// 1x28x28" unless the classifier was trained on this dataset at this image shape.
void check_classifier_matches(const LoadedClassifier& loaded, const std::string& dataset,
                              const std::vector<int64_t>& shape);

}  // namespace scorediff
