// Progress: a redrawn bar with rate and ETA on a terminal, plain periodic lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace scorediff {

class Progress {
 public:
  // unit names what one step is ("step", "level", "batch"); quiet prints nothing.
  Progress(std::string label, int64_t total, std::string unit = "it", bool quiet = false, std::FILE* out = stderr);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(int64_t done, const std::string& status = {});
  void set_total(int64_t total) { total_ = total > 0 ? total : 1; }
  // Work already done before this process started (a resumed run): left out of the rate and ETA.
  void set_first(int64_t done) { first_ = done; }
  void finish(const std::string& status = {});
  double elapsed_seconds() const;

 private:
  void print(int64_t done, const std::string& status, bool final);
  std::string label_, unit_;
  int64_t total_;
  bool quiet_, terminal_, finished_ = false;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_print_;
  int64_t last_decile_ = 0;
  int64_t first_ = 0;
};

// "1:02:03" or "2:03".
std::string format_duration(double seconds);

}  // namespace scorediff
