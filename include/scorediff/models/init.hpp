// PyTorch's default initialisation of Linear and Conv2d layers, U(±1/√fan_in) for the weight (kaiming_uniform
// with a = √5) and the bias, drawn from our generator so that --seed fixes every parameter.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

namespace scorediff {

// One layer: weight [out, in, ...] and bias [out] (bias may be undefined).
void init_default(torch::Tensor& weight, torch::Tensor& bias, at::Generator& gen);
// Every Conv2d and Linear inside `module`, in registration order; other modules keep their own defaults.
void init_default(torch::nn::Module& module, at::Generator& gen);

}  // namespace scorediff
