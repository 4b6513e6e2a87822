#include "scorediff/train/data_parallel.hpp"

#include <torch/torch.h>

#include <csignal>
#include <cstdlib>
#include <future>
#include <map>
#include <thread>

#if SCOREDIFF_HAVE_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
// NCCL: only where CMake found c10d's NCCL header and nccl.h (a CUDA LibTorch); see CMakeLists.txt.
#if SCOREDIFF_HAVE_GLOO && SCOREDIFF_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define SCOREDIFF_WITH_NCCL 1
#else
#define SCOREDIFF_WITH_NCCL 0
#endif


namespace scorediff {

std::pair<int64_t, int64_t> shard_rows(int64_t batch, int rank, int world) {
  require(world >= 1 && rank >= 0 && rank < world, "rank {} is outside a world of {}", rank, world);
  return {batch * rank / world, batch * (rank + 1) / world};
}

bool data_parallel_available() { return SCOREDIFF_HAVE_GLOO != 0; }
bool nccl_available() { return SCOREDIFF_WITH_NCCL != 0; }

namespace {

double seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }

}  // namespace

#if SCOREDIFF_HAVE_GLOO

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;  // Gloo: CPU tensors
#if SCOREDIFF_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // NCCL: CUDA tensors, summed where they are
#endif
  bool on_device() const {
#if SCOREDIFF_WITH_NCCL
    return static_cast<bool>(nccl);
#else
    return false;
#endif
  }
  auto allreduce(std::vector<at::Tensor>& flat, const c10d::AllreduceOptions& opts) {
#if SCOREDIFF_WITH_NCCL
    if (nccl) return nccl->allreduce(flat, opts);
#endif
    return group->allreduce(flat, opts);
  }
};

namespace {

// c10d's Work handle: ProcessGroup::Work in LibTorch 1.13, c10d::Work in 2.x.
using WorkPtr =
    decltype(std::declval<c10d::ProcessGroupGloo&>().allreduce(std::declval<std::vector<at::Tensor>&>()));

// Set by rank 0 once every rank has met and the group is made (Gloo: connected; NCCL connects at the first
// all-reduce).
const std::string kFormedKey = "scorediff/formed";

// Every rank publishes its backend; rank 0 reads all of them, the others rank 0's: a rank that differs
// stops with one line on both sides (status 2).
void agree_on_backend(c10d::Store& store, const DistOptions& o) {
  auto key = [](int rank) { return fmt::format("scorediff/backend/{}", rank); };
  std::vector<std::string> differ;
  std::string rank0;
  try {
    store.set(key(o.rank), std::vector<uint8_t>(o.backend.begin(), o.backend.end()));
    for (int r = 0; r < (o.rank == 0 ? o.world_size : 1); ++r) {
      const std::vector<uint8_t> bytes = store.get(key(r));
      const std::string theirs(bytes.begin(), bytes.end());
      if (r == 0) rank0 = theirs;
      if (theirs != o.backend) differ.push_back(fmt::format("rank {} with {}", r, theirs));
    }
  } catch (const std::exception& e) {
    throw WorkerLost(fmt::format("rank {}: comparing the ranks' backends failed: {}", o.rank, first_line(e.what())));
  }
  if (o.rank == 0)
    require(differ.empty(), "rank 0 sums with {} but {}; give every worker the same --backend", o.backend,
            fmt::join(differ, ", "));
  else
    require(differ.empty(), "rank {} sums with {} but rank 0 with {}; give every worker the same --backend", o.rank,
            o.backend, rank0);
}

bool is_loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

// The network device Gloo binds: loopback for a job on this machine, GLOO_SOCKET_IFNAME where set (as
// torch.distributed reads it), otherwise the address this machine's hostname resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0')
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (is_loopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// "rank 1 died, hung or was stopped": every rank but this one, when nothing tells which of them stalled.
std::string other_ranks_lost(int rank, int world) {
  std::vector<std::string> others;
  for (int k = 0; k < world; ++k)
    if (k != rank) others.push_back(std::to_string(k));
  return others.size() == 1 ? fmt::format("rank {} died, hung or was stopped", others[0])
                            : fmt::format("one of ranks {} died, hung or was stopped", fmt::join(others, ", "));
}

// What rank `rank` says when rank 0's store does not answer. Rank 0 hosts that store: its own reads
// or writes can stall behind a peer's cut connection, and the rank to blame is then a peer, not itself.
std::string store_silent(int rank, int world, const char* how) {
  if (rank == 0) return other_ranks_lost(rank, world) + " (the rendezvous store did not answer in time)";
  return fmt::format("rank 0 (the rendezvous) {}: it died, hung or was stopped", how);
}

}  // namespace

ProcessGroup::ProcessGroup(const DistOptions& o) : impl_(std::make_unique<Impl>()), options_(o) {
  require(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "--rank {} must be in [0, --world-size {})",
          o.rank, o.world_size);
  require(o.master_port > 0 && o.master_port < 65536, "--master-port {} must be in [1, 65535]", o.master_port);
  require(o.backend == "gloo" || (o.backend == "nccl" && nccl_available()),
          "rank {}: backend '{}' is not resolved or not in this build (place_worker)", o.rank, o.backend);
  // Gloo writes to its sockets without MSG_NOSIGNAL: a peer that died would kill this process with SIGPIPE
  // instead of the one-line WorkerLost (Python, which PyTorch usually runs under, ignores SIGPIPE).
  ::signal(SIGPIPE, SIG_IGN);
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.master_port);
  so.isServer = o.rank == 0;
  so.numWorkers = o.world_size;
  so.waitWorkers = true;
  so.timeout = o.long_timeout;
  const auto give_up = std::chrono::steady_clock::now() + o.long_timeout;
  for (;;) {
    // A worker started again (train --max-restarts) may reach the failed start's rank 0 before that one has
    // stopped: its store holds a group already formed. Leave it and wait for the new one; that old rank 0 may
    // also vanish in the middle of the handshake, which is retried the same way.
    std::string problem;
    try {
      impl_->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
      if (o.rank == 0 || !impl_->store->check({kFormedKey})) break;
      problem = "it still belonged to an earlier start of the job";
    } catch (const std::exception& e) {
      if (o.rank == 0) fail("rank 0: cannot host the rendezvous on port {}: {}", o.master_port, first_line(e.what()));
      problem = first_line(e.what());
    }
    impl_->store.reset();
    if (std::chrono::steady_clock::now() > give_up)
      fail("rank {}: rendezvous at {}:{} failed within {:.0f} s: {}", o.rank, o.master_addr, o.master_port,
           seconds(o.long_timeout), problem);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  agree_on_backend(*impl_->store, o);
  try {
    // The collectives' timeout is the group's (LibTorch 1.13's Gloo ignores a per-call one); rank 0's
    // work alone is waited for through the store (wait_for_rank0).
#if SCOREDIFF_WITH_NCCL
    if (o.backend == "nccl") {
      // Blocking wait: work->wait(timeout) then blocks and throws on a lost peer, as Gloo's does, instead of
      // leaving it to NCCL's watchdog (read by the constructor; 1.13's name and 2.x's).
      ::setenv("NCCL_BLOCKING_WAIT", "1", 0);
      ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      if (o.device_index >= 0) c10::cuda::set_device(static_cast<c10::DeviceIndex>(o.device_index));
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = o.timeout;
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, o.rank, o.world_size, nccl);
    }
#endif
    if (!impl_->on_device()) {
      auto gloo = c10d::ProcessGroupGloo::Options::create(o.timeout);
      gloo->devices.push_back(gloo_device(o.master_addr));
      gloo->threads = 1;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, o.rank, o.world_size, gloo);
    }
    if (o.rank == 0) impl_->store->set(kFormedKey, std::vector<uint8_t>{1});
  } catch (const std::exception& e) {
    // A peer lost while connecting: like a lost collective (status 3), which a supervisor restarts.
    throw WorkerLost(fmt::format("rank {}: connecting the {} workers ({}) failed: {}", o.rank, o.world_size, o.backend,
                                 first_line(e.what())));
  }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  // Buckets of same-dtype tensors in order, each at most bucket_bytes (a larger tensor is a bucket alone).
  struct Bucket {
    std::vector<size_t> members;
    std::vector<torch::Tensor> flat;  // one tensor: what Gloo sums
    WorkPtr work;
  };
  std::vector<Bucket> buckets;
  std::map<c10::ScalarType, size_t> open;  // dtype -> index of its bucket being filled
  std::vector<int64_t> bytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor& t = tensors[i];
    const int64_t size = t.numel() * static_cast<int64_t>(t.element_size());
    auto it = open.find(t.scalar_type());
    if (it == open.end() || bytes[it->second] + size > bucket_bytes) {
      buckets.emplace_back();
      bytes.push_back(0);
      it = open.insert_or_assign(t.scalar_type(), buckets.size() - 1).first;
    }
    buckets[it->second].members.push_back(i);
    bytes[it->second] += size;
  }
  // Where this rank is, for the others' error messages (lagging_ranks).
  try {
    impl_->store->set(fmt::format("scorediff/at/{}", options_.rank), std::vector<uint8_t>(what.begin(), what.end()));
  } catch (const std::exception& e) {
    throw WorkerLost(fmt::format("rank {}: {}: {} ({})", options_.rank, what,
                                 store_silent(options_.rank, options_.world_size, "is unreachable"),
                                 first_line(e.what())));
  }
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = options_.timeout;
  try {
    for (Bucket& b : buckets) {
      std::vector<torch::Tensor> parts;
      // Gloo sums in host memory; NCCL on the tensors' GPU.
      for (size_t i : b.members)
        parts.push_back(impl_->on_device() ? tensors[i].detach().reshape({-1})
                                           : tensors[i].detach().reshape({-1}).to(torch::kCPU));
      b.flat = {torch::cat(parts)};
      b.work = impl_->allreduce(b.flat, opts);
    }
    for (Bucket& b : buckets) {
      b.work->wait(opts.timeout);
      int64_t offset = 0;
      for (size_t i : b.members) {
        torch::Tensor& t = tensors[i];
        t.copy_(b.flat[0].slice(0, offset, offset + t.numel()).view(t.sizes()));
        offset += t.numel();
      }
    }
  } catch (const std::exception& e) {
    throw WorkerLost(fmt::format("rank {}: {} failed after waiting at most {:.0f} s: {} ({})", options_.rank, what,
                                 seconds(opts.timeout), lagging_ranks(what), first_line(e.what())));
  }
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

namespace {

// "rank 1 was last at …", from the keys sum() leaves in the store.
std::string read_lagging_ranks(c10d::Store& store, const std::string& what, int rank, int world) {
  std::vector<std::string> behind;
  try {
    for (int k = 0; k < world; ++k) {
      const std::string key = fmt::format("scorediff/at/{}", k);
      if (k == rank) continue;
      if (!store.check({key})) {
        behind.push_back(fmt::format("rank {} never got to a collective", k));
        continue;
      }
      std::vector<uint8_t> at = store.get(key);
      if (std::string(at.begin(), at.end()) != what)
        behind.push_back(fmt::format("rank {} was last at {}", k, std::string(at.begin(), at.end())));
    }
  } catch (const std::exception&) {
    return store_silent(rank, world, "is unreachable");
  }
  if (behind.empty()) return other_ranks_lost(rank, world);  // every rank got here: one stalled inside the collective
  return fmt::format("{}; it died, hung or was stopped", fmt::join(behind, ", "));
}

}  // namespace

std::string ProcessGroup::lagging_ranks(const std::string& what) {
  // Read from rank 0's store, which may itself be stopped or unreachable: on a thread of its own, given
  // at most 5 s (the thread is left behind if the store never answers).
  auto result = std::make_shared<std::promise<std::string>>();
  std::future<std::string> answer = result->get_future();
  std::thread([result, store = impl_->store, what, rank = options_.rank, world = options_.world_size] {
    result->set_value(read_lagging_ranks(*store, what, rank, world));
  }).detach();
  if (answer.wait_for(std::min<std::chrono::milliseconds>(options_.timeout, std::chrono::seconds(5))) !=
      std::future_status::ready)
    return store_silent(options_.rank, options_.world_size, "does not answer");
  return answer.get();
}

void ProcessGroup::wait_for_rank0(const std::string& what) {
  const std::string key = fmt::format("scorediff/rank0/{}", ++rank0_waits_);
  if (options_.rank == 0) {
    try {
      impl_->store->set(key, std::vector<uint8_t>{1});
    } catch (const std::exception& e) {
      throw WorkerLost(fmt::format("rank 0: {}: its own rendezvous failed ({})", what, first_line(e.what())));
    }
    return;
  }
  // Polled, not waited for: rank 0 may work alone for up to long_timeout, but its store (a thread of its own)
  // must answer every poll within the collective timeout, so a cut link or a stopped rank 0 is found as fast
  // as in a collective. Each poll runs on a thread of its own, left behind if the store never answers.
  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + options_.long_timeout;
  const auto answer_within = std::min<std::chrono::milliseconds>(options_.timeout, options_.long_timeout);
  for (int poll = 0;; ++poll) {
    auto result = std::make_shared<std::promise<bool>>();
    std::future<bool> answer = result->get_future();
    std::thread([result, store = impl_->store, key] {
      try {
        result->set_value(store->check({key}));
      } catch (...) {
        result->set_exception(std::current_exception());
      }
    }).detach();
    if (answer.wait_for(answer_within) != std::future_status::ready)
      throw WorkerLost(fmt::format("rank {}: {} failed: rank 0 did not answer within {:.0f} s; the link to it is cut, "
                                   "or it hung or was stopped",
                                   options_.rank, what, seconds(answer_within)));
    try {
      if (answer.get()) return;
    } catch (const std::exception& e) {
      throw WorkerLost(fmt::format("rank {}: {} failed: rank 0 died, hung or was stopped ({})", options_.rank, what,
                                   first_line(e.what())));
    }
    if (Clock::now() > give_up)
      throw WorkerLost(fmt::format("rank {}: {} failed: rank 0 worked alone for more than {:.0f} s", options_.rank,
                                   what, seconds(options_.long_timeout)));
    // 1, 2, 4 … 64 ms, and at most ~250 polls a second on rank 0's store from the whole job.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max(1 << std::min(poll, 6), 4 * options_.world_size)));
  }
}

void ProcessGroup::check_same(const std::string& name, const std::string& value) {
  const std::string key = "scorediff/check/" + name;
  std::string theirs;
  try {
    if (options_.rank == 0) {
      impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
      return;
    }
    std::vector<uint8_t> bytes = impl_->store->get(key);
    theirs.assign(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw WorkerLost(fmt::format("rank {}: reading rank 0's {} failed: {}", options_.rank, name, first_line(e.what())));
  }
  require(theirs == value, "rank {}: its {} differs from rank 0's; every worker must run the same job", options_.rank,
          name);
}

#else  // no Gloo in this build

struct ProcessGroup::Impl {};
std::string ProcessGroup::lagging_ranks(const std::string&) { return {}; }

ProcessGroup::ProcessGroup(const DistOptions& o) : options_(o) {
  fail("this scorediff was built without c10d/Gloo (install libgloo-dev and rebuild) and cannot train with {} processes",
       o.world_size);
}
ProcessGroup::~ProcessGroup() = default;
void ProcessGroup::sum(std::vector<torch::Tensor>&, const std::string&) {}
void ProcessGroup::wait_for_rank0(const std::string&) {}
void ProcessGroup::check_same(const std::string&, const std::string&) {}

#endif

}  // namespace scorediff
