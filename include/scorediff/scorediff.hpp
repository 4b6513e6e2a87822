// scorediff's public C++ API: load a trained checkpoint, sample from it, evaluate its score and denoiser,
// compute PF-ODE log-likelihoods, train from a preset or TOML file, and measure samples against data.
//
// This header and scorediff/error.hpp are the whole public surface: they need the standard library only
// (no LibTorch, fmt or JSON headers), and every error is a scorediff::Error whose message is the line the
// command-line program prints. Arrays are dense row-major float32; a model's points are [N, D] and its
// images [N, C, H, W] (or [N, C·H·W]), in the data's own units, as `scorediff sample` writes them.
// docs/library.md has a complete example; find_package(scorediff) gives the target scorediff::scorediff.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "scorediff/error.hpp"

namespace scorediff {

// The library's version ("0.1.0").
std::string version();

// A dense row-major float32 array.
struct Array {
  std::vector<int64_t> shape;
  std::vector<float> data;  // product of shape elements
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
};

struct LoadOptions {
  bool ema = true;   // the EMA weights (what `scorediff sample` uses), or the raw ones
  int threads = 0;   // intra-op threads while this model computes; 0: the run's run.threads
};

struct SampleRequest {
  int64_t n = 0;              // number of samples; 0: the checkpoint's sample.n
  std::string sampler;        // a registered sampler name; "": the checkpoint's sample.sampler
  int64_t nfe = 0;            // score evaluations; 0: the checkpoint's sample.nfe
  int64_t seed = -1;          // -1: the run's seed; the same seed gives `scorediff sample --seed`'s samples
  std::string classes;        // class-conditional models: "all", "none", "k" or "k1,k2,..."; "": the checkpoint's
  double cfg = -1;            // classifier-free guidance weight; < 0: the checkpoint's
  std::vector<std::string> sets;  // further sample.* keys, "sample.key=value" (as `scorediff sample --set`)
  bool quiet = true;          // no progress line on stderr
};

struct LikelihoodRequest {
  std::string divergence = "exact";  // exact, or hutchinson (one Rademacher probe)
  int64_t seed = -1;                 // the Hutchinson probes' seed; -1: the run's
};

// A trained model, loaded from a checkpoint (.safetensors written by `scorediff train`). Copies share the
// loaded weights. The library computes one call at a time (LibTorch's thread count is process-wide): calls from
// several threads are safe and wait for each other.
class Model {
 public:
  static Model load(const std::string& checkpoint, const LoadOptions& options = {});

  // Samples in data units: [n, D] points or [n, C, H, W] images.
  Array sample(const SampleRequest& request = {}) const;
  // Labels of the last class-conditional sample() ([n], as `scorediff sample` writes to <out>.labels.npy);
  // empty for unconditional models.
  std::vector<int64_t> last_labels() const;
  // The score ∇ₓ log p_σ(x) at noise level sigma (one value, or one per row, each inside the model's noise
  // range), x and result in the model's units (for images: the pixels in the range the model was trained on,
  // data.pixels). Class-conditional models: the unconditional (null-class) score.
  Array score(const Array& x, const std::vector<double>& sigma) const;
  // Tweedie's denoiser E[x₀ | x] = (x + std² s)/m at the same noise levels (m, std of the process at σ).
  Array denoise(const Array& x, const std::vector<double>& sigma) const;
  // log p(x) in nats by the probability-flow ODE, one value per row of x (model units, as
  // `scorediff likelihood --data` reads them).
  std::vector<double> log_likelihood(const Array& x, const LikelihoodRequest& request = {}) const;
  // The network's parameters and buffers by their checkpoint names (the loaded EMA or raw weights).
  std::map<std::string, Array> weights() const;

  std::vector<int64_t> sample_shape() const;  // [D] for points, [C, H, W] for images
  int64_t step() const;                       // the training step the checkpoint was written at
  std::string config_toml() const;            // the run's configuration

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

struct TrainProgress {
  int64_t step = 0;     // optimisation steps done
  int64_t steps = 0;    // the run's last step
  double loss = 0;      // this step's mean loss
  double seconds = 0;   // training time so far
};

struct TrainRequest {
  std::vector<std::string> sets;  // config overrides, "section.key=value"
  std::string out;                // run directory; "": runs/<run.name>
  bool resume = false;            // continue from <out>/last.safetensors, bit for bit
  bool quiet = true;              // no progress line on stderr
  // Called after every step; returning false stops the run after that step with its checkpoint written
  // (resume continues it), and train() returns with cancelled = true (on the last step the run has finished:
  // cancelled stays false). An exception it throws stops the run the same way, then leaves train() unchanged.
  std::function<bool(const TrainProgress&)> progress;
};

struct TrainResult {
  std::string run_dir;
  std::string checkpoint;  // <run_dir>/last.safetensors
  int64_t steps = 0;
  double final_loss = 0;   // mean loss of the last logged window; a cancelled run: its last step's loss
  double seconds = 0;
  bool cancelled = false;
};

// Trains a model from a preset name (`scorediff presets`) or a TOML file, as `scorediff train --no-sample`.
TrainResult train(const std::string& config, const TrainRequest& request = {});

// Sample quality against a dataset (`scorediff datasets`), as `scorediff eval --samples --data` measures it:
// for points the sliced Wasserstein distance to fresh data and its data-vs-data floor, NaN count and the rest
// (each numeric entry of eval's JSON); for images FD-cls, KID-cls and the confident fraction with the classifier
// of `scorediff train-classifier` (runs/classifier-<data>.safetensors). samples in data units.
std::map<std::string, double> evaluate(const Array& samples, const std::string& data, int64_t seed = 0);

}  // namespace scorediff
