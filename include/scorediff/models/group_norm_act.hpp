// GroupNorm followed by SiLU (or nothing), returned in the type the next convolution computes in: one fused
// pass on the CPU (kernels/group_norm.hpp), ATen's composition elsewhere.
#pragma once
#include <torch/nn/modules/normalization.h>

#include "scorediff/kernels/group_norm.hpp"

namespace scorediff {

// act(norm(x)) with act = SiLU when silu, else the identity, returned as bfloat16 when to_bfloat16 (the
// input of a bfloat16 convolution), else in x's type. fused = false, or x that is not a float32 CPU tensor with
// float32 parameters, takes ATen's GroupNorm, SiLU and cast. The fused node's gradients are the kernels';
// differentiating them again (create_graph) differentiates ATen's composition, recomputed in the backward pass.
// dropout (p > 0) multiplies the activation by its hashed mask (kernels/group_norm.hpp) before the cast, on
// either path, so both give the same masks.
torch::Tensor group_norm_act(const torch::Tensor& x, const torch::nn::GroupNorm& norm, bool silu, bool to_bfloat16,
                             bool fused = true, const DropoutSpec& dropout = {});

// x times the mask of dropout, computed in float32 and returned in x's type (x unchanged when p = 0).
torch::Tensor apply_dropout(const torch::Tensor& x, const DropoutSpec& dropout);

// Whether x is a 4-D tensor laid out channels-last (NHWC): the layout the fused kernels and attention follow.
bool is_channels_last(const torch::Tensor& x);

}  // namespace scorediff
