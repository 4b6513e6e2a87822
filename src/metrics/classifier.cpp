#include "scorediff/metrics/classifier.hpp"

#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "scorediff/core/error.hpp"
#include "scorediff/core/interrupt.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/models/init.hpp"
#include "scorediff/train/adam.hpp"

namespace scorediff {
namespace {

namespace F = torch::nn::functional;

constexpr const char* kFormat = "scorediff-classifier/1";
// Fixed input normalisation: [0, 1] -> [−1, 1]. Stored nowhere, so a file always means the same network.
constexpr double kPixelMean = 0.5, kPixelStd = 0.5;
constexpr int64_t kMaxPooled = 7;  // side of the map before the first linear layer, at most

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("{}", fmt::join(shape, "x")); }

nlohmann::json options_json(const ClassifierOptions& o) {
  return {{"channels", o.channels}, {"features", o.features},         {"dropout", o.dropout},
          {"epochs", o.epochs},     {"min_images", o.min_images},     {"batch", o.batch},
          {"lr", o.lr},             {"weight_decay", o.weight_decay}, {"shift", o.shift},
          {"noisy", o.noisy},       {"noise_min", o.noise_min},       {"noise_max", o.noise_max}};
}

void validate(const ClassifierOptions& o) {
  require(o.channels >= 1 && o.features >= 1, "classifier channels and features must be >= 1");
  require(o.epochs >= 0, "classifier epochs must be >= 1 (or 0 for automatic), got {}", o.epochs);
  require(o.min_images >= 1, "classifier min_images must be >= 1, got {}", o.min_images);
  require(o.batch >= 1, "classifier batch must be >= 1, got {}", o.batch);
  require(o.lr > 0, "classifier lr must be > 0, got {}", o.lr);
  require(o.dropout >= 0 && o.dropout < 1, "classifier dropout must be in [0, 1), got {}", o.dropout);
  require(o.shift >= 0, "classifier shift must be >= 0, got {}", o.shift);
  require(!o.noisy || (o.noise_min > 0 && o.noise_max > o.noise_min && std::isfinite(o.noise_max)),
          "noisy classifier: need 0 < noise_min < noise_max < inf, got {} and {}", o.noise_min, o.noise_max);
}

}  // namespace

torch::Tensor random_shift(const torch::Tensor& x, int64_t shift, at::Generator& gen) {
  if (shift == 0) return x;
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor padded = F::pad(x, F::PadFuncOptions({shift, shift, shift, shift}).mode(torch::kReplicate));
  torch::Tensor offsets = torch::randint(0, 2 * shift + 1, {b, 2, 1}, gen, torch::kInt64);
  // Two gathers over the whole batch (rows, then columns) rather than one small copy per image.
  torch::Tensor rows = (offsets.select(1, 0) + torch::arange(h, torch::kInt64)).view({b, 1, h, 1});
  torch::Tensor cols = (offsets.select(1, 1) + torch::arange(w, torch::kInt64)).view({b, 1, 1, w});
  torch::Tensor shifted = padded.gather(2, rows.expand({b, c, h, w + 2 * shift}));
  return shifted.gather(3, cols.expand({b, c, h, w}));
}

ClassifierImpl::ClassifierImpl(std::vector<int64_t> shape, int64_t classes, const ClassifierOptions& options,
                               at::Generator& gen)
    : shape_(std::move(shape)), classes_(classes), options_(options) {
  require(shape_.size() == 3 && shape_[0] >= 1, "classifier image shape must be C,H,W; got {}", shape_text(shape_));
  require(shape_[1] >= 4 && shape_[2] >= 4, "classifier needs images of at least 4x4 pixels, got {}", shape_text(shape_));
  require(classes_ >= 2, "a classifier needs at least 2 classes, got {}", classes_);
  require(options_.channels >= 1 && options_.features >= 1, "classifier channels and features must be >= 1");
  const int64_t c = options_.channels;
  auto conv = [&](const std::string& name, int64_t in, int64_t out) {
    auto layer = register_module(name, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
    init_default(layer->weight, layer->bias, gen);
    return layer;
  };
  conv1_ = conv("conv1", shape_[0] + (options_.noisy ? 1 : 0), c);
  conv2_ = conv("conv2", c, c);
  conv3_ = conv("conv3", c, 2 * c);
  conv4_ = conv("conv4", 2 * c, 2 * c);
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(c));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(c));
  bn3_ = register_module("bn3", torch::nn::BatchNorm2d(2 * c));
  bn4_ = register_module("bn4", torch::nn::BatchNorm2d(2 * c));
  // Two 2×2 max-pools floor each side to side/4; larger images are average-pooled down to 7×7 so the
  // linear layer stays small (28×28 and 14×14 are not pooled further).
  pooled_h_ = std::min(shape_[1] / 4, kMaxPooled);
  pooled_w_ = std::min(shape_[2] / 4, kMaxPooled);
  fc1_ = register_module("fc1", torch::nn::Linear(2 * c * pooled_h_ * pooled_w_, options_.features));
  init_default(fc1_->weight, fc1_->bias, gen);
  fc2_ = register_module("fc2", torch::nn::Linear(options_.features, classes_));
  init_default(fc2_->weight, fc2_->bias, gen);
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x, const torch::Tensor& sigma) {
  // x [B, C, H, W] -> [B, F]
  require(x.dim() == 4 && x.size(1) == shape_[0] && x.size(2) == shape_[1] && x.size(3) == shape_[2],
          "classifier for {} images got a tensor of shape {}", shape_text(shape_), shape_text(x.sizes().vec()));
  torch::Tensor h = (x - kPixelMean) / kPixelStd;
  if (options_.noisy) {
    const int64_t b = x.size(0);
    require(!sigma.defined() || (sigma.dim() == 1 && sigma.size(0) == b), "noisy classifier: sigma must be [{}]", b);
    torch::Tensor s = (sigma.defined() ? sigma.to(x.dtype()) : torch::full({b}, options_.noise_min, x.options()))
                          .view({b, 1, 1, 1});
    h = torch::cat({h * torch::rsqrt(1 + (s / kPixelStd).square()), (torch::log(s) / 4).expand({b, 1, x.size(2), x.size(3)})},
                   1);
  }
  h = torch::relu(bn2_->forward(conv2_->forward(torch::relu(bn1_->forward(conv1_->forward(h))))));
  h = F::max_pool2d(h, F::MaxPool2dFuncOptions(2));
  h = torch::relu(bn4_->forward(conv4_->forward(torch::relu(bn3_->forward(conv3_->forward(h))))));
  h = F::max_pool2d(h, F::MaxPool2dFuncOptions(2));
  if (h.size(2) != pooled_h_ || h.size(3) != pooled_w_)
    h = F::adaptive_avg_pool2d(h, F::AdaptiveAvgPool2dFuncOptions({pooled_h_, pooled_w_}));
  return torch::relu(fc1_->forward(h.flatten(1)));
}

torch::Tensor ClassifierImpl::head(const torch::Tensor& features) { return fc2_->forward(features); }

torch::Tensor classify(Classifier& classifier, const torch::Tensor& x, int64_t batch) {
  // x [N, C, H, W] -> [N, classes]
  torch::NoGradGuard no_grad;
  classifier->eval();
  std::vector<torch::Tensor> out;
  for (int64_t start = 0; start < x.size(0); start += batch)
    out.push_back(classifier->logits(x.narrow(0, start, std::min(batch, x.size(0) - start))));
  if (out.empty()) return torch::empty({0, classifier->classes()});
  return torch::cat(out);
}

double classifier_accuracy(Classifier& classifier, const ImageSet& set) {
  require(set.size() > 0, "cannot measure a classifier's accuracy on an empty set");
  torch::Tensor predicted = classify(classifier, set.images).argmax(1);
  return predicted.eq(set.labels).to(torch::kFloat64).mean().item<double>();
}

int64_t classifier_epochs(const ClassifierOptions& options, int64_t train_size) {
  if (options.epochs > 0) return options.epochs;
  return std::max<int64_t>(4, (options.min_images + train_size - 1) / std::max<int64_t>(train_size, 1));
}

TrainedClassifier train_classifier(const ImageData& data, const ClassifierOptions& options, uint64_t seed, bool quiet) {
  validate(options);
  require(data.classes >= 2, "dataset '{}' has no class labels; the classifier needs a labelled dataset (fashion-mnist, mnist)",
          data.name);
  const ImageSet& train = data.train;
  require(train.size() > 0 && data.test.size() > 0, "dataset '{}' needs images in both its train and test split", data.name);
  const int64_t low = train.labels.min().item<int64_t>(), high = train.labels.max().item<int64_t>();
  require(low >= 0 && high < data.classes, "dataset '{}' has labels in [{}, {}], outside [0, {})", data.name, low, high,
          data.classes);

  ClassifierOptions resolved = options;
  resolved.epochs = classifier_epochs(options, train.size());  // the file records the count that ran
  at::Generator init = make_generator(derive_seed(seed, "classifier-init"));
  at::Generator gen = make_generator(derive_seed(seed, "classifier-train"));
  Classifier classifier(data.shape(), data.classes, resolved, init);
  classifier->train();
  std::vector<torch::Tensor> params = classifier->parameters();
  Adam adam(params, AdamOptions{0.9, 0.999, 1e-8, options.weight_decay});

  const int64_t n = train.size(), per_epoch = (n + resolved.batch - 1) / resolved.batch;
  const int64_t total = per_epoch * resolved.epochs;
  Progress progress("classifier", total, "batch", quiet);
  double running_loss = NAN;
  for (int64_t epoch = 0, step = 0; epoch < resolved.epochs; ++epoch) {
    torch::Tensor order = torch::randperm(n, gen, torch::kInt64);
    for (int64_t start = 0; start < n; start += resolved.batch, ++step) {
      if (interrupt_requested()) throw Interrupted("classifier training stopped on request; nothing was written");
      torch::Tensor index = order.narrow(0, start, std::min(resolved.batch, n - start));
      torch::Tensor x = train.images.index_select(0, index), y = train.labels.index_select(0, index);
      if (resolved.shift > 0) x = random_shift(x, resolved.shift, gen);
      torch::Tensor sigma;
      if (resolved.noisy) {  // log-uniform noise levels, one per image
        sigma = torch::exp(torch::empty({x.size(0)}).uniform_(std::log(resolved.noise_min), std::log(resolved.noise_max), gen));
        x = x + sigma.view({-1, 1, 1, 1}) * torch::randn(x.sizes(), gen);
      }
      torch::Tensor h = classifier->features(x, sigma);  // [B, F]
      if (resolved.dropout > 0)
        h = h * torch::empty_like(h).bernoulli_(1.0 - resolved.dropout, gen).div_(1.0 - resolved.dropout);
      torch::Tensor loss = F::cross_entropy(classifier->head(h), y);
      adam.zero_grad();
      loss.backward();
      // Cosine decay to 0: the last epochs settle instead of bouncing at the initial rate.
      adam.step(resolved.lr * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total))));
      const double value = loss.item<double>();
      running_loss = std::isnan(running_loss) ? value : 0.98 * running_loss + 0.02 * value;
      progress.update(step + 1, fmt::format("epoch {}/{}  loss {:.3f}", epoch + 1, resolved.epochs, running_loss));
    }
  }
  classifier->eval();
  TrainedClassifier out{classifier, classifier_accuracy(classifier, data.test)};
  progress.finish(fmt::format("loss {:.3f}  test accuracy {:.4f}", running_loss, out.test_accuracy));
  return out;
}

void save_classifier(const std::filesystem::path& path, Classifier& classifier, const std::string& dataset,
                     double test_accuracy, const std::string& process) {
  TensorFile file;
  for (const auto& item : classifier->named_parameters()) file.tensors.emplace_back(item.key(), item.value().detach());
  for (const auto& item : classifier->named_buffers()) file.tensors.emplace_back(item.key(), item.value());
  file.metadata["format"] = kFormat;
  file.metadata["dataset"] = dataset;
  file.metadata["shape"] = fmt::format("{}", fmt::join(classifier->shape(), ","));
  file.metadata["classes"] = std::to_string(classifier->classes());
  file.metadata["test_accuracy"] = fmt::format("{}", test_accuracy);
  file.metadata["options"] = options_json(classifier->options()).dump();
  if (!process.empty()) file.metadata["process"] = process;
  file.metadata["scorediff_version"] = SCOREDIFF_VERSION;
  write_safetensors(path, file);
}

LoadedClassifier load_classifier(const std::filesystem::path& path) {
  const std::string p = path.string();
  TensorFile file = read_safetensors(path);
  auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != kFormat)
    fail("'{}' is not a scorediff classifier (format '{}', expected '{}')", p,
         format == file.metadata.end() ? "" : format->second, kFormat);
  LoadedClassifier out;
  out.path = p;
  std::vector<int64_t> shape;
  int64_t classes = 0;
  ClassifierOptions options;
  try {
    out.dataset = file.metadata.at("dataset");
    out.test_accuracy = std::stod(file.metadata.at("test_accuracy"));
    classes = std::stoll(file.metadata.at("classes"));
    const std::string& text = file.metadata.at("shape");
    for (size_t start = 0; start <= text.size();) {
      size_t comma = std::min(text.find(',', start), text.size());
      shape.push_back(std::stoll(text.substr(start, comma - start)));
      start = comma + 1;
    }
    auto json = nlohmann::json::parse(file.metadata.at("options"));
    options.channels = json.at("channels").get<int64_t>();
    options.features = json.at("features").get<int64_t>();
    options.dropout = json.at("dropout").get<double>();
    options.epochs = json.at("epochs").get<int64_t>();
    options.min_images = json.at("min_images").get<int64_t>();
    options.batch = json.at("batch").get<int64_t>();
    options.lr = json.at("lr").get<double>();
    options.weight_decay = json.at("weight_decay").get<double>();
    options.shift = json.at("shift").get<int64_t>();
    options.noisy = json.value("noisy", false);  // absent in files of clean-image classifiers before it
    options.noise_min = json.value("noise_min", options.noise_min);
    options.noise_max = json.value("noise_max", options.noise_max);
    if (auto process = file.metadata.find("process"); process != file.metadata.end()) out.process = process->second;
  } catch (const std::exception& e) {
    fail("classifier '{}' has malformed metadata: {}", p, e.what());
  }
  at::Generator unused = make_generator(0);
  out.classifier = Classifier(shape, classes, options, unused);
  torch::NoGradGuard no_grad;
  auto tensors = out.classifier->named_parameters();
  for (const auto& item : out.classifier->named_buffers()) tensors.insert(item.key(), item.value());
  for (auto& item : tensors) {
    require(file.contains(item.key()), "classifier '{}' lacks tensor '{}'", p, item.key());
    const torch::Tensor& stored = file.at(item.key());
    require(stored.sizes() == item.value().sizes(), "classifier '{}': tensor '{}' has shape {}, expected {}", p,
            item.key(), shape_text(stored.sizes().vec()), shape_text(item.value().sizes().vec()));
    item.value().copy_(stored);
  }
  out.classifier->eval();
  return out;
}

void check_classifier_matches(const LoadedClassifier& loaded, const std::string& dataset,
                              const std::vector<int64_t>& shape) {
  const std::vector<int64_t>& own = loaded.classifier->shape();
  if (loaded.dataset != dataset || own != shape)
    fail("classifier '{}' was trained on {} {}, not {} {}", loaded.path, loaded.dataset, shape_text(own), dataset,
         shape_text(shape));
}

}  // namespace scorediff
