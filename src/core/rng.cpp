#include "scorediff/core/rng.hpp"

#include <ATen/Context.h>
#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

namespace scorediff {

uint64_t derive_seed(uint64_t seed, std::string_view stream) {
  // FNV-1a over the stream name, mixed with the seed by SplitMix64's finaliser.
  uint64_t h = 1469598103934665603ULL;
  for (char c : stream) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (h | 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFFULL;
}

at::Generator make_generator(uint64_t seed, c10::Device device) {
  at::Generator gen;
  if (device.is_cpu()) {
    gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  } else {
    // The device's default generator, cloned so the global one is never touched.
    const at::Generator& global = at::globalContext().defaultGenerator(device);
    gen = global.clone();
  }
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

}  // namespace scorediff
