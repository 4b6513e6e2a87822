#include "scorediff/plot/figure.hpp"

#include <plplot/plstream.h>
#include <torch/torch.h>

#include <cmath>

#include "scorediff/core/error.hpp"
#include "scorediff/io/files.hpp"

namespace scorediff {
namespace {

constexpr int kBlack = 1, kGrey = 2, kFree = 3;  // cmap0 slots; kFree onward are set per draw

const Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                        {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

std::vector<PLFLT> plot_column(const torch::Tensor& points, int64_t c) {
  torch::Tensor col = points.select(1, c).to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<PLFLT>(col.data_ptr<double>(), col.data_ptr<double>() + col.numel());
}

}  // namespace

Rgb palette(int index) { return kPalette[((index % 10) + 10) % 10]; }

Range bounding_range(const std::vector<torch::Tensor>& sets, double margin) {
  std::vector<torch::Tensor> finite;
  for (const auto& s : sets) {
    torch::Tensor f = s.to(torch::kCPU, torch::kFloat64);
    finite.push_back(f.index({torch::isfinite(f).all(1)}));
  }
  torch::Tensor all = torch::cat(finite);
  if (all.size(0) == 0) return {-1, 1, -1, 1};
  torch::Tensor q = torch::tensor({0.005, 0.995}, torch::kFloat64);
  torch::Tensor lo = torch::quantile(all, q, 0);  // [2, D]
  double x0 = lo[0][0].item<double>(), x1 = lo[1][0].item<double>();
  double y0 = lo[0][1].item<double>(), y1 = lo[1][1].item<double>();
  double half = 0.5 * std::max(x1 - x0, y1 - y0) * (1 + 2 * margin) + 1e-9;
  double cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1);
  return {cx - half, cx + half, cy - half, cy + half};
}

torch::Tensor grid_points(const Range& r, int nx, int ny) {
  torch::Tensor xs = torch::linspace(r.x0, r.x1, nx, torch::kFloat64);
  torch::Tensor ys = torch::linspace(r.y0, r.y1, ny, torch::kFloat64);
  torch::Tensor gx = xs.unsqueeze(0).expand({ny, nx}).reshape({-1});
  torch::Tensor gy = ys.unsqueeze(1).expand({ny, nx}).reshape({-1});
  return torch::stack({gx, gy}, 1).to(torch::kFloat32);
}

struct Figure::Impl {
  AtomicFile file;
  std::unique_ptr<plstream> owner = std::make_unique<plstream>();
  plstream& pls = *owner;
  int panels;
  double char_scale = 0.85, left = 0.19;
  bool saved = false;
  explicit Impl(const std::filesystem::path& path, int panels) : file(path), panels(panels) {}

  void colour(int slot, Rgb c, double alpha = 1.0) {
    pls.scol0a(slot, c.r, c.g, c.b, alpha);
    pls.col0(slot);
  }
  void frame(int panel, const std::string& title, const std::string& xlabel, const std::string& ylabel, double x0,
             double x1, double y0, double y1, const char* xopt = "bcnst", const char* yopt = "bcnstv") {
    require(!saved, "figure already saved");
    require(panel >= 1 && panel <= panels, "figure has {} panels, asked for panel {}", panels, panel);
    pls.adv(panel);
    pls.schr(0, char_scale);
    pls.vpor(left, 0.95, 0.13, 0.9);
    pls.wind(x0, x1, y0, y1);
    pls.col0(kBlack);
    pls.width(1.0);
    pls.box(xopt, 0, 0, yopt, 0, 0);
    pls.lab(xlabel.c_str(), ylabel.c_str(), title.c_str());
  }
  // values [ny*nx] (x fastest) as an image from white (0) to the colour (r, g, b) at the maximum.
  void image(const Range& range, int nx, int ny, const torch::Tensor& values, double r, double g, double b) {
    PLFLT pos[2] = {0, 1}, red[2] = {1, r}, green[2] = {1, g}, blue[2] = {1, b};
    pls.scmap1l(true, 2, pos, red, green, blue, nullptr);
    torch::Tensor d = values.to(torch::kCPU, torch::kFloat64).reshape({ny, nx}).contiguous();
    d = torch::where(torch::isfinite(d), d, torch::zeros_like(d));
    const double* data = d.data_ptr<double>();
    PLFLT** z;
    pls.Alloc2dGrid(&z, nx, ny);
    for (int i = 0; i < nx; ++i)
      for (int j = 0; j < ny; ++j) z[i][j] = data[j * nx + i];
    double zmax = d.max().item<double>();
    pls.image(z, nx, ny, range.x0, range.x1, range.y0, range.y1, 0, zmax > 0 ? zmax : 1, range.x0, range.x1,
              range.y0, range.y1);
    pls.Free2dGrid(z, nx, ny);
  }
  // Legend entries drawn as coloured lines + labels in the panel's top-right corner.
  void legend(const std::vector<std::pair<std::string, Rgb>>& entries, bool symbols) {
    if (entries.empty()) return;
    std::vector<PLINT> opts, colours, styles, symbol_numbers, text_colours;
    std::vector<PLFLT> widths, scales;
    std::vector<std::string> labels, symbol_glyphs;
    int slot = kFree + 20;
    for (const auto& [label, rgb] : entries) {
      pls.scol0(slot, rgb.r, rgb.g, rgb.b);
      opts.push_back(symbols ? PL_LEGEND_SYMBOL : PL_LEGEND_LINE);
      colours.push_back(slot++);
      text_colours.push_back(kBlack);
      styles.push_back(1);
      widths.push_back(2.0);
      scales.push_back(1.2);
      symbol_numbers.push_back(3);
      labels.push_back(label);
      symbol_glyphs.push_back("#(728)");
    }
    std::vector<const char*> text, glyphs;
    for (const auto& l : labels) text.push_back(l.c_str());
    for (const auto& g : symbol_glyphs) glyphs.push_back(g.c_str());
    PLFLT w = 0, h = 0;
    auto n = static_cast<PLINT>(entries.size());
    pls.legend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE,
               0.02, 0.02, 0.08, 0, kGrey, 1, 0, 0, n, opts.data(), 0.8, 0.75, 1.8, 0.0, text_colours.data(),
               text.data(), nullptr, nullptr, nullptr, nullptr, colours.data(), styles.data(), widths.data(),
               colours.data(), scales.data(), symbol_numbers.data(), glyphs.data());
  }
};

Figure::Figure(std::filesystem::path path, int width, int height, int cols, int rows)
    : impl_(std::make_unique<Impl>(path, cols * rows)) {
  auto& pls = impl_->pls;
  pls.sdev("pngcairo");
  pls.sfnam(impl_->file.temp_path().c_str());
  pls.spage(90, 90, width, height, 0, 0);
  pls.scmap0n(48);  // slots for legend colours beyond the default 16
  pls.scolbg(255, 255, 255);
  pls.init();
  pls.scol0(kBlack, 0, 0, 0);
  pls.scol0(kGrey, 160, 160, 160);
  pls.ssub(cols, rows);
  // Small panels get smaller text and a wider left margin so axis labels stay inside the image.
  int panel_width = width / std::max(cols, 1);
  if (panel_width < 500) {
    impl_->char_scale = 0.7;
    impl_->left = 0.2;
  }
}

Figure::~Figure() = default;

void Figure::scatter(int panel, const std::string& title, const std::vector<ScatterSet>& sets, const Range& r) {
  impl_->frame(panel, title, "x#d1#u", "x#d2#u", r.x0, r.x1, r.y0, r.y1);
  std::vector<std::pair<std::string, Rgb>> entries;
  for (const auto& s : sets) {
    torch::Tensor p = s.points.to(torch::kCPU, torch::kFloat64);
    p = p.index({torch::isfinite(p).all(1)});
    std::vector<PLFLT> x = plot_column(p, 0), y = plot_column(p, 1);
    impl_->colour(kFree, s.color, s.alpha);
    impl_->pls.ssym(0, 0.55);
    impl_->pls.poin(static_cast<PLINT>(x.size()), x.data(), y.data(), 17);
    if (!s.label.empty()) entries.emplace_back(s.label, s.color);
  }
  impl_->legend(entries, true);
}

void Figure::curves(int panel, const std::string& title, const std::string& xlabel, const std::string& ylabel,
                    const std::vector<Curve>& curves, bool log_x, bool log_y) {
  auto tx = [&](double v) { return log_x ? std::log10(v) : v; };
  auto ty = [&](double v) { return log_y ? std::log10(v) : v; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& c : curves)
    for (size_t i = 0; i < c.x.size(); ++i)
      if (std::isfinite(tx(c.x[i])) && std::isfinite(ty(c.y[i]))) {
        x0 = std::min(x0, tx(c.x[i]));
        x1 = std::max(x1, tx(c.x[i]));
        y0 = std::min(y0, ty(c.y[i]));
        y1 = std::max(y1, ty(c.y[i]));
      }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  double pad = 0.05 * (y1 - y0);
  impl_->frame(panel, title, xlabel, ylabel, x0, x1, y0 - pad, y1 + pad, log_x ? "bcnstl" : "bcnst",
               log_y ? "bcnstlv" : "bcnstv");
  std::vector<std::pair<std::string, Rgb>> entries;
  for (const auto& c : curves) {
    impl_->colour(kFree, c.color);
    impl_->pls.width(2.0);
    std::vector<PLFLT> xs, ys;
    auto flush = [&] {
      if (xs.size() > 1) impl_->pls.line(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      xs.clear();
      ys.clear();
    };
    for (size_t i = 0; i < c.x.size(); ++i) {
      double x = tx(c.x[i]), y = ty(c.y[i]);
      if (std::isfinite(x) && std::isfinite(y)) {
        xs.push_back(x);
        ys.push_back(y);
      } else {
        flush();
      }
    }
    flush();
    if (!c.label.empty()) entries.emplace_back(c.label, c.color);
  }
  impl_->pls.width(1.0);
  impl_->legend(entries, false);
}

void Figure::field(int panel, const FieldPanel& f) {
  const Range& r = f.range;
  impl_->frame(panel, f.title, "x#d1#u", "x#d2#u", r.x0, r.x1, r.y0, r.y1);
  auto& pls = impl_->pls;
  if (f.density.defined()) {
    impl_->image(r, f.density_n, f.density_n, f.density, 0.62, 0.79, 0.94);
    pls.col0(kBlack);
    pls.box("bcst", 0, 0, "bcst", 0, 0);
  }
  if (f.points.defined()) {
    torch::Tensor p = f.points.to(torch::kCPU, torch::kFloat64);
    std::vector<PLFLT> x = plot_column(p, 0), y = plot_column(p, 1);
    impl_->colour(kFree, palette(1), 0.25);
    pls.ssym(0, 0.4);
    pls.poin(static_cast<PLINT>(x.size()), x.data(), y.data(), 17);
  }
  // Arrow length ∝ magnitude, scaled so the 80th-percentile arrow spans one grid cell; longer ones
  // are capped at 1.5 cells so a few huge scores far from the data do not shrink the rest to dots.
  torch::Tensor v = f.field.to(torch::kCPU, torch::kFloat64).reshape({f.ny, f.nx, 2});
  torch::Tensor finite = torch::isfinite(v).all(2, true);
  v = torch::where(finite, v, torch::zeros_like(v));
  double cell = std::min((r.x1 - r.x0) / f.nx, (r.y1 - r.y0) / f.ny);
  torch::Tensor length = v.norm(2, 2, true);
  double typical = torch::quantile(length.flatten(), 0.8).item<double>();
  if (typical > 0) {
    torch::Tensor scaled = length * (cell / typical);
    v = v * (scaled.clamp_max(1.5 * cell) / length.clamp_min(1e-300));
  }
  const double scale = 1.0;
  PLFLT **u, **w;
  pls.Alloc2dGrid(&u, f.nx, f.ny);
  pls.Alloc2dGrid(&w, f.nx, f.ny);
  std::vector<PLFLT> xg(f.nx), yg(f.ny);
  for (int i = 0; i < f.nx; ++i) xg[i] = r.x0 + (r.x1 - r.x0) * i / (f.nx - 1);
  for (int j = 0; j < f.ny; ++j) yg[j] = r.y0 + (r.y1 - r.y0) * j / (f.ny - 1);
  v = v.contiguous();
  const double* vd = v.data_ptr<double>();
  for (int i = 0; i < f.nx; ++i)
    for (int j = 0; j < f.ny; ++j) {
      u[i][j] = vd[(j * f.nx + i) * 2];
      w[i][j] = vd[(j * f.nx + i) * 2 + 1];
    }
  PLcGrid grid{xg.data(), yg.data(), nullptr, f.nx, f.ny, 0};
  pls.col0(kBlack);
  pls.vect(u, w, f.nx, f.ny, scale, pltr1, &grid);
  pls.Free2dGrid(u, f.nx, f.ny);
  pls.Free2dGrid(w, f.nx, f.ny);
}

void Figure::heatmap(int panel, const std::string& title, const Range& r, int nx, int ny, const torch::Tensor& values) {
  impl_->frame(panel, title, "x#d1#u", "x#d2#u", r.x0, r.x1, r.y0, r.y1);
  impl_->image(r, nx, ny, values, 0.12, 0.35, 0.7);
  impl_->pls.col0(kBlack);
  impl_->pls.box("bcst", 0, 0, "bcst", 0, 0);
}

void Figure::bars(int panel, const std::string& title, const std::string& ylabel,
                  const std::vector<std::string>& categories,
                  const std::vector<std::pair<std::string, std::vector<double>>>& series, double y_max) {
  auto n = static_cast<double>(categories.size());
  // Headroom above the bars for the legend.
  impl_->frame(panel, title, "", ylabel, 0, n, 0, 1.45 * y_max, "bc", "bcnstv");
  auto& pls = impl_->pls;
  double group = 0.8, width = group / std::max<size_t>(series.size(), 1);
  std::vector<std::pair<std::string, Rgb>> entries;
  for (size_t s = 0; s < series.size(); ++s) {
    Rgb c = palette(static_cast<int>(s));
    impl_->colour(kFree, c);
    for (size_t k = 0; k < categories.size() && k < series[s].second.size(); ++k) {
      double x0 = k + 0.1 + s * width, h = std::min(series[s].second[k], y_max);
      PLFLT xs[4] = {x0, x0, x0 + width, x0 + width}, ys[4] = {0, h, h, 0};
      pls.fill(4, xs, ys);
    }
    entries.emplace_back(series[s].first, c);
  }
  pls.col0(kBlack);
  for (size_t k = 0; k < categories.size(); ++k)
    pls.mtex("b", 1.5, (k + 0.5) / n, 0.5, categories[k].c_str());
  impl_->legend(entries, false);
}

void Figure::save() {
  if (impl_->saved) return;
  impl_->owner.reset();  // plend1: flushes and closes the PNG
  impl_->saved = true;
  impl_->file.commit();
}

}  // namespace scorediff
