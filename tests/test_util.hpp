// Helpers shared by the tests: a temporary directory, error-message matching, running the CLI.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <torch/types.h>

#include "scorediff/core/error.hpp"

namespace scorediff {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "scorediff-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Expects `expr` to throw scorediff::Error whose message contains `fragment`.
#define EXPECT_THAT_ERROR(expr, fragment)                                                   \
  do {                                                                                      \
    try {                                                                                   \
      (void)(expr);                                                                         \
      ADD_FAILURE() << #expr " did not throw";                                              \
    } catch (const ::scorediff::Error& e) {                                                 \
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();       \
    }                                                                                       \
  } while (0)

struct CliResult {
  int status = -1;
  std::string out, err;
};

// Runs the scorediff binary with `args` (a shell-quoted string) in `cwd`.
CliResult run_cli(const std::string& args, const std::filesystem::path& cwd = std::filesystem::current_path());
// Runs a shell command line in `cwd`, capturing its exit status, stdout and stderr.
CliResult run_command(const std::string& command, const std::filesystem::path& cwd = std::filesystem::current_path());
// Runs `args` in `cwd` and checks the contract for bad input: exit status 2, one line on stderr starting
// "scorediff: error: " and containing `fragment`, and no partial (".tmp-") file left anywhere under `cwd`.
void expect_bad_input(const std::string& args, const std::filesystem::path& cwd, const std::string& fragment);

// An image [C, H, W] with every pixel distinct: (k·H·W·C + c·H·W + y·W + x) / 255, modulo 256 levels.
inline torch::Tensor test_image(int64_t c, int64_t h, int64_t w, int64_t k = 0) {
  return ((torch::arange(c * h * w) + k * c * h * w).remainder(256).to(torch::kFloat32) / 255.0).view({c, h, w});
}

}  // namespace scorediff
