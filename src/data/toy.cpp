#include "scorediff/data/toy.hpp"

#include <torch/torch.h>

#include <cmath>

#include "data/image_dataset.hpp"
#include "scorediff/data/table.hpp"

namespace scorediff {
namespace {

// Swiss roll of seed 001 §8.4, t ~ U(1.5π, 4.5π): exact moments E[x] = 2, E[y] = 2/(3π), the stds from
// the integrals of t² cos² t and t² sin² t plus the 0.1² noise (checked against a large sample in the
// tests).
constexpr double kSwissRollMeanX = 2.0, kSwissRollMeanY = 0.21220659078919377;
constexpr double kSwissRollStdX = 6.623769429509557, kSwissRollStdY = 6.951927057884328;

torch::Tensor uniform(int64_t n, at::Generator& gen) { return torch::rand({n}, gen, torch::kFloat64); }
torch::Tensor normal(int64_t n, at::Generator& gen) { return torch::randn({n}, gen, torch::kFloat64); }

// The roll is a curve γ(t), t ~ U(1.5π, 4.5π), plus N(0, 0.1²I) noise, then standardised per axis:
// exactly a continuous mixture along γ, which 4000 equally spaced diagonal Gaussians reproduce (spacing
// at most 0.34 noise standard deviations, where |γ'| is largest) as the reference density.
class SwissRoll : public ToyDataset {
 public:
  static constexpr int64_t kReferenceComponents = 4000;
  SwissRoll() {
    torch::Tensor t = 1.5 * M_PI + 3 * M_PI * (torch::arange(kReferenceComponents, torch::kFloat64) + 0.5) /
                                       static_cast<double>(kReferenceComponents);
    torch::Tensor means = torch::stack({(t * torch::cos(t) - kSwissRollMeanX) / kSwissRollStdX,
                                        (t * torch::sin(t) - kSwissRollMeanY) / kSwissRollStdY}, 1);
    torch::Tensor stds = torch::tensor({{0.1 / kSwissRollStdX, 0.1 / kSwissRollStdY}}, torch::kFloat64);
    reference_ = std::make_unique<GaussianMixture>(torch::ones({kReferenceComponents}), means, stds);
  }
  torch::Tensor sample(int64_t n, at::Generator& gen) const override { return swiss_roll(n, gen); }
  const GaussianMixture* mixture() const override { return reference_.get(); }

 private:
  std::unique_ptr<GaussianMixture> reference_;
};

// Two interleaved half circles (as in scikit-learn's make_moons), noise 0.05, centred.
class TwoMoons : public ToyDataset {
 public:
  torch::Tensor sample(int64_t n, at::Generator& gen) const override {
    torch::Tensor theta = M_PI * uniform(n, gen);
    torch::Tensor upper = torch::rand({n}, gen, torch::kFloat64) < 0.5;
    torch::Tensor x = torch::where(upper, torch::cos(theta), 1.0 - torch::cos(theta)) - 0.5;
    torch::Tensor y = torch::where(upper, torch::sin(theta), 0.5 - torch::sin(theta)) - 0.25;
    torch::Tensor xy = torch::stack({x, y}, 1);
    return (xy + 0.05 * torch::randn({n, 2}, gen, torch::kFloat64)).to(torch::kFloat32);
  }
};

// Unit circle with isotropic N(0, 0.02²) noise: exactly the uniform ring convolved with a Gaussian, so a
// mixture of 1024 equally spaced N(p_k, 0.02² I) is its reference density (spacing 0.3 std: exact to
// far below float precision).
class Circle : public ToyDataset {
 public:
  static constexpr double kNoise = 0.02;
  static constexpr int64_t kReferenceComponents = 1024;
  Circle() {
    torch::Tensor angle = torch::arange(kReferenceComponents, torch::kFloat64) * (2 * M_PI / kReferenceComponents);
    reference_ = std::make_unique<GaussianMixture>(torch::ones({kReferenceComponents}),
                                                   torch::stack({torch::cos(angle), torch::sin(angle)}, 1),
                                                   torch::full({1, 1}, kNoise, torch::kFloat64));
  }
  torch::Tensor sample(int64_t n, at::Generator& gen) const override {
    torch::Tensor angle = 2 * M_PI * uniform(n, gen);
    torch::Tensor xy = torch::stack({torch::cos(angle), torch::sin(angle)}, 1);
    return (xy + kNoise * torch::randn({n, 2}, gen, torch::kFloat64)).to(torch::kFloat32);
  }
  const GaussianMixture* mixture() const override { return reference_.get(); }

 private:
  std::unique_ptr<GaussianMixture> reference_;
};

// 4x4 checkerboard on [-2, 2]², the 8 dark cells filled uniformly.
class Checkerboard : public ToyDataset {
 public:
  torch::Tensor sample(int64_t n, at::Generator& gen) const override {
    torch::Tensor cell = torch::randint(0, 8, {n}, gen, torch::kInt64);
    torch::Tensor row = cell.div(2, "floor");
    torch::Tensor col = 2 * cell.remainder(2) + row.remainder(2);
    torch::Tensor x = col.to(torch::kFloat64) + uniform(n, gen) - 2.0;
    torch::Tensor y = row.to(torch::kFloat64) + uniform(n, gen) - 2.0;
    return torch::stack({x, y}, 1).to(torch::kFloat32);
  }
};

class Mixture : public ToyDataset {
 public:
  explicit Mixture(const DataOptions& o) {
    torch::Tensor means = torch::empty({static_cast<int64_t>(o.means.size()), static_cast<int64_t>(o.means[0].size())},
                                       torch::kFloat64);
    for (size_t k = 0; k < o.means.size(); ++k) {
      require(o.means[k].size() == o.means[0].size(), "data.means rows must all have the same length");
      for (size_t d = 0; d < o.means[k].size(); ++d) means[k][d] = o.means[k][d];
    }
    size_t width = 1;
    for (const auto& row : o.std) width = std::max(width, row.size());
    torch::Tensor stds = torch::empty({static_cast<int64_t>(o.std.size()), static_cast<int64_t>(width)}, torch::kFloat64);
    for (size_t k = 0; k < o.std.size(); ++k) {
      require(o.std[k].size() == 1 || o.std[k].size() == width, "data.std rows must all have the same length");
      for (size_t d = 0; d < width; ++d) stds[k][d] = o.std[k][o.std[k].size() == 1 ? 0 : d];
    }
    mixture_ = std::make_unique<GaussianMixture>(torch::tensor(o.weights, torch::kFloat64), means, stds);
  }
  int64_t dim() const override { return mixture_->dim(); }
  torch::Tensor sample(int64_t n, at::Generator& gen) const override { return mixture_->sample(n, gen); }
  // Labelled by component.
  LabelledPoints sample_labelled(int64_t n, at::Generator& gen) const override {
    LabelledPoints out;
    out.points = mixture_->sample(n, gen, &out.labels);
    return out;
  }
  int64_t classes() const override { return mixture_->components(); }
  const GaussianMixture* mixture() const override { return mixture_.get(); }

 private:
  std::unique_ptr<GaussianMixture> mixture_;
};

struct MixturePreset {
  std::vector<double> weights;
  Matrix means, std;
};

std::optional<MixturePreset> mixture_preset(const std::string& name) {
  if (name == "mog2") return MixturePreset{{0.2, 0.8}, {{5, 5}, {-5, -5}}, {{1.0}}};  // seed 000 mixing test
  if (name == "8gaussians") {
    MixturePreset p{std::vector<double>(8, 1.0), {}, {{0.5}}};
    for (int k = 0; k < 8; ++k) p.means.push_back({4 * std::cos(k * M_PI / 4), 4 * std::sin(k * M_PI / 4)});
    return p;
  }
  if (name == "mixture") return MixturePreset{};
  return std::nullopt;
}

}  // namespace

torch::Tensor swiss_roll(int64_t n, at::Generator& gen) {
  torch::Tensor t = 1.5 * M_PI * (1 + 2 * uniform(n, gen));
  torch::Tensor x = t * torch::cos(t) + 0.1 * normal(n, gen);
  torch::Tensor y = t * torch::sin(t) + 0.1 * normal(n, gen);
  return torch::stack({(x - kSwissRollMeanX) / kSwissRollStdX, (y - kSwissRollMeanY) / kSwissRollStdY}, 1)
      .to(torch::kFloat32);
}

void register_builtins(Registry<DatasetFactory>& r) {
  r.add("swiss-roll", [](const DataOptions&) { return std::make_shared<SwissRoll>(); },
        "seed 001's Swiss roll, standardised");
  r.add("two-moons", [](const DataOptions&) { return std::make_shared<TwoMoons>(); }, "two interleaved half circles");
  r.add("circle", [](const DataOptions&) { return std::make_shared<Circle>(); }, "unit circle, noise 0.02 (seed 000)");
  r.add("checkerboard", [](const DataOptions&) { return std::make_shared<Checkerboard>(); }, "4x4 checkerboard");
  auto mixture = [](const DataOptions& o) { return std::make_shared<Mixture>(o); };
  r.add("mog2", mixture, "0.2 N((5,5),I) + 0.8 N((-5,-5),I) (seed 000)");
  r.add("8gaussians", mixture, "8 equal Gaussians on a circle of radius 4, std 0.5");
  r.add("mixture", mixture, "any Gaussian mixture from data.weights, data.means, data.std");
  register_image_datasets(r);
  register_table_dataset(r);
}

torch::Tensor draw_rows(const torch::Tensor& rows, int64_t n, at::Generator& gen) {
  return draw_labelled_rows(rows, {}, n, gen).points;
}

LabelledPoints draw_labelled_rows(const torch::Tensor& rows, const torch::Tensor& labels, int64_t n, at::Generator& gen) {
  const int64_t total = rows.size(0);
  require(n >= 0, "cannot draw {} rows", n);
  require(!labels.defined() || labels.numel() == total, "{} labels for {} rows", labels.defined() ? labels.numel() : 0, total);
  if (n >= total) return {rows.to(torch::kFloat32).contiguous(), labels};
  torch::Tensor index = torch::randperm(total, gen, torch::kInt64).slice(0, 0, n);
  return {rows.index_select(0, index).to(torch::kFloat32).contiguous(),
          labels.defined() ? labels.index_select(0, index) : torch::Tensor()};
}

const Registry<DatasetFactory>& datasets() { return builtin_registry<DatasetFactory>("dataset"); }

void resolve(DataOptions& o) {
  datasets().get(o.name);
  if (o.name != "table")
    require(o.label_column == -1 && o.labels.empty() && o.column_mean.empty() && o.column_scale.empty(),
            "data.label_column, data.labels, data.column_mean and data.column_scale apply only to dataset 'table', not '{}'",
            o.name);
  auto preset = mixture_preset(o.name);
  if (!preset) {
    require(o.weights.empty() && o.means.empty() && o.std.empty(),
            "data.weights, data.means and data.std apply only to mixture datasets (mog2, 8gaussians, mixture), not '{}'",
            o.name);
    return;
  }
  if (o.means.empty()) o.means = preset->means;
  require(!o.means.empty(), "dataset 'mixture' needs data.means (e.g. --set 'data.means=[[0,0],[3,3]]')");
  if (o.weights.empty()) o.weights = o.means.size() == preset->weights.size() ? preset->weights
                                                                              : std::vector<double>(o.means.size(), 1.0);
  if (o.std.empty()) o.std = preset->std.empty() ? Matrix{{1.0}} : preset->std;
  require(o.weights.size() == o.means.size(), "data.weights has {} entries but data.means has {} rows",
          o.weights.size(), o.means.size());
  require(o.std.size() == 1 || o.std.size() == o.means.size(), "data.std needs 1 or {} rows, got {}", o.means.size(),
          o.std.size());
  double total = 0;
  for (double w : o.weights) total += w;
  require(total > 0, "data.weights must not all be zero");
}

void bind(Schema& s, DataOptions& o) {
  s.add("data.name", &o.name, "dataset").one_of(datasets().names());
  s.add("data.n_train", &o.n_train, "training points, drawn once from the data seed").at_least(1);
  s.add("data.weights", &o.weights, "mixture weights (mixture datasets)").non_negative();
  s.add("data.means", &o.means, "mixture means, one row per component");
  s.add("data.std", &o.std, "mixture std: number, per component, or per component and dimension").positive();
  s.add("data.path", &o.path,
        "image datasets: folder of their files, empty = the default (png-folder needs one); table: the .npy/.csv file");
  s.add("data.image_size", &o.image_size, "resize images to size × size (image datasets); 0 = native").non_negative();
  s.add("data.pixels", &o.pixels, "pixel range of image points: [-1, 1] or [0, 1] (image datasets)")
      .one_of({"minus-one-one", "zero-one"});
  s.add("data.header", &o.header, "table CSV: auto (a first row holding a non-number is a header), yes, no")
      .one_of({"auto", "yes", "no"});
  s.add("data.label_column", &o.label_column, "table: column of integer labels (0-based, taken out of the features); -1 = none")
      .at_least(-1);
  s.add("data.labels", &o.labels, "table: .npy of one integer label per row");
  s.add("data.class_names", &o.class_names,
        "png-folder of class sub-folders: their names, comma-separated; recorded by training, checked when loading");
  s.add("data.column_mean", &o.column_mean, "table: column means of the standardisation; empty = from the training rows");
  s.add("data.column_scale", &o.column_scale, "table: column scales of the standardisation; empty = from the training rows")
      .positive();
}

std::shared_ptr<const ToyDataset> make_dataset(const DataOptions& options) {
  DataOptions resolved = options;
  resolve(resolved);
  return datasets().get(resolved.name)(resolved);
}

}  // namespace scorediff
