// Toy 2-D (and D-dimensional mixture) datasets behind one small interface, chosen by name.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <memory>
#include <string>

#include "scorediff/core/registry.hpp"
#include "scorediff/core/schema.hpp"
#include "scorediff/data/gaussian_mixture.hpp"
#include "scorediff/data/images.hpp"

namespace scorediff {

struct DataOptions {
  std::string name = "swiss-roll";
  int64_t n_train = 5000;  // size of the fixed training set drawn once from the data seed
  // Mixture datasets only (mog2, 8gaussians, mixture); empty means the dataset's preset.
  std::vector<double> weights;
  Matrix means;
  Matrix std;  // a number, one number per component (isotropic) or one row of D per component
  // Image datasets only (fashion-mnist, mnist, png-folder).
  std::string path;                  // "" = the dataset's default location (png-folder requires one)
  int64_t image_size = 0;            // resize to image_size × image_size; 0 = native size
  std::string pixels = "minus-one-one";  // minus-one-one ([−1, 1]: VP, VE, EDM) or zero-one ([0, 1]: NCSN)
};

class ToyDataset {
 public:
  virtual ~ToyDataset() = default;
  virtual int64_t dim() const { return 2; }
  virtual torch::Tensor sample(int64_t n, at::Generator& gen) const = 0;  // [n, D] float32, CPU
  // The exact density as a mixture (mog2, 8gaussians, mixture), or a fine-mixture reference of it
  // (circle); nullptr when no closed form is known.
  virtual const GaussianMixture* mixture() const { return nullptr; }
  // Image datasets: points are flattened images [n, C·H·W] in the pixel range of data.pixels.
  virtual std::vector<int64_t> image_shape() const { return {}; }  // [C, H, W]; empty for point sets
  virtual const ImageData* images() const { return nullptr; }      // the loaded splits, in [0, 1]
  virtual std::string pixel_range() const { return ""; }
};

using DatasetFactory = std::function<std::shared_ptr<const ToyDataset>(const DataOptions&)>;

void register_builtins(Registry<DatasetFactory>& registry);
const Registry<DatasetFactory>& datasets();

// Fills a mixture dataset's preset weights/means/std where the options leave them empty, and
// refuses them for datasets that are not mixtures.
void resolve(DataOptions& options);
void bind(Schema& schema, DataOptions& options);
std::shared_ptr<const ToyDataset> make_dataset(const DataOptions& options);

// Swiss roll of seed 001 §8.4, standardised with its exact population mean and std.
torch::Tensor swiss_roll(int64_t n, at::Generator& gen);

}  // namespace scorediff
