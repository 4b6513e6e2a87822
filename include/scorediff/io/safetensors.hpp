// safetensors read/write: an 8-byte little-endian header length, a JSON header, raw tensor bytes.
// Python's `safetensors` opens these files. scorediff adds a CRC-32 of the header and data in the
// metadata, so a truncated or bit-flipped file is refused with one line instead of loading garbage.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace scorediff {

struct TensorFile {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;

  const torch::Tensor& at(const std::string& name) const;  // fails naming the file's tensors
  bool contains(const std::string& name) const;
};

void write_safetensors(const std::filesystem::path& path, const TensorFile& file);
// require_checksum = false accepts files written by other tools (no scorediff CRC in the metadata).
TensorFile read_safetensors(const std::filesystem::path& path, bool require_checksum = true);

}  // namespace scorediff
