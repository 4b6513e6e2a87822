#include "scorediff/pipeline/classifier_guidance.hpp"

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "scorediff/data/images.hpp"

namespace scorediff {
namespace {

// The width of a pixel range in [0, 1] units: 2 for [−1, 1], 1 for [0, 1].
double pixel_width(const std::string& pixels) {
  const torch::Tensor ends = unit_to_range(torch::tensor({0.0, 1.0}, torch::kFloat64), pixels);
  return (ends[1] - ends[0]).item<double>();
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  for (size_t begin = 0; begin <= text.size();) {
    const size_t end = std::min(text.find("; ", begin), text.size());
    parts.push_back(text.substr(begin, end - begin));
    begin = end + 2;
  }
  return parts;
}

}  // namespace

std::string classifier_process_text(const Config& config) {
  Config copy = config;
  Schema schema = copy.schema();
  std::vector<std::string> parts;
  for (const auto& key : schema.keys_in("process"))
    parts.push_back(fmt::format("process.{} = {}", key, schema.find("process." + key)->value_text()));
  parts.push_back(fmt::format("data.pixels = {}", config.data.pixels));
  return fmt::format("{}", fmt::join(parts, "; "));
}

SettingDifference first_setting_difference(const std::string& theirs, const Config& config) {
  const std::vector<std::string> stored = split(theirs), own = split(classifier_process_text(config));
  auto key_of = [](const std::string& setting) { return setting.substr(0, setting.find(" = ")); };
  for (const auto& mine : own)
    for (const auto& their : stored)
      if (key_of(their) == key_of(mine) && their != mine) return {their, mine};
  return {};
}

ClassifierOptions noisy_classifier_options(const Config& config, const NoiseProcess& process, ClassifierOptions base) {
  const double width = pixel_width(config.data.pixels);
  auto sigma = [&](double t) { return process.sigma(torch::tensor({t}, torch::kFloat64)).item<double>() / width; };
  base.noisy = true;
  base.noise_min = sigma(process.t_min());
  base.noise_max = sigma(process.t_max());
  return base;
}

LoadedClassifier guidance_classifier(const std::string& path, const Config& config, const ToyDataset& dataset) {
  require(std::filesystem::exists(path), "sample.classifier: '{}' does not exist", path);
  LoadedClassifier loaded = load_classifier(path);
  require(loaded.classifier->options().noisy,
          "sample.classifier '{}' is a classifier of clean images; guidance needs a noise-conditional one "
          "(scorediff train-classifier --noisy --ckpt RUN)",
          path);
  check_classifier_matches(loaded, config.data.name, dataset.image_shape());
  if (const SettingDifference d = first_setting_difference(loaded.process, config))
    fail("sample.classifier '{}' was trained for {}; this run has {}", path, d.theirs, d.mine);
  return loaded;
}

LogProbFn classifier_log_prob(LoadedClassifier classifier, const Prepared& prepared, const std::string& pixels,
                              torch::Tensor labels) {
  Classifier net = classifier.classifier;
  net->to(prepared.train_data.device());
  net->eval();
  const std::vector<int64_t> shape = net->shape();
  const double width = pixel_width(pixels);
  labels = labels.to(prepared.train_data.device());
  return [net, shape, width, pixels, labels, process = prepared.process](const torch::Tensor& x,
                                                                        const torch::Tensor& t) mutable {
    require(x.size(0) == labels.size(0), "classifier guidance: {} points but {} labels", x.size(0), labels.size(0));
    const torch::Tensor m = process->mean_coef(t).to(x.dtype()).view({-1, 1});
    const torch::Tensor sigma = (process->sigma(t) / width).to(x.dtype());
    const torch::Tensor images = range_to_unit(x / m, pixels).view({x.size(0), shape[0], shape[1], shape[2]});
    const torch::Tensor log_p = torch::log_softmax(net->logits(images, sigma), 1);
    return log_p.gather(1, labels.view({-1, 1})).squeeze(1);
  };
}

}  // namespace scorediff
