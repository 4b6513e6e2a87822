#include "scorediff/process/time_grid.hpp"

#include <cmath>

#include "scorediff/core/error.hpp"

namespace scorediff {

GridKind parse_grid(const std::string& name) {
  if (name == "uniform") return GridKind::Uniform;
  if (name == "karras") return GridKind::Karras;
  if (name == "log-snr") return GridKind::LogSnr;
  fail("unknown time grid '{}'; valid: karras, log-snr, uniform", name);
}

std::vector<double> time_grid(const NoiseProcess& process, int64_t steps, GridKind kind, double rho, double t_end,
                              double t_start) {
  require(steps >= 1, "a time grid needs at least one step, got {}", steps);
  require(rho > 0, "the Karras grid needs rho > 0, got {}", rho);
  const double t_hi = t_start > 0 ? t_start : process.t_max();
  const double t_lo = t_end > 0 ? t_end : process.t_min();
  process.check_time(t_lo, "the final time");
  process.check_time(t_hi, "the start time");
  require(t_lo < t_hi, "the final time {} must be smaller than the start time {}", t_lo, t_hi);
  const double s_hi = process.sigma_at(t_hi), s_lo = process.sigma_at(t_lo);
  std::vector<double> t(static_cast<size_t>(steps + 1));
  for (int64_t i = 0; i <= steps; ++i) {
    const double f = static_cast<double>(i) / static_cast<double>(steps);
    double ti = 0;
    switch (kind) {
      case GridKind::Uniform: ti = t_hi + f * (t_lo - t_hi); break;
      case GridKind::Karras: {
        double a = std::pow(s_hi, 1 / rho), b = std::pow(s_lo, 1 / rho);
        ti = process.t_at_sigma(std::pow(a + f * (b - a), rho));
        break;
      }
      case GridKind::LogSnr: ti = process.t_at_sigma(std::exp(std::log(s_hi) + f * (std::log(s_lo) - std::log(s_hi)))); break;
    }
    t[static_cast<size_t>(i)] = ti;
  }
  t.front() = t_hi;  // exact ends, whatever the round trip through σ did
  t.back() = t_lo;
  return t;
}

}  // namespace scorediff
