// plot: figures are real PNG files of the requested size, written atomically, and each panel shows what was
// drawn in it: coloured marks inside the axes of a drawn panel, nothing in an empty one.
#include <gtest/gtest.h>
#include <png.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/png.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/plot/figures.hpp"
#include "scorediff/process/noise_process.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

// Width and height read back by libpng; fails the test if the file is not a valid PNG.
std::pair<int, int> png_size(const std::filesystem::path& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  EXPECT_NE(png_image_begin_read_from_file(&image, path.c_str()), 0) << path << ": " << image.message;
  std::pair<int, int> size{static_cast<int>(image.width), static_cast<int>(image.height)};
  png_image_free(&image);
  return size;
}

// What one panel holds inside its axes (the viewport of figure.cpp, 3 % inside it): the fraction of coloured
// pixels (largest minus smallest channel > 0.1: palette colours, not the black axes or grey text) and of dark
// ones (every channel < 0.3: arrows, lines, text). Panels count row by row from 1, as Figure numbers them.
struct PanelInk {
  double colour = 0, dark = 0;
};
PanelInk panel_ink(const std::filesystem::path& path, int cols, int rows, int panel) {
  torch::Tensor image = read_png(path);  // [3, H, W]
  const int64_t height = image.size(1), width = image.size(2);
  const int64_t pw = width / cols, ph = height / rows;
  const int64_t col = (panel - 1) % cols, row = (panel - 1) / cols;
  const double left = pw < 500 ? 0.2 : 0.19;
  auto at = [](int64_t origin, int64_t size, double fraction) { return origin + static_cast<int64_t>(fraction * size); };
  const int64_t x0 = at(col * pw, pw, left + 0.03), x1 = at(col * pw, pw, 0.95 - 0.03);
  const int64_t y0 = at(row * ph, ph, 1 - 0.9 + 0.03), y1 = at(row * ph, ph, 1 - 0.13 - 0.03);
  torch::Tensor inside = image.slice(1, y0, y1).slice(2, x0, x1);
  torch::Tensor spread = std::get<0>(inside.max(0)) - std::get<0>(inside.min(0));
  torch::Tensor darkest = std::get<0>(inside.max(0));
  return {(spread > 0.1).to(torch::kFloat64).mean().item<double>(),
          (darkest < 0.3).to(torch::kFloat64).mean().item<double>()};
}

}  // namespace

TEST(Figure, WritesEveryPanelKindAsAPng) {
  TempDir dir;
  auto gen = make_generator(1);
  torch::Tensor points = torch::randn({300, 2}, gen);
  {
    Figure fig(dir / "all.png", 1200, 800, 3, 2);
    fig.scatter(1, "scatter", {{points, "a", palette(0)}, {points + 1, "b", palette(1)}}, bounding_range({points}));
    fig.curves(2, "curves", "x", "y", {{"line", {1, 2, 3}, {1, 10, 100}, palette(2)}}, false, true);
    FieldPanel field;
    field.title = "field";
    field.range = {-2, 2, -2, 2};
    field.nx = field.ny = 9;
    field.field = -grid_points(field.range, 9, 9);
    field.density = torch::rand({30 * 30}, gen);
    field.density_n = 30;
    fig.field(3, field);
    fig.bars(4, "bars", "fraction", {"a", "b"}, {{"s1", {0.2, 0.8}}, {"s2", {0.5, 0.5}}}, 1.0);
    EXPECT_FALSE(std::filesystem::exists(dir / "all.png"));  // nothing visible before save()
    fig.save();
  }
  EXPECT_EQ(png_size(dir / "all.png"), std::make_pair(1200, 800));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator{}), 1);
  const auto path = dir / "all.png";
  EXPECT_GT(panel_ink(path, 3, 2, 1).colour, 0.02) << "scatter";
  EXPECT_GT(panel_ink(path, 3, 2, 2).colour, 0.001) << "curve";
  EXPECT_GT(panel_ink(path, 3, 2, 3).colour, 0.3) << "field: the density under the arrows";
  EXPECT_GT(panel_ink(path, 3, 2, 3).dark, 0.005) << "field: the arrows";
  EXPECT_GT(panel_ink(path, 3, 2, 4).colour, 0.05) << "bars";
  for (int empty : {5, 6}) {  // never drawn: white inside
    EXPECT_EQ(panel_ink(path, 3, 2, empty).colour, 0.0) << empty;
    EXPECT_EQ(panel_ink(path, 3, 2, empty).dark, 0.0) << empty;
  }
}

TEST(Figure, StandardFiguresFromARun) {
  TempDir dir;
  auto gen = make_generator(2);
  torch::Tensor data = torch::randn({200, 2}, gen);
  std::vector<nlohmann::json> log = {{{"step", 10}, {"loss", 1.0}, {"loss_per_level", {1.0, nullptr}}},
                                     {{"step", 20}, {"loss", 0.5}, {"loss_per_level", {0.6, 0.4}}}};
  plot_loss_curves(dir / "loss.png", log, {1.0, 0.1}, "t");
  plot_samples_vs_data(dir / "samples.png", data, data * 0.5, "samples");
  SigmaLadder process(0.01, 1.0, 3);
  ScoreFn score = [](const torch::Tensor& x, const torch::Tensor&) { return -x; };
  plot_score_fields(dir / "field.png", process, {-2, 2, -2, 2}, {{"a", score, 0.1, {}, data}, {"b", score, 0.5, {}, {}}});
  SampleResult result;
  result.samples = data;
  result.trajectory = {data, data};
  result.trajectory_sigma = {1.0, 0.1};
  plot_snapshots(dir / "snap.png", result, data);
  EXPECT_EQ(png_size(dir / "loss.png").first, 1300);
  EXPECT_EQ(png_size(dir / "samples.png").first, 1200);
  EXPECT_EQ(png_size(dir / "field.png").first, 1200);
  EXPECT_EQ(png_size(dir / "snap.png").first, 3 * 360);
  EXPECT_GT(panel_ink(dir / "samples.png", 2, 1, 1).colour, 0.01) << "data";
  EXPECT_GT(panel_ink(dir / "samples.png", 2, 1, 2).colour, 0.01) << "samples";
  EXPECT_GT(panel_ink(dir / "field.png", 2, 1, 1).colour, 0.005) << "field with its data points";
  EXPECT_GT(panel_ink(dir / "field.png", 2, 1, 1).dark, 0.005) << "arrows";
  EXPECT_GT(panel_ink(dir / "field.png", 2, 1, 2).dark, 0.005) << "arrows";
  for (int panel = 1; panel <= 3; ++panel) EXPECT_GT(panel_ink(dir / "snap.png", 3, 1, panel).colour, 0.01) << panel;
  EXPECT_GT(panel_ink(dir / "loss.png", 2, 1, 1).dark + panel_ink(dir / "loss.png", 2, 1, 1).colour, 0.002) << "loss";
  EXPECT_GT(panel_ink(dir / "loss.png", 2, 1, 2).colour, 0.001) << "loss per level";
}

TEST(Figure, BoundingRangeIsRobustToOutliers) {
  torch::Tensor x = torch::randn({10000, 2});
  x[0][0] = 1e6;
  x[1][1] = NAN;
  Range r = bounding_range({x});
  // The outlier and the NaN are ignored: the range ends a margin beyond the normal's 0.995 quantiles (±2.576).
  EXPECT_LT(r.x1, 10.0);
  EXPECT_GT(r.x1, 2.5);
  EXPECT_LT(r.x0, -2.5);
  EXPECT_NEAR(r.x1 - r.x0, r.y1 - r.y0, 1e-9);
}
