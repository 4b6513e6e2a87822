#include "scorediff/core/runtime.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/cuda.h>

#include "scorediff/core/error.hpp"

namespace scorediff {

void set_threads(int threads) {
  require(threads >= 1, "threads must be >= 1, got {}", threads);
  at::set_num_threads(threads);
  // Debian's LibTorch reaches OpenBLAS through the generic libblas.so.3, so at::set_num_threads does not
  // reach OpenBLAS' own pool, which then spins up one thread per core on top of ours (measured: 25%
  // slower training on 2 cores). Set it directly when OpenBLAS is the BLAS.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      fail("device '{}' requested but this build of LibTorch has no CUDA device available; use --device cpu", name);
    try {
      return c10::Device(name);
    } catch (const c10::Error&) {
      fail("malformed device '{}'; expected cpu, cuda or cuda:N", name);
    }
  }
  fail("unknown device '{}'; valid: cpu, cuda, cuda:N", name);
}

}  // namespace scorediff
