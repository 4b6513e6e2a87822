// One JSON object per line, flushed as written: train.jsonl.
#pragma once
#include <cstdio>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace scorediff {

class JsonlWriter {
 public:
  // append=false truncates. keep_until_step (with append) first drops lines whose "step" exceeds it,
  // so a resumed run's log continues exactly where its checkpoint was taken.
  JsonlWriter(const std::filesystem::path& path, bool append, int64_t keep_until_step = -1);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  void write(const nlohmann::json& record);
  // The records kept from an earlier run (append with keep_until_step), in file order.
  const std::vector<nlohmann::json>& kept() const { return kept_; }

 private:
  std::vector<nlohmann::json> kept_;
  std::FILE* file_ = nullptr;
  std::filesystem::path path_;
};

}  // namespace scorediff
