// Explicit randomness: every draw goes through a torch::Generator derived from the run's --seed.
#pragma once
#include <ATen/core/Generator.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string_view>

namespace scorediff {

// Independent seed for one named stream of a run ("data", "init", "train", "sample", ...), so that
// changing how many draws one stream makes never shifts another.
uint64_t derive_seed(uint64_t seed, std::string_view stream);

// A fresh generator of the device's type (CPU or CUDA), seeded.
at::Generator make_generator(uint64_t seed, c10::Device device = c10::Device(c10::kCPU));

}  // namespace scorediff
