#include "scorediff/core/runtime.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "scorediff/core/error.hpp"

namespace scorediff {

void configure_allocator() {
  // glibc 2.36 accepts thresholds above the 32 MB its manual gives as the limit (mallopt returns 1).
  // At 32 MB a 512-image U-Net batch (51 MB activations) was still mmapped per layer: 22 ms per image
  // against 5.6 ms with 1 GB (Fashion-MNIST U-Net forward, 1 thread).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

std::string blas_core_name() {
  using CoreName = char* (*)();
  auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (core_name == nullptr) return "";
  std::string n = core_name();
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return n;
}

void set_threads(int threads, Workload workload) {
  require(threads >= 1, "threads must be >= 1, got {}", threads);
  // Debian's LibTorch reaches OpenBLAS through the generic libblas.so.3, so at::set_num_threads never
  // reaches OpenBLAS' own pool, which by default starts one thread per core on top of ours. The
  // threads go to OpenBLAS, where the small models spend their time, and ATen's OpenMP pool stays at
  // one: with both at 2 on the 2-core machine, OpenMP workers spin-wait after each elementwise op
  // while OpenBLAS needs the cores (measured, toy bench at 2 threads: 360 train steps/s and 85
  // sampling evaluations/s with both at 2; 915 and 164 with OpenMP at 1; 893 and 171 with both at 2
  // under OMP_WAIT_POLICY=PASSIVE, which libgomp only reads before main).
  using SetThreads = void (*)(int);
  auto set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (workload == Workload::Convolution) {
    if (set_blas != nullptr) set_blas(1);
    at::set_num_threads(threads);
    return;
  }
  if (set_blas != nullptr) set_blas(threads);
  at::set_num_threads(set_blas != nullptr ? 1 : threads);
}

bool cpu_has_bfloat16_arithmetic() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) != 0) continue;
      std::istringstream flags(line);
      std::string flag;
      while (flags >> flag)
        if (flag == "avx512_bf16" || flag == "amx_bf16") return true;
      return false;
    }
    return false;
  }();
  return has;
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
