// Helpers shared by the tests: a temporary directory, error-message matching, running the CLI.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>
#include <filesystem>
#include <string>

#include <torch/types.h>

#include "scorediff/core/error.hpp"
#include "scorediff/data/gaussian_mixture.hpp"

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

// The 8-Gaussians mixture of the sampler tests: equal weights, means on the circle of radius 4, std 0.5.
inline std::shared_ptr<const GaussianMixture> eight_gaussians() {
  std::vector<double> means;
  for (int k = 0; k < 8; ++k) {
    means.push_back(4 * std::cos(k * M_PI / 4));
    means.push_back(4 * std::sin(k * M_PI / 4));
  }
  return std::make_shared<GaussianMixture>(torch::ones({8}, torch::kFloat64),
                                           torch::tensor(means, torch::kFloat64).reshape({8, 2}),
                                           torch::full({8, 2}, 0.5, torch::kFloat64));
}

// An image [C, H, W] with every pixel distinct: (k·H·W·C + c·H·W + y·W + x) / 255, modulo 256 levels.
inline torch::Tensor test_image(int64_t c, int64_t h, int64_t w, int64_t k = 0) {
  return ((torch::arange(c * h * w) + k * c * h * w).remainder(256).to(torch::kFloat32) / 255.0).view({c, h, w});
}

}  // namespace scorediff
