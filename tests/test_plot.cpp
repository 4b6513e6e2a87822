// plot: figures are real PNG files of the requested size, written atomically.
#include <gtest/gtest.h>
#include <png.h>

#include "scorediff/core/rng.hpp"
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
}

TEST(Figure, BoundingRangeIsRobustToOutliers) {
  torch::Tensor x = torch::randn({10000, 2});
  x[0][0] = 1e6;
  x[1][1] = NAN;
  Range r = bounding_range({x});
  EXPECT_LT(r.x1, 10.0);
  EXPECT_NEAR(r.x1 - r.x0, r.y1 - r.y0, 1e-9);
}
