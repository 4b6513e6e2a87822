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
  // Table datasets only (table; data.path is its file).
  std::string header = "auto";  // CSV: auto (a first row with a non-number is a header), yes, no
  int64_t label_column = -1;    // the column of integer labels, taken out of the features; -1 = none
  std::string labels;           // .npy of one integer label per row, for a table without a label column
  // A png-folder of class sub-folders: their names, comma-separated, in label order. A run records them, so that
  // a checkpoint's class k keeps its meaning; a folder whose classes differ from the recorded ones is refused.
  std::string class_names;
  // The standardisation x_model = (x − mean)/scale; empty = from the training rows. A run records them in
  // its configuration, so a checkpoint samples in the units it was trained in.
  std::vector<double> column_mean, column_scale;
};

// Points and, for labelled sets, one class per point.
struct LabelledPoints {
  torch::Tensor points;  // [n, D] float32, CPU
  torch::Tensor labels;  // [n] int64 in [0, classes()), or undefined where the set has no labels
};

class ToyDataset {
 public:
  virtual ~ToyDataset() = default;
  virtual int64_t dim() const { return 2; }
  virtual torch::Tensor sample(int64_t n, at::Generator& gen) const = 0;  // [n, D] float32, CPU
  // The same draw as sample() (the same random numbers, the same points) with each point's label:
  // a mixture's component, an image's class, a table's label column. Unlabelled sets leave labels
  // undefined.
  virtual LabelledPoints sample_labelled(int64_t n, at::Generator& gen) const { return {sample(n, gen), {}}; }
  virtual int64_t classes() const { return 0; }  // how many labels; 0 for an unlabelled set
  // The exact density as a mixture (mog2, 8gaussians, mixture), or a fine-mixture reference of it
  // (circle); nullptr when no closed form is known.
  virtual const GaussianMixture* mixture() const { return nullptr; }
  // Image datasets: points are flattened images [n, C·H·W] in the pixel range of data.pixels.
  virtual std::vector<int64_t> image_shape() const { return {}; }  // [C, H, W]; empty for point sets
  virtual const ImageData* images() const { return nullptr; }      // the loaded splits, in [0, 1]
  virtual std::string pixel_range() const { return ""; }
  // Finite tables: the held-out rows [M, D] in model units, the reference of evaluate_samples; undefined
  // for sets that draw fresh points and for images (their test split is in images()).
  virtual torch::Tensor held_out() const { return {}; }
  // Between the units a model works in and the data's own (a table's standardisation); identity here.
  virtual torch::Tensor to_data_units(const torch::Tensor& x) const { return x; }
  virtual torch::Tensor to_model_units(const torch::Tensor& x) const { return x; }
  // Writes back the options the data itself decided (a table's column statistics), so that the run's
  // configuration, stored in its checkpoints, rebuilds exactly this dataset.
  virtual void record(DataOptions&) const {}
};

// All of `rows` [N, D] (stored order) when n >= N, else n of them drawn without replacement by `gen`;
// float32, contiguous: how the finite sets (images, tables) sample.
torch::Tensor draw_rows(const torch::Tensor& rows, int64_t n, at::Generator& gen);
// The same draw, with the rows' labels [N] int64 (undefined labels stay undefined).
LabelledPoints draw_labelled_rows(const torch::Tensor& rows, const torch::Tensor& labels, int64_t n, at::Generator& gen);

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
