#include "scorediff/core/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace scorediff {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool quiet, std::FILE* out)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(std::max<int64_t>(total, 1)),
      quiet_(quiet),
      terminal_(isatty(fileno(out)) != 0),
      out_(out),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  if (!finished_ && terminal_ && !quiet_) std::fputc('\n', out_);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& status) {
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  int64_t decile = done * 10 / total_;
  // Terminal: redraw at 10 Hz. Otherwise: a line at each tenth of the work or every 30 s.
  bool due = terminal_ ? since >= 0.1 : (decile > last_decile_ || since >= 30.0);
  if (!due) return;
  last_print_ = now;
  last_decile_ = decile;
  print(done, status, false);
}

void Progress::finish(const std::string& status) {
  if (finished_) return;
  finished_ = true;
  if (!quiet_) print(total_, status, true);
}

void Progress::print(int64_t done, const std::string& status, bool final) {
  double elapsed = elapsed_seconds();
  double rate = elapsed > 0 ? static_cast<double>(std::max<int64_t>(done - first_, 0)) / elapsed : 0.0;
  double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : NAN;
  double fraction = std::clamp(static_cast<double>(done) / static_cast<double>(total_), 0.0, 1.0);
  std::string rate_text = rate >= 10 ? fmt::format("{:.0f} {}/s", rate, unit_) : fmt::format("{:.2f} {}/s", rate, unit_);
  std::string timing = final ? fmt::format("in {}", format_duration(elapsed)) : fmt::format("ETA {}", format_duration(eta));
  std::string suffix = status.empty() ? "" : "  " + status;
  if (terminal_) {
    constexpr int width = 24;
    int filled = static_cast<int>(fraction * width);
    std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    fmt::print(out_, "\r\033[K{} [{}] {}/{} {:3.0f}%  {}  {}{}", label_, bar, done, total_, 100 * fraction, rate_text,
               timing, suffix);
    if (final) std::fputc('\n', out_);
  } else {
    fmt::print(out_, "{}: {}/{} ({:.0f}%)  {}  {}{}\n", label_, done, total_, 100 * fraction, rate_text, timing, suffix);
  }
  std::fflush(out_);
}

}  // namespace scorediff
