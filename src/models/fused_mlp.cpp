#include "scorediff/models/fused_mlp.hpp"

#include <torch/autograd.h>
#include <torch/torch.h>

#include "scorediff/core/error.hpp"
#include "scorediff/kernels/gemm.hpp"
#include "scorediff/kernels/mlp.hpp"

namespace scorediff {
namespace {

class FusedMlp : public torch::autograd::Function<FusedMlp> {
 public:
  // params: W_0, b_0, W_1, b_1, ... Saved for backward: mlp_forward's activations, then the weights.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                                                at::TensorList params) {
    const int64_t layers = static_cast<int64_t>(params.size()) / 2;
    std::vector<torch::Tensor> saved;
    torch::Tensor out;
    mlp_forward(input.contiguous(), params, saved, out);
    for (int64_t l = 0; l < layers; ++l) saved.push_back(params[2 * l]);
    ctx->save_for_backward(saved);
    ctx->saved_data["layers"] = layers;
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const int64_t layers = ctx->saved_data["layers"].toInt();
    auto saved = ctx->get_saved_variables();
    const std::vector<torch::Tensor> acts(saved.begin(), saved.end() - layers);
    const std::vector<torch::Tensor> weights(saved.end() - layers, saved.end());
    std::vector<torch::Tensor> grads, scratch;
    const torch::Tensor g = grad_output[0].contiguous();
    mlp_backward(g.data_ptr<float>(), g.size(0), acts, weights, grads, scratch, false);
    grads.insert(grads.begin(), torch::Tensor());  // the input's (not computed)
    return grads;
  }
};

}  // namespace

namespace {
thread_local bool bfloat16_inference = false;
}  // namespace

BFloat16Inference::BFloat16Inference(bool on) : previous_(bfloat16_inference) { bfloat16_inference = on; }
BFloat16Inference::~BFloat16Inference() { bfloat16_inference = previous_; }
bool BFloat16Inference::active() { return bfloat16_inference; }

bool fused_mlp_available() { return fast_gemm_available(); }

torch::Tensor mlp_silu_fused(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                             const std::vector<torch::Tensor>& biases) {
  require(input.scalar_type() == torch::kFloat32 && input.device().is_cpu() && input.dim() == 2 && !input.requires_grad() &&
              !weights.empty() && weights.size() == biases.size(),
          "mlp_silu_fused: expects a float32 CPU [B, n] input without grad and one bias per weight");
  if (!fused_mlp_available()) return {};
  return FusedMlp::apply(input, at::TensorList(mlp_params(weights, biases, input.size(1), "mlp_silu_fused")))[0];
}

}  // namespace scorediff
