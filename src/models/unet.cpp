#include "scorediff/models/unet.hpp"

#include <torch/torch.h>

#include "scorediff/models/batch_shard.hpp"
#include "scorediff/models/group_norm_act.hpp"
#include "scorediff/models/init.hpp"

namespace scorediff {
namespace {

uint64_t draw_seed(at::Generator& gen) {
  return static_cast<uint64_t>(torch::randint(int64_t{1} << 62, {1}, gen, torch::kInt64).item<int64_t>());
}

c10::ScalarType parse_precision(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  fail("model.conv_precision must be float32 or bfloat16, got '{}'", name);
}

torch::nn::GroupNorm group_norm(int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(norm_groups(channels), channels).eps(1e-6));
}

// Output layers of residual branches start at zero, so every block starts as the identity
// (Ho et al. 2020 initialise them with scale 1e-10; zero is the same in practice).
void zero_init(const Conv& c) {
  torch::NoGradGuard no_grad;
  c->weight.zero_();
  c->bias.zero_();
}

}  // namespace

ConvImpl::ConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, c10::ScalarType compute)
    : Conv2dImpl(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2)),
      stride_(stride),
      padding_(kernel / 2),
      compute_(compute) {}

torch::Tensor ConvImpl::forward(const torch::Tensor& x) { return forward_compute(x).to(weight.scalar_type()); }

torch::Tensor ConvImpl::forward_compute(const torch::Tensor& x) {
  // float32 means "the parameters' own type": a model moved to float64 (gradient checks) stays there.
  if (compute_ == torch::kFloat32 || compute_ == weight.scalar_type()) return Conv2dImpl::forward(x);
  return torch::conv2d(x.to(compute_), weight.to(compute_), bias.to(compute_), stride_, padding_);
}

int64_t norm_groups(int64_t channels) {
  for (int64_t g : {32, 16, 8, 4, 2})
    if (channels % g == 0 && channels / g >= 4) return g;
  return 1;
}

std::vector<int64_t> channel_multipliers(const ModelOptions& o) {
  require(!o.channel_mult.empty(), "model.channel_mult must have at least one entry");
  std::vector<int64_t> out;
  for (double m : o.channel_mult) {
    require(m >= 1 && m == std::floor(m), "model.channel_mult entries must be whole numbers >= 1, got {}", m);
    out.push_back(static_cast<int64_t>(m));
  }
  return out;
}

SeededDropoutImpl::SeededDropoutImpl(double p, uint64_t seed) : p_(p), seed_(seed) {
  calls_ = register_buffer("calls", torch::zeros({1}, torch::kInt64));
}

DropoutSpec SeededDropoutImpl::next(const torch::Tensor& x) {
  if (!is_training() || p_ <= 0 || x.numel() == 0) return {};
  const int64_t k = calls_.item<int64_t>();
  calls_.add_(1);
  DropoutSpec d{p_, seed_ + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(k + 1), 0};
  const BatchShard* shard = current_batch_shard();
  if (shard != nullptr && x.size(0) == shard->end - shard->begin)  // data parallel: this shard's slice
    d.offset = shard->begin * (x.numel() / x.size(0));
  return d;
}

ResBlockImpl::ResBlockImpl(int64_t in, int64_t out, int64_t embedding, double dropout, uint64_t dropout_seed,
                           c10::ScalarType compute)
    : to_bfloat16_(compute == torch::kBFloat16) {
  norm1_ = register_module("norm1", group_norm(in));
  conv1_ = register_module("conv1", Conv(in, out, 3, 1, compute));
  emb_ = register_module("emb", torch::nn::Linear(embedding, out));
  norm2_ = register_module("norm2", group_norm(out));
  dropout_ = register_module("dropout", SeededDropout(dropout, dropout_seed));
  conv2_ = register_module("conv2", Conv(out, out, 3, 1, compute));
  if (in != out) skip_ = register_module("skip", Conv(in, out, 1, 1, compute));
}

void ResBlockImpl::zero_output() { zero_init(conv2_); }

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  torch::Tensor h = conv1_->forward(group_norm_act(x, norm1_, true, to_bfloat16_, fused_));
  h = h + emb_->forward(torch::silu(emb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2_->forward(group_norm_act(h, norm2_, true, to_bfloat16_, fused_, dropout_->next(h)));
  return (skip_ ? skip_->forward(x) : x) + h;
}

AttentionImpl::AttentionImpl(int64_t channels, c10::ScalarType compute) : to_bfloat16_(compute == torch::kBFloat16) {
  norm_ = register_module("norm", group_norm(channels));
  qkv_ = register_module("qkv", Conv(channels, 3 * channels, 1, 1, compute));
  proj_ = register_module("proj", Conv(channels, channels, 1, 1, compute));
}

void AttentionImpl::zero_output() { zero_init(proj_); }

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  torch::Tensor normed = group_norm_act(x, norm_, false, to_bfloat16_, fused_);
  // In the convolutions' type: with bfloat16, LibTorch hands a batched product to oneDNN in one call, where in
  // float32 it loops over the batch (one select and one matrix product per image). The softmax is in float32.
  torch::Tensor qkv = qkv_->forward_compute(normed);  // [B, 3C, H, W]
  // Single-head scaled dot-product attention over the H·W positions (Vaswani et al. 2017). In channels-last
  // layout the positions' rows [B, HW, C] are views of the convolution's output, and so is h of the result.
  const bool channels_last = is_channels_last(x);
  // The attention weights [B, HW, HW] from the queries' rows [B, HW, C] and the keys' columns [B, C, HW].
  auto attention_weights = [&](const torch::Tensor& q, const torch::Tensor& k) {
    torch::Tensor logits = torch::bmm(q, k).to(x.scalar_type());
    return torch::softmax(logits / std::sqrt(double(C)), -1).to(qkv.scalar_type());
  };
  torch::Tensor h;
  if (channels_last) {
    auto rows = qkv.permute({0, 2, 3, 1}).reshape({B, H * W, 3 * C}).split(C, 2);  // 3 × [B, HW, C]
    h = torch::bmm(attention_weights(rows[0], rows[1].transpose(1, 2)), rows[2]);
    h = h.reshape({B, H, W, C}).permute({0, 3, 1, 2});
  } else {
    auto columns = qkv.reshape({B, 3, C, H * W}).unbind(1);  // 3 × [B, C, HW]
    h = torch::bmm(columns[2], attention_weights(columns[0].transpose(1, 2), columns[1]).transpose(1, 2));
    h = h.reshape({B, C, H, W});
  }
  return x + proj_->forward(h);
}

UnetImpl::UnetImpl(const ModelOptions& o, int64_t dim, at::Generator& gen)
    : shape_(o.image_shape),
      channels_last_(o.channels_last),
      to_bfloat16_(parse_precision(o.conv_precision) == torch::kBFloat16) {
  require(shape_.size() == 3, "model 'unet' needs an image dataset (fashion-mnist, mnist, png-folder), got points of dimension {}",
          dim);
  require(shape_[0] * shape_[1] * shape_[2] == dim, "model 'unet': image shape does not match the data dimension {}", dim);
  const std::vector<int64_t> mult = channel_multipliers(o);
  const int64_t levels = static_cast<int64_t>(mult.size()), factor = int64_t{1} << (levels - 1);
  require(shape_[1] % factor == 0 && shape_[2] % factor == 0,
          "image size {}x{} is not divisible by {}, which the U-Net's {} resolution levels need (model.channel_mult has {} "
          "entries); change data.image_size or model.channel_mult",
          shape_[1], shape_[2], factor, levels, levels);
  require(o.channels >= 1 && o.res_blocks >= 1, "model.channels and model.res_blocks must be >= 1");
  require(o.dropout >= 0 && o.dropout < 1, "model.dropout must be in [0, 1), got {}", o.dropout);
  auto attends = [&](int64_t resolution) {
    return std::find(o.attention.begin(), o.attention.end(), double(resolution)) != o.attention.end();
  };
  for (double r : o.attention) {
    bool found = false;
    for (int64_t l = 0; l < levels; ++l) found |= double(shape_[1] >> l) == r;
    require(found, "model.attention: no U-Net level has resolution {} (levels: {}..{})", r, shape_[1], shape_[1] >> (levels - 1));
  }

  const int64_t ch = o.channels, emb = 4 * ch;
  const c10::ScalarType compute = parse_precision(o.conv_precision);
  features_ = register_module("features", FourierFeatures(o.fourier_features, o.fourier_scale, gen));
  emb1_ = register_module("emb1", torch::nn::Linear(features_->out_features(), emb));
  emb2_ = register_module("emb2", torch::nn::Linear(emb, emb));
  conv_in_ = register_module("conv_in", Conv(shape_[0], ch, 3, 1, compute));

  // Down path: the channel count of every feature map kept for a skip connection.
  std::vector<int64_t> skips{ch};
  int64_t c = ch, resolution = shape_[1];
  for (int64_t l = 0; l < levels; ++l) {
    Stage stage;
    for (int64_t b = 0; b < o.res_blocks; ++b) {
      std::string name = fmt::format("down{}_block{}", l, b);
      stage.blocks.push_back(register_module(name, ResBlock(c, ch * mult[l], emb, o.dropout, draw_seed(gen), compute)));
      c = ch * mult[l];
      stage.attention.push_back(attends(resolution) ? register_module(name + "_attn", Attention(c, compute)) : Attention(nullptr));
      skips.push_back(c);
    }
    if (l + 1 < levels) {
      stage.resample = register_module(fmt::format("down{}_resample", l), Conv(c, c, 3, 2, compute));
      skips.push_back(c);
      resolution /= 2;
    }
    down_.push_back(std::move(stage));
  }
  mid1_ = register_module("mid_block1", ResBlock(c, c, emb, o.dropout, draw_seed(gen), compute));
  mid_attention_ = register_module("mid_attn", Attention(c, compute));
  mid2_ = register_module("mid_block2", ResBlock(c, c, emb, o.dropout, draw_seed(gen), compute));

  // Up path: res_blocks + 1 blocks per level, each consuming one skip, coarsest level first.
  for (int64_t l = levels - 1; l >= 0; --l) {
    Stage stage;
    for (int64_t b = 0; b <= o.res_blocks; ++b) {
      std::string name = fmt::format("up{}_block{}", l, b);
      int64_t skip = skips.back();
      skips.pop_back();
      stage.blocks.push_back(register_module(name, ResBlock(c + skip, ch * mult[l], emb, o.dropout, draw_seed(gen), compute)));
      c = ch * mult[l];
      stage.attention.push_back(attends(resolution) ? register_module(name + "_attn", Attention(c, compute)) : Attention(nullptr));
    }
    if (l > 0) {
      stage.resample = register_module(fmt::format("up{}_resample", l), Conv(c, c, 3, 1, compute));
      resolution *= 2;
    }
    up_.push_back(std::move(stage));
  }
  norm_out_ = register_module("norm_out", group_norm(c));
  conv_out_ = register_module("conv_out", Conv(c, shape_[0], 3, 1, compute));

  init_default(*this, gen);
  for (auto& m : modules(false)) {
    if (auto* block = m->as<ResBlockImpl>()) block->zero_output();
    if (auto* attention = m->as<AttentionImpl>()) attention->zero_output();
  }
  zero_init(conv_out_);
  classes_ = o.classes;
  require(classes_ >= 0, "model.classes must be >= 0, got {}", classes_);
  if (classes_ > 0) {
    // Registered last and drawn after every other parameter: an unconditional U-Net is unchanged.
    class_emb_ = register_module("class_emb", torch::nn::Embedding(classes_ + 1, emb));
    torch::NoGradGuard no_grad;
    class_emb_->weight.normal_(0.0, 1.0, gen);
  }
}

torch::Tensor UnetImpl::forward(const torch::Tensor& x, const torch::Tensor& log_sigma, const torch::Tensor& labels) {
  const int64_t B = x.size(0);
  torch::Tensor emb = emb2_->forward(torch::silu(emb1_->forward(features_->forward(log_sigma.reshape({B})))));
  if (classes_ > 0) {
    torch::Tensor label = labels.defined() ? labels.reshape({-1}).to(emb.device(), torch::kInt64)
                                           : torch::full({B}, classes_, emb.options().dtype(torch::kInt64));
    require(label.size(0) == B || label.size(0) == 1, "{} labels for {} images", label.size(0), B);
    emb = emb + class_emb_->forward(label).to(emb.dtype());
  } else {
    require(!labels.defined(), "labels given to a network without classes (model.classes = 0)");
  }
  torch::Tensor h = conv_in_->forward(x.reshape({B, shape_[0], shape_[1], shape_[2]}));
  // Channels-last from here on: every later operation keeps its input's layout (the attention's too).
  if (channels_last_) h = h.contiguous(torch::MemoryFormat::ChannelsLast);
  std::vector<torch::Tensor> skips{h};
  for (auto& stage : down_) {
    for (size_t b = 0; b < stage.blocks.size(); ++b) {
      h = stage.blocks[b]->forward(h, emb);
      if (stage.attention[b]) h = stage.attention[b]->forward(h);
      skips.push_back(h);
    }
    if (stage.resample) {
      h = stage.resample->forward(h);
      skips.push_back(h);
    }
  }
  h = mid2_->forward(mid_attention_->forward(mid1_->forward(h, emb)), emb);
  for (auto& stage : up_) {
    for (size_t b = 0; b < stage.blocks.size(); ++b) {
      h = stage.blocks[b]->forward(torch::cat({h, skips.back()}, 1), emb);
      skips.pop_back();
      if (stage.attention[b]) h = stage.attention[b]->forward(h);
    }
    if (stage.resample)
      h = stage.resample->forward(torch::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}));
  }
  h = conv_out_->forward(group_norm_act(h, norm_out_, true, to_bfloat16_, fused_));
  return h.contiguous().reshape(x.sizes());
}

void UnetImpl::set_fused_norm(bool fused) {
  fused_ = fused;
  for (auto& m : modules(false)) {
    if (auto* block = m->as<ResBlockImpl>()) block->set_fused_norm(fused);
    if (auto* attention = m->as<AttentionImpl>()) attention->set_fused_norm(fused);
  }
}

}  // namespace scorediff
