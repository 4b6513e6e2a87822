#include "scorediff/models/batch_shard.hpp"

namespace scorediff {
namespace {

thread_local const BatchShard* t_shard = nullptr;

}  // namespace

BatchShardScope::BatchShardScope(const BatchShard& shard) : previous_(t_shard) { t_shard = &shard; }
BatchShardScope::~BatchShardScope() { t_shard = previous_; }
const BatchShard* current_batch_shard() { return t_shard; }

}  // namespace scorediff
