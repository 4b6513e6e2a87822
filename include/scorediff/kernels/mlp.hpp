// The SiLU MLP on raw buffers: forward, backward and the DSM loss gradients, with scorediff's kernels.
#pragma once
#include <torch/types.h>

#include <vector>

namespace scorediff {

// The SiLU MLP's forward pass, params W_0, b_0, W_1, b_1, ...: h_0 = input [rows, n_0] (contiguous); per hidden
// layer z = h Wᵀ + b, s = sigmoid(z), h = z s (one pass after the product); the output layer's bias rows, then
// the product onto them into the first rows of `out`. acts becomes h_0, then z, s, h of each hidden layer (for the
// backward pass). Buffers already in acts and out are written in place when they are large enough (the fused DSM
// step's workspace). transposed (optional): W_lᵀ [n_l, n_{l+1}] contiguous where defined, used instead of W_l so
// that gemm need not transpose W_l at every call (the fused DSM step calls this once per chunk of rows).
void mlp_forward(const torch::Tensor& input, at::TensorList params, std::vector<torch::Tensor>& acts, torch::Tensor& out,
                 at::TensorList transposed = {});

// The backward pass from g = dL/d(output) [rows, n_L] (read only): dW_l = g_lᵀ h_l and db_l = Σ_rows g_l into
// grads[2l], grads[2l + 1] (added to them when accumulating); g_{l−1} = (g_l W_l) silu'(z_{l−1}) with
// silu'(z) = s (1 + z (1 − s)), into scratch[l − 1]. Gradients are written in place when they are contiguous
// float32 CPU tensors of the parameter's shape, else allocated (which needs accumulate false); scratch buffers as
// in mlp_forward. acts as mlp_forward leaves them. The input's gradient is not computed.
void mlp_backward(const float* g, int64_t rows, const std::vector<torch::Tensor>& acts, at::TensorList weights,
                  std::vector<torch::Tensor>& grads, std::vector<torch::Tensor>& scratch, bool accumulate);

// W_0, b_0, W_1, b_1, ... after checking that each is contiguous float32 and that the shapes chain from an input
// of n0 columns: W_l [n_{l+1}, n_l], b_l [n_{l+1}] (the kernels read raw pointers). who names the caller.
std::vector<torch::Tensor> mlp_params(const std::vector<torch::Tensor>& weights, const std::vector<torch::Tensor>& biases,
                                      int64_t n0, const char* who);

// Per-row coefficients of a DSM loss L_i = ½ ω_i ‖α_i F_i + β_i ε_i‖² on the network output F (all [B] float32):
// with score = a_i F_i (a = 1/s, −1/s or 1: score, eps or raw output), σ² weighting is α = s a, β = 1, ω = 1
// (dsm_sigma2_loss), any other weighting λ (and σ² under importance sampling, λ = s² times the importance
// factor) is α = a, β = 1/s, ω = λ.
struct DsmRowCoefficients {
  torch::Tensor alpha, beta, omega;
};
// The DSM loss of the SiLU MLP F = mlp_forward(input, W_0, b_0, ...) and its parameter gradients, with no
// autograd: the same forward and backward kernels, and the loss's gradient dL̄/dF = ω α (αF + βε)/B written
// between them. Writes L_i to loss [B] and the gradients of L̄ = (1/B) Σ_i L_i to grads (dW_0, db_0, dW_1, ...),
// each reused in place when it is a contiguous float32 CPU tensor of its parameter's shape, else allocated.
// input [B, n_0] float32 on the CPU, eps [B, n_L].
void mlp_silu_dsm_gradients(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                            const std::vector<torch::Tensor>& biases, const torch::Tensor& eps, const DsmRowCoefficients& k,
                            torch::Tensor& loss, std::vector<torch::Tensor>& grads);

}  // namespace scorediff
