#include "scorediff/models/group_norm_act.hpp"

#include <torch/torch.h>

#include "scorediff/kernels/group_norm.hpp"

namespace scorediff {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor composition(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t groups,
                          double eps, bool silu, const DropoutSpec& dropout) {
  torch::Tensor y = torch::group_norm(x, groups, weight, bias, eps);
  return apply_dropout(silu ? torch::silu(y) : y, dropout);
}

DropoutSpec spec_of(double p, int64_t key, int64_t offset) {
  return {p, static_cast<uint64_t>(key), offset};
}

// Calls f with t's data as float* or c10::BFloat16*, the two types the kernels take.
template <class F>
void with_data(const torch::Tensor& t, F&& f) {
  if (t.scalar_type() == torch::kBFloat16)
    f(t.data_ptr<c10::BFloat16>());
  else
    f(t.data_ptr<float>());
}

torch::MemoryFormat format_of(const torch::Tensor& x) {
  return is_channels_last(x) ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
}

GroupNormShape shape_of(const torch::Tensor& x, int64_t groups) {
  return {x.size(0), x.size(1), x.numel() / (x.size(0) * x.size(1)), groups, is_channels_last(x)};
}

class FusedGroupNormAct : public torch::autograd::Function<FusedGroupNormAct> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, int64_t groups, double eps, bool silu, bool to_bfloat16,
                               double p, int64_t key, int64_t offset) {
    const GroupNormShape s = shape_of(x, groups);
    const DropoutSpec dropout = spec_of(p, key, offset);
    torch::Tensor mean = torch::empty({s.n, groups}, x.options()), rstd = torch::empty_like(mean);
    torch::Tensor w = weight.contiguous(), b = bias.contiguous();
    torch::Tensor y = torch::empty(x.sizes(), x.options().dtype(to_bfloat16 ? torch::kBFloat16 : torch::kFloat32),
                                   format_of(x));
    with_data(y, [&](auto* out) {
      group_norm_act_forward(x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), out, mean.data_ptr<float>(),
                             rstd.data_ptr<float>(), s, static_cast<float>(eps), silu, dropout);
    });
    ctx->save_for_backward({x, weight, bias});
    ctx->saved_data["mean"] = mean;
    ctx->saved_data["rstd"] = rstd;
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["silu"] = silu;
    ctx->saved_data["p"] = p;
    ctx->saved_data["key"] = key;
    ctx->saved_data["offset"] = offset;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &bias = saved[2];
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const double eps = ctx->saved_data["eps"].toDouble();
    const bool silu = ctx->saved_data["silu"].toBool();
    const DropoutSpec dropout = spec_of(ctx->saved_data["p"].toDouble(), ctx->saved_data["key"].toInt(),
                                        ctx->saved_data["offset"].toInt());
    torch::Tensor dy = grads[0];
    if (torch::GradMode::is_enabled()) {
      // create_graph: the gradients must be differentiable themselves, so take them from ATen's composition.
      std::vector<torch::Tensor> inputs;
      for (const torch::Tensor& t : saved)
        if (t.requires_grad()) inputs.push_back(t);
      variable_list out(10);
      if (inputs.empty()) return out;
      torch::Tensor y = composition(x, weight, bias, groups, eps, silu, dropout);
      variable_list g = torch::autograd::grad({y}, inputs, {dy.to(y.scalar_type())}, /*retain_graph=*/true,
                                              /*create_graph=*/true);
      for (size_t i = 0, k = 0; i < saved.size(); ++i)
        if (saved[i].requires_grad()) out[i] = g[k++];
      return out;
    }
    const GroupNormShape s = shape_of(x, groups);
    if (dy.scalar_type() != torch::kBFloat16) dy = dy.to(torch::kFloat32);
    dy = dy.contiguous(format_of(x));
    torch::Tensor w = weight.contiguous(), b = bias.contiguous();
    torch::Tensor dx = torch::empty(x.sizes(), x.options(), format_of(x));
    torch::Tensor dgamma = torch::empty({s.n, s.channels}, x.options()), dbeta = torch::empty_like(dgamma);
    const torch::Tensor mean = ctx->saved_data["mean"].toTensor(), rstd = ctx->saved_data["rstd"].toTensor();
    with_data(dy, [&](const auto* grad) {
      group_norm_act_backward(grad, x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), mean.data_ptr<float>(),
                              rstd.data_ptr<float>(), dx.data_ptr<float>(), dgamma.data_ptr<float>(),
                              dbeta.data_ptr<float>(), s, silu, dropout);
    });
    return {dx, dgamma.sum(0), dbeta.sum(0), {}, {}, {}, {}, {}, {}, {}};
  }
};

}  // namespace

bool is_channels_last(const torch::Tensor& x) {
  return x.dim() == 4 && x.suggest_memory_format() == torch::MemoryFormat::ChannelsLast;
}

torch::Tensor apply_dropout(const torch::Tensor& x, const DropoutSpec& dropout) {
  if (!(dropout.p > 0)) return x;
  torch::Tensor scale = torch::empty(x.sizes(), torch::kFloat32);
  dropout_scale_fill(dropout, 0, scale.numel(), scale.data_ptr<float>());
  // The product in float32 (or x's wider type), rounded once to x's type: 1/(1 − p) in bfloat16 would bias
  // every kept value (1/0.9 → 1.109375, 0.16 % low).
  return (x * scale.to(x.device())).to(x.scalar_type());
}

torch::Tensor group_norm_act(const torch::Tensor& x, const torch::nn::GroupNorm& norm, bool silu, bool to_bfloat16,
                             bool fused, const DropoutSpec& dropout) {
  const auto& o = norm->options;
  const torch::Tensor &weight = norm->weight, &bias = norm->bias;
  fused = fused && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() >= 3 && weight.defined() &&
          bias.defined() && weight.scalar_type() == torch::kFloat32 && bias.scalar_type() == torch::kFloat32 &&
          weight.device().is_cpu() && x.size(0) > 0;
  if (!fused) {
    torch::Tensor y = composition(x, weight, bias, o.num_groups(), o.eps(), silu, dropout);
    return to_bfloat16 ? y.to(torch::kBFloat16) : y;
  }
  return FusedGroupNormAct::apply(x.contiguous(format_of(x)), weight, bias, o.num_groups(), o.eps(), silu, to_bfloat16,
                                  dropout.p, static_cast<int64_t>(dropout.key), dropout.offset);
}

}  // namespace scorediff
