#include "scorediff/plot/figures.hpp"

#include <torch/torch.h>

#include <cmath>

namespace scorediff {

void plot_loss_curves(const std::filesystem::path& path, const std::vector<nlohmann::json>& log,
                      const std::vector<double>& level_sigmas, const std::string& title) {
  Curve total{"total", {}, {}, {0, 0, 0}};
  std::vector<Curve> levels;
  for (size_t l = 0; l < level_sigmas.size(); ++l)
    levels.push_back({fmt::format("#gs={:.3g}", level_sigmas[l]), {}, {}, palette(static_cast<int>(l))});
  for (const auto& record : log) {
    double step = record.at("step").get<double>();
    total.x.push_back(step);
    total.y.push_back(record.at("loss").is_number() ? record.at("loss").get<double>() : NAN);
    const auto& per = record.at("loss_per_level");
    for (size_t l = 0; l < levels.size() && l < per.size(); ++l) {
      levels[l].x.push_back(step);
      levels[l].y.push_back(per[l].is_number() ? per[l].get<double>() : NAN);
    }
  }
  Figure fig(path, 1300, 520, 2, 1);
  fig.curves(1, title + ": training loss", "step", "loss (window mean)", {total}, false, false);
  fig.curves(2, "loss per noise level", "step", "loss", levels, false, true);
  fig.save();
}

void plot_samples_vs_data(const std::filesystem::path& path, const torch::Tensor& data, const torch::Tensor& samples,
                          const std::string& sample_title) {
  Range range = bounding_range({data});
  Figure fig(path, 1200, 600, 2, 1);
  fig.scatter(1, fmt::format("data ({} points)", data.size(0)), {{data, "", palette(0)}}, range);
  fig.scatter(2, sample_title, {{samples, "", palette(3)}}, range);
  fig.save();
}

void plot_score_fields(const std::filesystem::path& path, const NoiseProcess& process, const Range& range,
                       const std::vector<ScoreFieldSpec>& fields, int grid) {
  auto cols = static_cast<int>(fields.size());
  Figure fig(path, 600 * cols, 600, cols, 1);
  torch::Tensor points = grid_points(range, grid, grid);
  torch::Tensor fine = grid_points(range, 120, 120);
  for (int i = 0; i < cols; ++i) {
    const auto& spec = fields[static_cast<size_t>(i)];
    torch::Tensor t = torch::full({points.size(0)}, process.t_at_sigma(spec.sigma), torch::kFloat32);
    FieldPanel panel;
    panel.title = spec.title;
    panel.range = range;
    panel.nx = panel.ny = grid;
    {
      torch::NoGradGuard no_grad;
      panel.field = spec.score(points, t);
    }
    if (spec.density) {
      panel.density = spec.density(fine);
      panel.density_n = 120;
    }
    panel.points = spec.points;
    fig.field(i + 1, panel);
  }
  fig.save();
}

std::function<torch::Tensor(const torch::Tensor&)> kernel_density(const torch::Tensor& data) {
  torch::Tensor points = data.to(torch::kCPU, torch::kFloat64);
  if (points.size(0) > 4000) points = points.narrow(0, 0, 4000);
  const double n = static_cast<double>(points.size(0));
  const double spread = std::sqrt(points.var(0).mean().item<double>());
  const double h = 0.5 * spread * std::pow(n, -1.0 / 6.0);
  return [points, h](const torch::Tensor& grid) {
    torch::Tensor g = grid.to(torch::kFloat64);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < g.size(0); i += 2048) {
      torch::Tensor d2 = torch::cdist(g.narrow(0, i, std::min<int64_t>(2048, g.size(0) - i)), points).pow(2);
      parts.push_back(torch::exp(-d2 / (2 * h * h)).mean(1));
    }
    return torch::cat(parts);
  };
}

void plot_snapshots(const std::filesystem::path& path, const SampleResult& result, const torch::Tensor& data) {
  auto n = static_cast<int>(result.trajectory.size()) + 1;
  int cols = std::min(n, 4), rows = (n + cols - 1) / cols;
  Range range = bounding_range({data});
  Figure fig(path, 360 * cols, 360 * rows, cols, rows);
  for (int i = 0; i + 1 < n; ++i)
    fig.scatter(i + 1, fmt::format("after #gs={:.3g}", result.trajectory_sigma[static_cast<size_t>(i)]),
                {{result.trajectory[static_cast<size_t>(i)], "", palette(0)}}, range);
  fig.scatter(n, fmt::format("final ({} NFE)", result.nfe), {{result.samples, "", palette(3)}}, range);
  fig.save();
}

}  // namespace scorediff
