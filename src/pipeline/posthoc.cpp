#include "scorediff/pipeline/posthoc.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "scorediff/core/error.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/train/hooks/posthoc_snapshots.hpp"

namespace scorediff {
namespace {

// The run's snapshot files by step, those up to `last`; one of them must be at `last`.
std::map<int64_t, std::filesystem::path> snapshot_files(const std::filesystem::path& run_dir, int64_t last) {
  std::map<int64_t, std::filesystem::path> out;
  const std::filesystem::path dir = run_dir / "posthoc";
  const std::string prefix = "step-", suffix = ".safetensors";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    int64_t step = 0;
    const char* first = name.data() + prefix.size();
    const char* end = name.data() + name.size() - suffix.size();
    const auto [ptr, error] = std::from_chars(first, end, step);
    if (error != std::errc() || ptr != end || step < 1) continue;
    if (step <= last) out.emplace(step, entry.path());
  }
  require(out.count(last) == 1, "'{}' has no post-hoc EMA snapshot of step {} (the reconstruction is made at a step "
          "with a snapshot: a multiple of train.posthoc_every, or the run's last)", dir.string(), last);
  return out;
}

// The step of the run's last.safetensors.
int64_t last_step(const std::filesystem::path& run_dir) {
  const std::filesystem::path last = run_dir / "last.safetensors";
  std::error_code ec;
  require(std::filesystem::exists(last, ec), "'{}' has no last.safetensors", run_dir.string());
  return checkpoint_step(read_safetensors(last), last);
}

// The output must not replace a file the run needs: its checkpoints and snapshots.
void check_not_the_runs_own(const std::filesystem::path& run_dir, const std::filesystem::path& out) {
  std::error_code ec;
  const std::filesystem::path o = std::filesystem::weakly_canonical(out, ec);
  const std::filesystem::path r = std::filesystem::weakly_canonical(run_dir, ec);
  const bool own = o == r / "last.safetensors" || o.parent_path() == r / "ckpt" || o.parent_path() == r / "posthoc";
  require(!own, "posthoc-ema: '{}' is one of the run's own checkpoints or snapshots; write the result elsewhere",
          out.string());
}

std::vector<double> metadata_list(const TensorFile& file, const std::string& key, const std::filesystem::path& path) {
  auto it = file.metadata.find(key);
  require(file.metadata.count("format") && file.metadata.at("format") == kPosthocFormat && it != file.metadata.end(),
          "'{}' is not a scorediff post-hoc EMA snapshot", path.string());
  const nlohmann::json list = nlohmann::json::parse(it->second, nullptr, false);
  require(list.is_array() && !list.empty(), "'{}': metadata '{}' is not a list", path.string(), key);
  std::vector<double> out;
  for (const auto& v : list) {
    require(v.is_number(), "'{}': metadata '{}' is not a list of numbers", path.string(), key);
    out.push_back(v.get<double>());
  }
  return out;
}

std::filesystem::path checkpoint_of_step(const std::filesystem::path& run_dir, int64_t step) {
  const std::filesystem::path last = run_dir / "last.safetensors", numbered = run_dir / "ckpt" / fmt::format("step-{}.safetensors", step);
  std::error_code ec;
  if (std::filesystem::exists(numbered, ec)) return numbered;
  require(std::filesystem::exists(last, ec), "'{}' has no checkpoint of step {}", run_dir.string(), step);
  require(checkpoint_step(read_safetensors(last), last) == step,
          "'{}' has no checkpoint of step {} (neither {} nor last.safetensors)", run_dir.string(), step,
          numbered.filename().string());
  return last;
}

}  // namespace

PosthocEma write_posthoc_ema(const std::filesystem::path& run_dir, double sigma_rel, int64_t step,
                             const std::filesystem::path& out) {
  PosthocEma result;
  result.sigma_rel = sigma_rel;
  result.gamma = power_ema_gamma(sigma_rel);
  check_not_the_runs_own(run_dir, out);
  std::error_code ec;
  require(std::filesystem::is_directory(run_dir / "posthoc", ec),
          "'{}' has no post-hoc EMA snapshots (posthoc/); train with train.posthoc_sigma_rels = [0.05, 0.1]",
          run_dir.string());
  // Without a step: the run's last (a fresh run clears the snapshots of an earlier one in its folder, and a
  // resumed one's snapshots past its last checkpoint were rewritten by the same steps).
  result.step = step > 0 ? step : last_step(run_dir);
  const auto files = snapshot_files(run_dir, result.step);
  std::vector<int64_t> ema_count;  // EMAs per file, in file order
  for (const auto& [file_step, path] : files) {
    const TensorFile file = read_safetensors(path);
    const std::vector<double> gammas = metadata_list(file, "gammas", path);
    for (double g : gammas) result.snapshots.push_back({file_step, g});
    ema_count.push_back(static_cast<int64_t>(gammas.size()));
  }
  result.coefficients = posthoc_ema_coefficients(result.snapshots, result.step, result.gamma);
  const PowerEmaSnapshot target{result.step, result.gamma};
  double error = power_profile_dot(target, target);
  for (size_t i = 0; i < result.snapshots.size(); ++i) {
    error -= 2 * result.coefficients[i] * power_profile_dot(result.snapshots[i], target);
    for (size_t j = 0; j < result.snapshots.size(); ++j)
      error += result.coefficients[i] * result.coefficients[j] * power_profile_dot(result.snapshots[i], result.snapshots[j]);
  }
  result.relative_error = std::sqrt(std::max(0.0, error) / power_profile_dot(target, target));

  result.base = checkpoint_of_step(run_dir, result.step);
  TensorFile checkpoint = read_safetensors(result.base);
  checkpoint_config(checkpoint, result.base);  // fails with one line if it is not a scorediff checkpoint
  std::map<std::string, torch::Tensor> sums;  // ema.<parameter> → Σ x_i θ̂_i, in float64
  size_t index = 0, file_index = 0;
  // Each snapshot is read again here rather than kept from the first pass: one file in memory at a time, whatever
  // the model's size and the number of snapshots.
  for (const auto& [file_step, path] : files) {
    const TensorFile file = read_safetensors(path);
    for (int64_t k = 0; k < ema_count[file_index]; ++k, ++index)
      for (auto& [name, tensor] : checkpoint.tensors) {
        if (name.rfind("ema.", 0) != 0) continue;
        const std::string key = fmt::format("posthoc.{}.{}", k, name.substr(4));
        require(file.contains(key) && file.at(key).sizes() == tensor.sizes(),
                "'{}' does not match the run's checkpoint: tensor '{}' missing or mis-shaped", path.string(), key);
        torch::Tensor term = file.at(key).to(torch::kFloat64) * result.coefficients[index];
        auto it = sums.find(name);
        if (it == sums.end()) sums.emplace(name, term);
        else it->second.add_(term);
      }
    ++file_index;
  }
  for (auto& [name, tensor] : checkpoint.tensors)
    if (auto it = sums.find(name); it != sums.end()) tensor = it->second.to(tensor.scalar_type());
  checkpoint.metadata["posthoc_sigma_rel"] = fmt::format("{}", sigma_rel);
  checkpoint.metadata["posthoc_step"] = std::to_string(result.step);
  write_safetensors(out, checkpoint);
  return result;
}

}  // namespace scorediff
