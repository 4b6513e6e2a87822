// Tables as point datasets: parsing (.npy through read_npy, CSV by hand: a handful of lines that give
// the line and column of a bad cell), the held-out split and the column standardisation.
#include "scorediff/data/table.hpp"

#include <torch/torch.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "scorediff/core/error.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"

namespace scorediff {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\"'"), b = s.find_last_not_of(" \t\r\"'");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::vector<std::string> split_cells(const std::string& line) {
  std::vector<std::string> cells;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    cells.push_back(trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) return cells;
    start = comma + 1;
  }
}

// The cell as a number, or nothing when it is not one (the whole cell must parse).
std::optional<double> parse_number(const std::string& cell) {
  if (cell.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(cell.c_str(), &end);
  if (end != cell.c_str() + cell.size()) return std::nullopt;
  return v;
}

// CSV rows [N, D] as float64; `lines` keeps each row's line number in the file for the labels' errors.
torch::Tensor read_csv(const fs::path& path, const std::string& header, std::vector<int64_t>& lines) {
  const std::string text = read_maybe_gzipped(path, "table");
  std::vector<double> values;
  int64_t width = -1, first_line = 0, line_no = 0;
  bool first = true;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    std::vector<std::string> cells = split_cells(line);
    if (first) {
      first = false;
      bool numeric = true;
      for (const auto& c : cells) numeric = numeric && parse_number(c).has_value();
      if (header == "yes" || (header == "auto" && !numeric)) continue;
    }
    if (width < 0) {
      width = static_cast<int64_t>(cells.size());
      first_line = line_no;
    }
    require(static_cast<int64_t>(cells.size()) == width, "table '{}' line {} has {} cells, line {} has {}", path.string(),
            line_no, cells.size(), first_line, width);
    for (size_t c = 0; c < cells.size(); ++c) {
      std::optional<double> v = parse_number(cells[c]);
      require(v.has_value(), "table '{}' line {}, column {}: {} is not a number", path.string(), line_no, c + 1,
              cells[c].empty() ? std::string("an empty cell") : "'" + cells[c] + "'");
      require(std::isfinite(*v), "table '{}' line {}, column {}: '{}' is not finite", path.string(), line_no, c + 1,
              cells[c]);
      values.push_back(*v);
    }
    lines.push_back(line_no);
  }
  require(width > 0, "table '{}' has no rows of numbers", path.string());
  return torch::tensor(values, torch::kFloat64).reshape({static_cast<int64_t>(lines.size()), width});
}

torch::Tensor read_npy_table(const fs::path& path) {
  torch::Tensor t = read_npy(path);
  require(t.dim() == 2, "table '{}' must be a matrix [N, D], got shape [{}]", path.string(), fmt::join(t.sizes(), ", "));
  require(t.scalar_type() != torch::kBool, "table '{}' holds booleans, not numbers", path.string());
  t = t.to(torch::kFloat64).contiguous();
  torch::Tensor bad = (~torch::isfinite(t)).nonzero();
  require(bad.size(0) == 0, "table '{}' row {}, column {} is not finite", path.string(),
          bad.size(0) > 0 ? bad[0][0].item<int64_t>() + 1 : 0, bad.size(0) > 0 ? bad[0][1].item<int64_t>() + 1 : 0);
  return t;
}

// Float labels as int64, each a whole number >= 0; `where(i)` names the row of the first bad one.
torch::Tensor checked_labels(const torch::Tensor& raw, const std::function<std::string(int64_t)>& where) {
  torch::Tensor v = raw.to(torch::kFloat64).contiguous();
  const double* p = v.data_ptr<double>();
  for (int64_t i = 0; i < v.numel(); ++i)
    require(std::isfinite(p[i]) && p[i] == std::floor(p[i]) && p[i] >= 0, "{}: label {} is not a whole number >= 0",
            where(i), p[i]);
  return v.to(torch::kInt64);
}

// Column statistics (mean, scale) of the training rows; a constant column gets scale 1.
std::pair<torch::Tensor, torch::Tensor> column_statistics(const torch::Tensor& rows) {
  torch::Tensor mean = rows.mean(0);
  torch::Tensor scale = rows.std(0, false);
  scale = torch::where(scale > 1e-12 * (mean.abs() + 1), scale, torch::ones_like(scale));
  return {mean, scale};
}

std::vector<double> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

class TableDataset : public ToyDataset {
 public:
  explicit TableDataset(const DataOptions& o) {
    require(!o.path.empty(), "dataset 'table' needs data.path: a .npy or .csv file of [N, D] numbers");
    Table table = read_table(o.path, o.header, o.label_column, o.labels);
    const int64_t n = table.values.size(0), d = table.values.size(1);
    require(n >= kTableMinRows, "table '{}' has {} rows; at least {} are needed (every {}th row is held out)", o.path, n,
            kTableMinRows, kTableHeldOutEvery);
    torch::Tensor held = torch::arange(n).remainder(kTableHeldOutEvery) == kTableHeldOutEvery - 1;
    torch::Tensor train = table.values.index({~held}), test = table.values.index({held});
    if (o.column_mean.empty() && o.column_scale.empty()) {
      std::tie(mean_, scale_) = column_statistics(train);
    } else {
      require(static_cast<int64_t>(o.column_mean.size()) == d && static_cast<int64_t>(o.column_scale.size()) == d,
              "data.column_mean and data.column_scale need {} entries each (the table's columns), got {} and {}", d,
              o.column_mean.size(), o.column_scale.size());
      mean_ = torch::tensor(o.column_mean, torch::kFloat64);
      scale_ = torch::tensor(o.column_scale, torch::kFloat64);
    }
    train_ = to_model_units(train);
    held_out_ = to_model_units(test);
    if (table.labels.defined()) labels_ = table.labels.index({~held});
  }
  int64_t dim() const override { return train_.size(1); }
  torch::Tensor sample(int64_t n, at::Generator& gen) const override { return draw_rows(train_, n, gen); }
  LabelledPoints sample_labelled(int64_t n, at::Generator& gen) const override {
    return draw_labelled_rows(train_, labels_, n, gen);
  }
  int64_t classes() const override { return labels_.defined() && labels_.numel() > 0 ? labels_.max().item<int64_t>() + 1 : 0; }
  torch::Tensor held_out() const override { return held_out_; }
  torch::Tensor to_data_units(const torch::Tensor& x) const override {
    return (x.to(torch::kCPU, torch::kFloat64) * scale_ + mean_).to(x.scalar_type());
  }
  torch::Tensor to_model_units(const torch::Tensor& x) const override {
    return ((x.to(torch::kCPU, torch::kFloat64) - mean_) / scale_).to(torch::kFloat32).contiguous();
  }
  void record(DataOptions& o) const override {
    o.column_mean = to_vector(mean_);
    o.column_scale = to_vector(scale_);
  }

 private:
  torch::Tensor mean_, scale_, train_, held_out_, labels_;
};

}  // namespace

Table read_table(const fs::path& path, const std::string& header, int64_t label_column, const fs::path& labels_path) {
  require(header == "auto" || header == "yes" || header == "no", "data.header must be auto, yes or no, got '{}'", header);
  require(label_column < 0 || labels_path.empty(), "give labels by data.label_column or by data.labels, not both");
  const bool npy = ends_with(path.string(), ".npy");
  std::vector<int64_t> lines;
  Table table;
  table.values = npy ? read_npy_table(path) : read_csv(path, header, lines);
  auto where = [&](int64_t i) {
    return npy ? fmt::format("table '{}' row {}", path.string(), i + 1)
               : fmt::format("table '{}' line {}", path.string(), lines[static_cast<size_t>(i)]);
  };
  const int64_t n = table.values.size(0), columns = table.values.size(1);
  if (label_column >= 0) {
    require(label_column < columns, "data.label_column = {} is out of range: table '{}' has {} columns (0 to {})",
            label_column, path.string(), columns, columns - 1);
    require(columns >= 2, "table '{}' has only its label column", path.string());
    table.labels = checked_labels(table.values.select(1, label_column), where);
    torch::Tensor keep = torch::arange(columns) != label_column;
    table.values = table.values.index({torch::indexing::Slice(), keep}).contiguous();
  } else if (!labels_path.empty()) {
    torch::Tensor raw = read_npy(labels_path);
    require(raw.dim() == 1, "data.labels '{}' must be a vector [N], got shape [{}]", labels_path.string(),
            fmt::join(raw.sizes(), ", "));
    require(raw.size(0) == n, "data.labels '{}' has {} entries but table '{}' has {} rows", labels_path.string(),
            raw.size(0), path.string(), n);
    table.labels = checked_labels(raw, [&](int64_t i) { return fmt::format("data.labels '{}' entry {}", labels_path.string(), i + 1); });
  }
  return table;
}

void register_table_dataset(Registry<DatasetFactory>& r) {
  r.add("table", [](const DataOptions& o) { return std::make_shared<TableDataset>(o); },
        "any [N, D] table from data.path (.npy, .csv, .csv.gz), standardised, every 5th row held out");
}

}  // namespace scorediff
