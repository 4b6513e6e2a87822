// Data parallel: which rows of the global batch this process computes. Layers that draw randomness per
// sample (dropout) draw it for the whole global batch and keep their rows, so that the masks, like the
// batch and the noise, do not depend on the number of processes.
#pragma once
#include <cstdint>

namespace scorediff {

struct BatchShard {
  int64_t batch = 0;             // rows of the global batch
  int64_t begin = 0, end = 0;    // this process' rows [begin, end)
};

// Sets the shard for this thread while alive (the Trainer's sharded score evaluation).
class BatchShardScope {
 public:
  explicit BatchShardScope(const BatchShard& shard);
  ~BatchShardScope();
  BatchShardScope(const BatchShardScope&) = delete;
  BatchShardScope& operator=(const BatchShardScope&) = delete;

 private:
  const BatchShard* previous_;
};

// The shard of the evaluation in progress on this thread, or nullptr (one process, or not sharded).
const BatchShard* current_batch_shard();

}  // namespace scorediff
