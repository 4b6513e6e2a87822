// U-Net score network for images (Ho et al. 2020, Song et al. 2021 "NCSN++/DDPM++" family, simplified):
// residual blocks with GroupNorm and SiLU, a Gaussian-Fourier embedding of the noise level added in
// every block, single-head self-attention at chosen resolutions, dropout, and channel multipliers per
// resolution. Inputs are the flat points every sampler works with, [B, C·H·W], reshaped inside.
#pragma once
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "scorediff/kernels/group_norm.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/models/score_model.hpp"

namespace scorediff {

// Dropout whose masks are a hash of (seed, call k, element index) (DropoutSpec, kernels/group_norm.hpp), and k
// is a buffer, so a checkpoint carries the stream and --resume stays bit-exact. Under data parallelism the
// index is the element's in the global batch, so every shard draws its slice of the same mask.
class SeededDropoutImpl : public torch::nn::Module {
 public:
  SeededDropoutImpl(double p, uint64_t seed);
  // The next call's mask for an input shaped like x (p = 0 in eval mode or when p is 0), for group_norm_act.
  DropoutSpec next(const torch::Tensor& x);

 private:
  double p_;
  uint64_t seed_;
  torch::Tensor calls_;  // [1] int64 buffer
};
TORCH_MODULE(SeededDropout);

// A 2-D convolution ("same" padding) that may compute in a narrower type than its float32 parameters:
// input (unless it comes in that type already, from group_norm_act), weight and bias are cast for the
// convolution and the result cast back to the parameters' type, so autograd returns float32 gradients
// (mixed precision). It is a Conv2dImpl: parameter names, initialisation and checkpoints
// are those of torch::nn::Conv2d.
class ConvImpl : public torch::nn::Conv2dImpl {
 public:
  ConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, c10::ScalarType compute);
  torch::Tensor forward(const torch::Tensor& x);
  // The output in the convolution's compute type (bfloat16 under conv_precision = "bfloat16"), for a consumer
  // that computes in that type too.
  torch::Tensor forward_compute(const torch::Tensor& x);

 private:
  int64_t stride_, padding_;
  c10::ScalarType compute_;
};
TORCH_MODULE(Conv);

class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t in, int64_t out, int64_t embedding, double dropout, uint64_t dropout_seed,
               c10::ScalarType compute);
  // x [B, in, H, W], emb [B, E] -> [B, out, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  void zero_output();  // the residual branch's last conv starts at zero: the block starts as its skip
  void set_fused_norm(bool fused) { fused_ = fused; }

 private:
  bool to_bfloat16_, fused_ = true;  // the GroupNorm + SiLU's output type and path (group_norm_act.hpp)
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
  Conv conv1_{nullptr}, conv2_{nullptr}, skip_{nullptr};
  torch::nn::Linear emb_{nullptr};
  SeededDropout dropout_{nullptr};
};
TORCH_MODULE(ResBlock);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t channels, c10::ScalarType compute);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> same
  void zero_output();
  void set_fused_norm(bool fused) { fused_ = fused; }

 private:
  bool to_bfloat16_, fused_ = true;
  torch::nn::GroupNorm norm_{nullptr};
  Conv qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(Attention);

class UnetImpl : public ScoreNetworkImpl {
 public:
  // options.image_shape is [C, H, W]; H and W must be divisible by 2^(levels − 1).
  UnetImpl(const ModelOptions& options, int64_t dim, at::Generator& gen);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels = {}) override;
  // GroupNorm + SiLU through the fused CPU kernels (the default) or ATen's composition (bench, before/after).
  void set_fused_norm(bool fused);

 private:
  struct Stage {
    std::vector<ResBlock> blocks;
    std::vector<Attention> attention;  // one per block; empty holders where the resolution has none
    Conv resample{nullptr};  // down: stride-2 conv; up: conv after nearest upsampling
  };
  std::vector<int64_t> shape_;
  FourierFeatures features_{nullptr};
  torch::nn::Linear emb1_{nullptr}, emb2_{nullptr};
  // model.classes = K > 0: K + 1 learned vectors (the null class last) added to the noise embedding, so that
  // every residual block sees the label.
  torch::nn::Embedding class_emb_{nullptr};
  int64_t classes_ = 0;
  Conv conv_in_{nullptr}, conv_out_{nullptr};
  bool channels_last_;  // model.channels_last
  bool to_bfloat16_, fused_ = true;
  torch::nn::GroupNorm norm_out_{nullptr};
  std::vector<Stage> down_, up_;
  ResBlock mid1_{nullptr}, mid2_{nullptr};
  Attention mid_attention_{nullptr};
};

// GroupNorm groups for a channel count: the largest of 32, 16, 8, 4, 2, 1 that divides it and leaves
// at least 4 channels per group.
int64_t norm_groups(int64_t channels);

// The multipliers and attention resolutions of ModelOptions as integers, checked.
std::vector<int64_t> channel_multipliers(const ModelOptions& options);

}  // namespace scorediff
