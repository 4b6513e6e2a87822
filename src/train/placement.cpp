// Where a data-parallel worker trains and how it sums gradients: place_worker (data_parallel.hpp).
#include <torch/cuda.h>

#include "scorediff/core/runtime.hpp"
#include "scorediff/train/data_parallel.hpp"

namespace scorediff {

std::string place_worker(const std::string& device, DistOptions& o) {
  require(o.backend == "auto" || o.backend == "gloo" || o.backend == "nccl",
          "unknown --backend '{}'; valid: auto, gloo, nccl", o.backend);
  const c10::Device parsed = parse_device(device);
  const bool cuda = parsed.is_cuda();
  if (o.backend == "nccl") {
    require(nccl_available(), "--backend nccl: this scorediff was built against a LibTorch without NCCL; use gloo");
    require(cuda, "--backend nccl sums CUDA tensors; run.device is '{}' (use --device cuda or --backend gloo)",
            device);
  }
  require(o.local_rank >= 0 && o.local_rank < o.local_world, "--local-rank {} must be in [0, --local-world {})",
          o.local_rank, o.local_world);
  if (!cuda || !o.active()) {
    if (o.backend == "auto") o.backend = "gloo";
    return device;
  }
  const int gpus = static_cast<int>(torch::cuda::device_count());
  // NCCL refuses two ranks on one GPU: a device with an index is every local worker's, and without one the
  // workers take GPUs local_rank mod the count.
  const bool shared = parsed.has_index() ? o.local_world > 1 : o.local_world > gpus;
  if (o.backend == "auto") o.backend = nccl_available() && !shared ? "nccl" : "gloo";
  require(o.backend != "nccl" || !shared,
          "--backend nccl needs a GPU of its own for each worker: {} workers on this machine share {}", o.local_world,
          parsed.has_index() ? device : fmt::format("its {} GPU(s)", gpus));
  const auto index = static_cast<c10::DeviceIndex>(o.local_rank % std::max(gpus, 1));
  const c10::Device placed = parsed.has_index() ? parsed : c10::Device(c10::kCUDA, index);
  o.device_index = placed.index();
  return placed.str();
}

}  // namespace scorediff
