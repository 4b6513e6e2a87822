// PNG figures a person can read (axes, titles, legends), drawn with PLplot's cairo driver.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace scorediff {

struct Rgb {
  int r, g, b;
};
// Tableau-10 colours, cycled.
Rgb palette(int index);

struct Range {
  double x0, x1, y0, y1;
};
// A square-ish box around the points of every set (robust: 0.5%–99.5% quantiles), with a margin.
Range bounding_range(const std::vector<torch::Tensor>& sets, double margin = 0.15);

struct ScatterSet {
  torch::Tensor points;  // [N, 2]
  std::string label;
  Rgb color;
  double alpha = 0.35;
};

struct Curve {
  std::string label;
  std::vector<double> x, y;  // NaN entries are gaps
  Rgb color;
};

struct FieldPanel {
  std::string title;
  Range range;
  int nx = 0, ny = 0;
  torch::Tensor field;    // [nx*ny, 2] vectors at the grid points (x fastest), drawn as arrows
  torch::Tensor density;  // [density_n², x fastest] optional background heatmap on its own finer grid
  int density_n = 0;
  torch::Tensor points;   // [N, 2] optional overlay
};

// A figure of cols × rows panels, written atomically to `path` when save() is called.
class Figure {
 public:
  Figure(std::filesystem::path path, int width, int height, int cols = 1, int rows = 1);
  ~Figure();
  Figure(const Figure&) = delete;
  Figure& operator=(const Figure&) = delete;

  void scatter(int panel, const std::string& title, const std::vector<ScatterSet>& sets, const Range& range);
  void curves(int panel, const std::string& title, const std::string& xlabel, const std::string& ylabel,
              const std::vector<Curve>& curves, bool log_x = false, bool log_y = false);
  void field(int panel, const FieldPanel& field);
  // A density (or any non-negative field) on a regular grid over range: values [ny*nx], x fastest.
  void heatmap(int panel, const std::string& title, const Range& range, int nx, int ny, const torch::Tensor& values);
  // Grouped bars: one group per category, one bar per series.
  void bars(int panel, const std::string& title, const std::string& ylabel, const std::vector<std::string>& categories,
            const std::vector<std::pair<std::string, std::vector<double>>>& series, double y_max);
  void save();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Points of a regular grid over range: [nx*ny, 2], x fastest.
torch::Tensor grid_points(const Range& range, int nx, int ny);

}  // namespace scorediff
