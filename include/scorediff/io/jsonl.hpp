// One JSON object per line, flushed as written: train.jsonl.
#pragma once
#include <cstdio>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>

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

 private:
  std::FILE* file_ = nullptr;
  std::filesystem::path path_;
};

}  // namespace scorediff
