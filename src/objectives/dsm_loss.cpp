// The σ²-weighted DSM loss as one autograd node on the CPU.
#include "scorediff/objectives/dsm_loss.hpp"

#include <torch/autograd.h>
#include <torch/torch.h>

#include "scorediff/process/noise_process.hpp"

namespace scorediff {
namespace {

// ½‖s·p + ε‖² per row, for DSM with σ² weighting: one pass forward, one backward (dL/dp = g·s·(s·p + ε)),
// instead of five ATen operations and five autograd nodes.
class DsmSigma2Loss : public torch::autograd::Function<DsmSigma2Loss> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& predicted,
                                                const torch::Tensor& std, const torch::Tensor& eps) {
    const int64_t rows = predicted.size(0), cols = predicted.numel() / std::max<int64_t>(rows, 1);
    const torch::Tensor p = predicted.contiguous(), e = eps.contiguous(), s = std.contiguous();
    torch::Tensor residual = torch::empty({rows, cols}, p.options()), loss = torch::empty({rows}, p.options());
    const float *pp = p.data_ptr<float>(), *ep = e.data_ptr<float>(), *sp = s.data_ptr<float>();
    float* rp = residual.data_ptr<float>();
    float* lp = loss.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i) {
      double sum = 0.0;  // rows of images are thousands of entries long
      for (int64_t j = 0; j < cols; ++j) {
        const float r = sp[i] * pp[i * cols + j] + ep[i * cols + j];
        rp[i * cols + j] = r;
        sum += static_cast<double>(r) * r;
      }
      lp[i] = static_cast<float>(0.5 * sum);
    }
    ctx->save_for_backward({residual, s});
    ctx->saved_data["shape"] = predicted.sizes().vec();
    return {loss};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& residual = saved[0];
    const torch::Tensor& s = saved[1];
    const torch::Tensor g = grad_output[0].contiguous();
    const int64_t rows = residual.size(0), cols = residual.size(1);
    torch::Tensor grad = torch::empty({rows, cols}, residual.options());
    const float *rp = residual.data_ptr<float>(), *sp = s.data_ptr<float>(), *gp = g.data_ptr<float>();
    float* out = grad.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i) {
      const float f = gp[i] * sp[i];
      for (int64_t j = 0; j < cols; ++j) out[i * cols + j] = f * rp[i * cols + j];
    }
    return {grad.view(ctx->saved_data["shape"].toIntVector()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dsm_sigma2_loss(const torch::Tensor& predicted, const torch::Tensor& std, const torch::Tensor& eps) {
  require(predicted.dim() >= 1 && eps.sizes() == predicted.sizes() && std.numel() == predicted.size(0),
          "dsm_sigma2_loss: expects predicted and eps of one shape [B, ...] and one std per row");
  const bool fused = predicted.device().is_cpu() && predicted.scalar_type() == torch::kFloat32 &&
                     eps.scalar_type() == torch::kFloat32 && std.scalar_type() == torch::kFloat32 && eps.device().is_cpu() &&
                     std.device().is_cpu() && !eps.requires_grad() && !std.requires_grad();
  if (!fused) return 0.5 * (per_sample(std, predicted) * predicted + eps).pow(2).flatten(1).sum(1);
  return DsmSigma2Loss::apply(predicted, std.reshape({-1}), eps)[0];
}

}  // namespace scorediff
