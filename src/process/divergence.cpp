#include "scorediff/process/divergence.hpp"

#include <torch/torch.h>

#include "scorediff/core/error.hpp"

namespace scorediff {

torch::Tensor jacobian_trace(const torch::Tensor& s, const torch::Tensor& x, bool create_graph) {
  require(s.dim() == 2 && s.sizes() == x.sizes(), "jacobian_trace: s and x must both be [B, D]");
  torch::Tensor trace = torch::zeros({x.size(0)}, x.options());
  for (int64_t d = 0; d < x.size(1); ++d) {
    torch::Tensor g = torch::autograd::grad({s.select(1, d).sum()}, {x}, {}, /*retain_graph=*/true, create_graph)[0];
    trace = trace + g.select(1, d);
  }
  return trace;
}

torch::Tensor projected_jacobian(const torch::Tensor& s, const torch::Tensor& x, const torch::Tensor& v,
                                 bool create_graph) {
  // ∇ₓ(vᵀs) = (∇ₓs)ᵀv, then vᵀ(∇ₓs)ᵀv = vᵀ(∇ₓs)v.
  torch::Tensor g = torch::autograd::grad({(s * v).sum()}, {x}, {}, /*retain_graph=*/true, create_graph)[0];
  return (g * v).flatten(1).sum(1);
}

torch::Tensor jacobian(const torch::Tensor& s, const torch::Tensor& x, bool create_graph) {
  require(s.dim() == 2 && s.sizes() == x.sizes(), "jacobian: s and x must both be [B, D]");
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < x.size(1); ++i)
    rows.push_back(torch::autograd::grad({s.select(1, i).sum()}, {x}, {}, /*retain_graph=*/true, create_graph)[0]);
  return torch::stack(rows, 1);
}

torch::Tensor projection_vectors(const std::string& kind, at::IntArrayRef shape, at::Generator& gen,
                                 const torch::TensorOptions& options) {
  if (kind == "gaussian") return torch::randn(shape, gen, options);
  if (kind == "rademacher") return 2 * torch::randint(0, 2, shape, gen, options) - 1;
  fail("unknown projection '{}'; valid: gaussian, rademacher", kind);
}

}  // namespace scorediff
