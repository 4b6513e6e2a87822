// scorediff density: a normalised 2-D density from a score (line integrals, seed 002) or from an energy
// model (exp(−U)/Z on the grid), with a heatmap, the grid as .npy, and the distance to the true density
// when the dataset has one.
#include <fmt/core.h>

#include "cli/common.hpp"
#include "cli/score_source.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/likelihood/line_integral.hpp"
#include "scorediff/plot/figure.hpp"

namespace scorediff::cli {

void add_density_command(CLI::App& app) {
  struct Args {
    ScoreSourceArgs source;
    std::string out = "density", method = "line";
    double sigma = 0;
    int64_t grid = 200, nodes = 8;
    std::vector<double> range;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("density", "Normalised 2-D density from a score (line integral) or an energy model");
  add_score_source_options(cmd, args->source, "override a config key (any key with --analytic)");
  cmd->add_option("-o,--out", args->out, "output directory: density.png, density.npy [ny, nx], grid.npy [ny*nx, 2]")
      ->capture_default_str();
  cmd->add_option("--method", args->method, "line: ∫ s·dx from the grid centre; energy: exp(−U)/Z (energy models)")
      ->check(CLI::IsMember({"line", "energy"}))
      ->capture_default_str();
  cmd->add_option("--sigma", args->sigma, "noise level (default: the process' smallest)")->check(CLI::PositiveNumber & finite());
  cmd->add_option("--grid", args->grid, "grid points per axis")->capture_default_str()->check(CLI::Range(2, 2000));
  cmd->add_option("--nodes", args->nodes, "Gauss-Legendre nodes per grid cell")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--range", args->range, "x0 x1 y0 y1 (default: around the data)")->expected(4)->check(finite());
  cmd->callback([args] {
    ScoreSource source = load_score_source(args->source, {}, {"data."});
    const Prepared& p = source.loaded.prepared;
    require(p.train_data.size(1) == 2, "density draws 2-D models; this one has dimension {}", p.train_data.size(1));
    std::filesystem::path out(args->out);
    ensure_output_dir(out);
    const double sigma = args->sigma > 0 ? args->sigma : p.process->sigma_min();
    require(sigma >= p.process->sigma_min() && sigma <= p.process->sigma_max(),
            "--sigma {} is outside the model's noise range [{}, {}]", sigma, p.process->sigma_min(), p.process->sigma_max());
    Range r = args->range.empty() ? bounding_range({p.train_data.to(torch::kCPU)})
                                  : Range{args->range[0], args->range[1], args->range[2], args->range[3]};
    require(r.x1 > r.x0 && r.y1 > r.y0, "--range must be x0 < x1 and y0 < y1");
    const double t = p.process->t_at_sigma(sigma);
    const int64_t n = args->grid;
    GridDensity g;
    if (args->method == "energy") {
      require(!source.analytic && source.loaded.model->network().has_energy(),
              "--method energy needs an energy model checkpoint (model.name = 'energy-mlp')");
      g = make_grid(r.x0, r.x1, r.y0, r.y1, n, n);
      normalise_on_grid(g, -energy_at_sigma(source.loaded.model, *p.process, g.points, sigma));
    } else {
      g = grid_density(source.score, r.x0, r.x1, r.y0, r.y1, n, n, t, args->nodes);
    }
    nlohmann::json result = {{"sigma", sigma}, {"method", args->method}, {"grid", {n, n}},
                             {"range", {r.x0, r.x1, r.y0, r.y1}}, {"out", out.string()}};
    torch::Tensor density = torch::exp(g.log_density);
    const GaussianMixture* truth = p.dataset->mixture();
    const int panels = truth != nullptr ? 2 : 1;
    Figure fig(out / "density.png", 600 * panels, 600, panels, 1);
    fig.heatmap(1, fmt::format("{}, #gs = {:.3g}", args->method == "energy" ? "exp(-U)/Z" : "from the score", sigma), r,
                static_cast<int>(n), static_cast<int>(n), density);
    if (truth != nullptr) {
      torch::Tensor times = torch::full({1}, t, torch::kFloat64);
      GridDensity true_grid = g;
      normalise_on_grid(true_grid, truth->log_prob(g.points, p.process->mean_coef(times), p.process->std(times)));
      result["total_variation"] = total_variation(g, g.log_density, true_grid.log_density);
      fig.heatmap(2, fmt::format("true density, #gs = {:.3g}", sigma), r, static_cast<int>(n), static_cast<int>(n),
                  torch::exp(true_grid.log_density));
    }
    fig.save();
    write_npy(out / "density.npy", density.reshape({n, n}));
    write_npy(out / "grid.npy", g.points);
    fmt::print("{}\n", result.dump());
  });
}

}  // namespace scorediff::cli
