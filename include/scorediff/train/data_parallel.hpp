// Data-parallel training across processes on PyTorch's c10d: a TCPStore rendezvous and a process group,
// Gloo for CPU tensors, NCCL for CUDA tensors where LibTorch was built with it (otherwise CUDA gradients
// travel through host memory over Gloo). The Trainer shards every global batch over the ranks and sums
// their gradients here; see docs/distributed.md.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "scorediff/core/error.hpp"

namespace scorediff {

// A collective failed or timed out: another worker died, hung or was stopped. The CLI exits with status 3.
class WorkerLost : public Error {
 public:
  using Error::Error;
};

struct DistOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Longest wait for one collective and for connecting (a dead or hung worker is reported after it).
  std::chrono::milliseconds timeout{30000};
  // Longest wait at the rendezvous and while rank 0 works alone (checkpoints, sample grids).
  std::chrono::milliseconds long_timeout{3600000};
  // "auto" (NCCL when the tensors are on CUDA and this build has it, else Gloo), "gloo" or "nccl".
  std::string backend = "auto";
  // This worker's index among the `local_world` workers of its machine (train --nproc sets both): a worker
  // with run.device "cuda" takes GPU local_rank mod the GPU count.
  int local_rank = 0;
  int local_world = 1;
  int device_index = -1;  // the CUDA device place_worker chose (-1: none)
  bool active() const { return world_size > 1; }
};

// Whether this build has c10d with Gloo (LibTorch headers plus libgloo-dev).
bool data_parallel_available();
// Whether this build has c10d's NCCL process group (a CUDA LibTorch with NCCL).
bool nccl_available();
// The device this worker trains on, given run.device, and the backend its gradients are summed with
// (sets options.device_index and resolves options.backend "auto"). A device "cuda" without an index becomes
// cuda:(local_rank mod GPUs); NCCL needs a GPU of its own per worker, so "auto" takes Gloo where the
// machine's workers would share one (more workers than GPUs, or a device with an index and several workers).
// Fails with one line for an unknown backend, or "nccl" where this build or the device cannot use it.
std::string place_worker(const std::string& device, DistOptions& options);

class ProcessGroup {
 public:
  // Joins the job: rank 0 hosts the TCPStore at master_addr:master_port, every rank connects to it and
  // to every other rank (Gloo over TCP, or NCCL). `options.backend` must be resolved (place_worker) and
  // the same on every rank. Fails with one line when this build has no Gloo, the ranks' backends differ
  // or the rendezvous does not complete within long_timeout.
  explicit ProcessGroup(const DistOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  const std::string& backend() const { return options_.backend; }  // "gloo" or "nccl"

  // Sums the tensors over the ranks, in place (timeout). Tensors are packed by dtype into flat buckets of
  // at most `bucket_bytes`, all of which are in flight at once. `what` names the collective in errors.
  void sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  // Called by every rank at the same point: the other ranks wait (at most long_timeout, polling the store)
  // until rank 0 gets there, while it works alone (checkpoints, sample grids). A store that does not answer
  // a poll within `timeout` (a cut link, a stopped rank 0) ends the wait with WorkerLost.
  void wait_for_rank0(const std::string& what);
  // Fails on every rank whose `value` differs from rank 0's (e.g. the configuration each rank resolved).
  void check_same(const std::string& name, const std::string& value);
  // Seconds spent inside sum() since construction.
  double communication_seconds() const { return comm_seconds_; }

  static constexpr int64_t bucket_bytes = 8 << 20;

 private:
  // "rank 1 was last at …": the ranks that have not reached `what`, from the keys sum() leaves in the store.
  std::string lagging_ranks(const std::string& what);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistOptions options_;
  double comm_seconds_ = 0;
  int64_t rank0_waits_ = 0;
};

// The rows [begin, end) of a global batch of `batch` rows that `rank` of `world` computes: contiguous
// shards whose sizes differ by at most one.
std::pair<int64_t, int64_t> shard_rows(int64_t batch, int rank, int world);

}  // namespace scorediff
