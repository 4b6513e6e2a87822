// MLP score network on flat inputs, conditioned on log σ (seed 001 §8.4, with Fourier features of seed 003).
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include "scorediff/models/score_model.hpp"

namespace scorediff {

enum class Activation { SiLU, ReLU, GELU, Tanh, Softplus };
Activation parse_activation(const std::string& name);
torch::Tensor activate(const torch::Tensor& x, Activation a);
void activate_out(torch::Tensor& out, const torch::Tensor& x, Activation a);

// Gaussian Fourier features of a scalar c: [sin 2πWc, cos 2πWc], W ~ N(0, scale²) fixed (a buffer).
class FourierFeaturesImpl : public torch::nn::Module {
 public:
  FourierFeaturesImpl(int64_t features, double scale, at::Generator& gen);
  torch::Tensor forward(const torch::Tensor& c);  // [B] -> [B, 2F]
  int64_t out_features() const { return 2 * W_.size(0); }

 private:
  torch::Tensor W_;
};
TORCH_MODULE(FourierFeatures);

// How forward() runs (path_for): Graph, the differentiable ATen composition; Fused, one autograd node
// with scorediff's kernels (training, SiLU, inputs without grad); Inference, no graph at all (eval mode,
// inputs without grad, and no graph asked for the parameters: sampling and evaluation).
enum class MlpPath { Graph, Fused, Inference };

class MlpNetworkImpl : public ScoreNetworkImpl {
 public:
  // out_dim: outputs per sample (default: dim, a score; 1 for an energy).
  MlpNetworkImpl(const ModelOptions& options, int64_t dim, at::Generator& gen, int64_t out_dim = -1);
  // The path path_for chooses; every path gives the same numbers to float rounding.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels = {}) override;
  // Chosen from the module's mode (train/eval), whether the inputs require grad, their device and dtype,
  // and this network's fused-training switch: no global state.
  MlpPath path_for(const torch::Tensor& x, const torch::Tensor& log_sigma) const;
  // Whether training uses the fused node where it applies (default on; off for before/after measurements and
  // the tests that compare both paths), and whether it can here (fused_mlp_available).
  void set_fused_training(bool on) { fused_training_ = on; }
  bool fused_training() const;
  torch::Tensor forward_autograd(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels = {});
  // Rows in cache-sized chunks through preallocated buffers; the first layer is split into its x and
  // embedding parts, and when every row has the same σ (every sampler step) the embedding's
  // contribution is folded into that layer's bias once instead of being concatenated to each row.
  torch::Tensor forward_inference(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels = {});
  // SiLU MLPs in training, inputs without grad: the fused forward/backward node (models/fused_mlp.hpp).
  torch::Tensor forward_fused(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels = {});
  // The first layer's input [x, embedding of log σ, one-hot label] [B, D + E (+ K + 1)] (log σ/4 written in one loop, Fourier features
  // through ATen), for the fused paths.
  torch::Tensor fused_input(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels = {});
  std::vector<torch::Tensor> weights() const;
  std::vector<torch::Tensor> biases() const;
  const std::vector<torch::nn::Linear>& layers() const { return layers_; }
  Activation activation() const { return activation_; }

 private:
  // [B, E] the noise embedding, followed by the one-hot label [B, K + 1] in class-conditional networks: the
  // first layer's weights on it are the learned class embedding, added to that layer's pre-activation.
  torch::Tensor embed(const torch::Tensor& log_sigma, const torch::Tensor& labels);
  Activation activation_;
  int64_t classes_;
  bool fourier_;
  FourierFeatures features_{nullptr};
  std::vector<torch::nn::Linear> layers_;
  bool fused_training_ = true;
};

}  // namespace scorediff
