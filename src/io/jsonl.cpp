#include "scorediff/io/jsonl.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "scorediff/core/error.hpp"
#include "scorediff/io/files.hpp"

namespace scorediff {

JsonlWriter::JsonlWriter(const std::filesystem::path& path, bool append, int64_t keep_until_step) : path_(path) {
  std::error_code ec;
  if (append && keep_until_step >= 0 && std::filesystem::exists(path, ec)) {
    std::ifstream in(path);
    std::string line, kept;
    while (std::getline(in, line)) {
      auto record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_discarded()) continue;  // a line cut short by an interrupted run
      if (record.contains("step") && record["step"].get<int64_t>() > keep_until_step) continue;
      kept += line + "\n";
      kept_.push_back(std::move(record));
    }
    write_file_atomic(path, kept);
  }
  file_ = std::fopen(path.c_str(), append ? "a" : "w");
  if (file_ == nullptr) fail("cannot write '{}': {}", path.string(), std::strerror(errno));
}

JsonlWriter::~JsonlWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void JsonlWriter::write(const nlohmann::json& record) {
  std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) fail("cannot write '{}'", path_.string());
  std::fflush(file_);
}

}  // namespace scorediff
