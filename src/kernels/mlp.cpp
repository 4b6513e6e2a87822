// The SiLU MLP's forward and backward passes on raw buffers (scorediff's GEMM and activation kernels), and
// the DSM loss's parameter gradients through them with no autograd.
#include "scorediff/kernels/mlp.hpp"

#include <torch/torch.h>

#include <cstring>

#include "scorediff/core/error.hpp"
#include "scorediff/kernels/activations.hpp"
#include "scorediff/kernels/gemm.hpp"

namespace scorediff {
namespace {

// Whether t can take a result of this shape in place: contiguous float32 on the CPU.
bool reusable(const torch::Tensor& t, at::IntArrayRef shape) {
  return t.defined() && t.sizes() == shape && t.is_contiguous() && t.scalar_type() == torch::kFloat32 && t.device().is_cpu();
}

// A float32 CPU buffer for a [rows, cols] result: t itself when it is contiguous with cols columns and at least
// rows rows (only its first rows are used), else a new [rows, cols] tensor in its place.
float* buffer(torch::Tensor& t, int64_t rows, int64_t cols) {
  if (!(t.defined() && t.dim() == 2 && t.size(1) == cols && t.size(0) >= rows && t.is_contiguous() &&
        t.scalar_type() == torch::kFloat32 && t.device().is_cpu()))
    t = torch::empty({rows, cols}, torch::kFloat32);
  return t.data_ptr<float>();
}

}  // namespace

void mlp_forward(const torch::Tensor& input, at::TensorList params, std::vector<torch::Tensor>& acts, torch::Tensor& out,
                 at::TensorList transposed) {
  const int64_t layers = static_cast<int64_t>(params.size()) / 2, rows = input.size(0);
  acts.resize(static_cast<size_t>(1 + 3 * (layers - 1)));
  acts[0] = input;
  for (int64_t l = 0; l < layers; ++l) {
    const float* h = acts[l == 0 ? 0 : 3 * l].data_ptr<float>();
    const torch::Tensor& w = params[2 * l];
    const float* bp = params[2 * l + 1].data_ptr<float>();
    const int64_t n = w.size(0), k = w.size(1);
    const bool has_transposed = static_cast<int64_t>(transposed.size()) > l && transposed[l].defined();
    auto product = [&](float* zp, float beta) {
      if (has_transposed) {
        gemm(false, false, rows, n, k, h, k, transposed[l].data_ptr<float>(), n, beta, zp, n);
      } else {
        gemm(false, true, rows, n, k, h, k, w.data_ptr<float>(), k, beta, zp, n);
      }
    };
    if (l + 1 == layers) {
      float* zp = buffer(out, rows, n);
      for (int64_t i = 0; i < rows; ++i) std::memcpy(zp + i * n, bp, n * sizeof(float));
      product(zp, 1.0f);
      return;
    }
    float* zp = buffer(acts[1 + 3 * l], rows, n);
    product(zp, 0.0f);
    bias_sigmoid_silu(zp, buffer(acts[2 + 3 * l], rows, n), buffer(acts[3 + 3 * l], rows, n), bp, rows, n);
  }
}

// The backward pass from g = dL/d(output) [rows, n_L] (read only): dW_l = g_lᵀ h_l and db_l = Σ_rows g_l into
// grads[2l], grads[2l + 1] (added to them when accumulating); g_{l−1} = (g_l W_l) silu'(z_{l−1}) with
// silu'(z) = s (1 + z (1 − s)), into scratch[l − 1]. Gradients are written in place when they are contiguous
// float32 CPU tensors of the parameter's shape, else allocated (which needs accumulate false); scratch buffers as
// in mlp_forward. acts as mlp_forward leaves them. The input's gradient is not computed.
void mlp_backward(const float* g, int64_t rows, const std::vector<torch::Tensor>& acts, at::TensorList weights,
                  std::vector<torch::Tensor>& grads, std::vector<torch::Tensor>& scratch, bool accumulate) {
  const int64_t layers = static_cast<int64_t>(weights.size());
  grads.resize(static_cast<size_t>(2 * layers));
  scratch.resize(static_cast<size_t>(layers - 1));
  for (int64_t l = layers - 1; l >= 0; --l) {
    const float* h = acts[l == 0 ? 0 : 3 * l].data_ptr<float>();
    const torch::Tensor& w = weights[l];
    const int64_t n = w.size(0), k = w.size(1);
    const bool in_place = reusable(grads[2 * l], w.sizes()) && reusable(grads[2 * l + 1], {n});
    TORCH_INTERNAL_ASSERT(in_place || !accumulate, "mlp_backward: accumulating into gradients it had to allocate");
    if (!in_place) {
      grads[2 * l] = torch::empty({n, k}, torch::kFloat32);
      grads[2 * l + 1] = torch::empty({n}, torch::kFloat32);
    }
    gemm(true, false, n, k, rows, g, n, h, k, accumulate ? 1.0f : 0.0f, grads[2 * l].data_ptr<float>(), k);
    column_sums(grads[2 * l + 1].data_ptr<float>(), g, rows, n, accumulate);
    if (l == 0) break;
    float* dh = buffer(scratch[l - 1], rows, k);
    gemm(false, false, rows, k, n, g, n, w.data_ptr<float>(), k, 0.0f, dh, k);
    silu_backward(dh, acts[1 + 3 * (l - 1)].data_ptr<float>(), acts[2 + 3 * (l - 1)].data_ptr<float>(), rows * k);
    g = dh;
  }
}

namespace {

// W_0, b_0, W_1, b_1, ... after checking that each is contiguous float32 and that the shapes chain from an input
// of n_0 columns: W_l [n_{l+1}, n_l], b_l [n_{l+1}] (the kernels read raw pointers).
std::vector<torch::Tensor> interleaved(const std::vector<torch::Tensor>& weights, const std::vector<torch::Tensor>& biases,
                                       int64_t n0, const char* who) {
  std::vector<torch::Tensor> params;
  int64_t in = n0;
  for (size_t l = 0; l < weights.size(); ++l) {
    require(weights[l].is_contiguous() && biases[l].is_contiguous() && weights[l].scalar_type() == torch::kFloat32 &&
                biases[l].scalar_type() == torch::kFloat32,
            "{}: weights and biases must be contiguous float32", who);
    require(weights[l].dim() == 2 && weights[l].size(1) == in && biases[l].dim() == 1 && biases[l].size(0) == weights[l].size(0),
            "{}: layer {} has weight [{}] and bias [{}] after {} inputs", who, l, fmt::join(weights[l].sizes(), ", "),
            fmt::join(biases[l].sizes(), ", "), in);
    in = weights[l].size(0);
    params.push_back(weights[l]);
    params.push_back(biases[l]);
  }
  return params;
}
}  // namespace

std::vector<torch::Tensor> mlp_params(const std::vector<torch::Tensor>& weights, const std::vector<torch::Tensor>& biases,
                                      int64_t n0, const char* who) {
  return interleaved(weights, biases, n0, who);
}

void mlp_silu_dsm_gradients(const torch::Tensor& input, const std::vector<torch::Tensor>& weights,
                            const std::vector<torch::Tensor>& biases, const torch::Tensor& eps, const DsmRowCoefficients& k,
                            torch::Tensor& loss, std::vector<torch::Tensor>& grads) {
  const int64_t rows = input.size(0);
  require(input.scalar_type() == torch::kFloat32 && input.device().is_cpu() && input.dim() == 2 && rows > 0 &&
              !weights.empty() && weights.size() == biases.size() && fast_gemm_available(),
          "mlp_silu_dsm_gradients: expects a float32 CPU [B, n] input, one bias per weight, and libxsmm or BLAS");
  const int64_t cols = weights.back().size(0);
  auto row_vector = [&](const torch::Tensor& v) {
    return v.scalar_type() == torch::kFloat32 && v.device().is_cpu() && v.is_contiguous() && v.numel() == rows;
  };
  require(eps.scalar_type() == torch::kFloat32 && eps.device().is_cpu() && eps.is_contiguous() && eps.dim() == 2 &&
              eps.size(0) == rows && eps.size(1) == cols && row_vector(k.alpha) && row_vector(k.beta) && row_vector(k.omega),
          "mlp_silu_dsm_gradients: eps must be [B, outputs] and alpha, beta, omega [B], contiguous float32 on the CPU");
  // Rows in chunks whose activations stay in L2 (256 rows of width 128: 128 KB per buffer), the weight and bias
  // gradients summed over the chunks; the buffers are kept per thread between calls, so a step allocates nothing.
  constexpr int64_t kChunk = 256;
  thread_local std::vector<torch::Tensor> acts, scratch;
  thread_local torch::Tensor out;
  const torch::Tensor in = input.contiguous();
  const std::vector<torch::Tensor> params = interleaved(weights, biases, input.size(1), "mlp_silu_dsm_gradients");
  if (!reusable(loss, {rows})) loss = torch::empty({rows}, in.options());
  float* lp = loss.data_ptr<float>();
  const float *ep = eps.data_ptr<float>(), *ap = k.alpha.data_ptr<float>(), *bp = k.beta.data_ptr<float>(),
              *wp = k.omega.data_ptr<float>();
  const float inv_rows = 1.0f / static_cast<float>(rows);
  // Wᵀ once per call rather than once per chunk, which gemm would do (its kernels read B untransposed).
  std::vector<torch::Tensor> transposed;
  if (rows > kChunk)
    for (const auto& w : weights) transposed.push_back(w.t().contiguous());
  for (int64_t start = 0; start < rows; start += kChunk) {
    const int64_t len = std::min(kChunk, rows - start);
    mlp_forward(in.narrow(0, start, len), params, acts, out, transposed);
    // r = αF + βε, L = ½ω‖r‖² per row (summed in double, as dsm_sigma2_loss), then out ← dL̄/dF = ωαr/B in place.
    float* f = out.data_ptr<float>();
    for (int64_t r0 = 0; r0 < len; ++r0) {
      const int64_t i = start + r0;
      double sum = 0.0;
      const float g = wp[i] * ap[i] * inv_rows;
      for (int64_t j = 0; j < cols; ++j) {
        const float r = ap[i] * f[r0 * cols + j] + bp[i] * ep[i * cols + j];
        sum += static_cast<double>(r) * r;
        f[r0 * cols + j] = g * r;
      }
      lp[i] = static_cast<float>(0.5 * wp[i] * sum);
    }
    mlp_backward(f, len, acts, weights, grads, scratch, start > 0);
  }
  acts[0] = torch::Tensor();  // not the caller's input
}

}  // namespace scorediff
