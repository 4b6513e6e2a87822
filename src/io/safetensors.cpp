#include "scorediff/io/safetensors.hpp"

#include <zlib.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "scorediff/core/error.hpp"
#include "scorediff/io/files.hpp"

namespace scorediff {
namespace {

constexpr const char* kCrcKey = "scorediff.crc32";

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeName kSafetensorsDtypes[] = {{"F32", torch::kFloat32}, {"F64", torch::kFloat64}, {"F16", torch::kFloat16},
                                 {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
                                 {"I16", torch::kInt16},     {"I8", torch::kInt8},   {"U8", torch::kUInt8},
                                 {"BOOL", torch::kBool}};

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kSafetensorsDtypes)
    if (d.type == type) return d.name;
  fail("cannot store dtype {} in safetensors", c10::toString(type));
}

uint32_t crc32_of(uint32_t crc, const char* data, size_t size) {
  while (size > 0) {
    auto chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(data), chunk));
    data += chunk;
    size -= chunk;
  }
  return crc;
}

// CRC over the canonical header (nlohmann's dump sorts keys) without the CRC entry, then the data.
uint32_t checksum(nlohmann::json header, const char* data, size_t size) {
  if (header.contains("__metadata__")) header["__metadata__"].erase(kCrcKey);
  std::string canonical = header.dump();
  return crc32_of(crc32_of(0, canonical.data(), canonical.size()), data, size);
}

}  // namespace

const torch::Tensor& TensorFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail("tensor '{}' not found ({} tensors in file)", name, tensors.size());
}

bool TensorFile::contains(const std::string& name) const {
  for (const auto& entry : tensors)
    if (entry.first == name) return true;
  return false;
}

void write_safetensors(const std::filesystem::path& path, const TensorFile& file) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> contiguous;
  size_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    require(name != "__metadata__" && !header.contains(name), "bad or duplicate tensor name '{}'", name);
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(t);
  }
  nlohmann::json metadata = nlohmann::json::object();
  for (const auto& [k, v] : file.metadata) metadata[k] = v;
  header["__metadata__"] = metadata;

  std::string data;
  data.reserve(offset);
  for (const auto& t : contiguous) data.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  header["__metadata__"][kCrcKey] = std::to_string(checksum(header, data.data(), data.size()));

  std::string text = header.dump();
  text += std::string((8 - text.size() % 8) % 8, ' ');
  uint64_t n = text.size();
  char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (8 * i)) & 0xff);

  AtomicFile out(path);
  out.write(length, 8);
  out.write(text.data(), text.size());
  out.write(data.data(), data.size());
  out.commit();
}

TensorFile read_safetensors(const std::filesystem::path& path, bool require_checksum) {
  const std::string p = path.string();
  std::string bytes = read_file(path, "checkpoint");
  if (bytes.size() < 8) fail("checkpoint '{}' is truncated ({} bytes)", p, bytes.size());
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  if (header_size > bytes.size() - 8)
    fail("checkpoint '{}' is truncated or corrupt: header of {} bytes, file has {}", p, header_size, bytes.size());

  // The header is one JSON object padded with spaces; anything else there (nlohmann stops at a NUL,
  // so a flipped padding byte would otherwise pass) means the file was damaged.
  const std::string_view header_text(bytes.data() + 8, header_size);
  const size_t json_end = header_text.find_last_of('}');
  if (json_end == std::string_view::npos || header_text.find('\0') != std::string_view::npos ||
      header_text.find_first_not_of(' ', json_end + 1) != std::string_view::npos)
    fail("checkpoint '{}' is corrupt: its header is not valid JSON", p);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
  } catch (const nlohmann::json::exception&) {
    fail("checkpoint '{}' is corrupt: its header is not valid JSON", p);
  }
  if (!header.is_object()) fail("checkpoint '{}' is corrupt: header is not a JSON object", p);
  const char* data = bytes.data() + 8 + header_size;
  size_t data_size = bytes.size() - 8 - header_size;

  TensorFile out;
  try {
    if (header.contains("__metadata__")) {
      for (const auto& [k, v] : header["__metadata__"].items()) out.metadata[k] = v.get<std::string>();
    }
    auto crc = out.metadata.find(kCrcKey);
    if (crc == out.metadata.end() && require_checksum)
      fail("checkpoint '{}' is corrupt or was not written by scorediff: its checksum is missing", p);
    if (crc != out.metadata.end() && crc->second != std::to_string(checksum(header, data, data_size)))
      fail("checkpoint '{}' is corrupt: checksum mismatch (truncated or modified file)", p);

    // Tensors in data order; safetensors requires them to tile the data section exactly.
    std::vector<std::tuple<size_t, size_t, std::string>> spans;
    for (const auto& [name, info] : header.items()) {
      if (name == "__metadata__") continue;
      auto offsets = info.at("data_offsets").get<std::vector<size_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
        fail("checkpoint '{}' is truncated or corrupt: tensor '{}' lies outside the data", p, name);
      spans.emplace_back(offsets[0], offsets[1], name);
    }
    std::sort(spans.begin(), spans.end());
    size_t expected = 0;
    for (const auto& [begin, end, name] : spans) {
      const auto& info = header[name];
      std::string dtype = info.at("dtype").get<std::string>();
      const DtypeName* d = nullptr;
      for (const auto& candidate : kSafetensorsDtypes)
        if (dtype == candidate.name) d = &candidate;
      if (d == nullptr) fail("checkpoint '{}' is corrupt: tensor '{}' has unknown dtype '{}'", p, name, dtype);
      auto shape = info.at("shape").get<std::vector<int64_t>>();
      int64_t count = 1;
      for (int64_t s : shape) {
        if (s < 0) fail("checkpoint '{}' is corrupt: tensor '{}' has a negative dimension", p, name);
        count *= s;
      }
      if (begin != expected || end - begin != static_cast<size_t>(count) * c10::elementSize(d->type))
        fail("checkpoint '{}' is corrupt: tensor '{}' has inconsistent size or offsets", p, name);
      expected = end;
      torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(d->type));
      std::memcpy(t.data_ptr(), data + begin, end - begin);
      out.tensors.emplace_back(name, t);
    }
    if (expected != data_size)
      fail("checkpoint '{}' is corrupt: {} bytes of data after the last tensor", p, data_size - expected);
  } catch (const nlohmann::json::exception&) {
    fail("checkpoint '{}' is corrupt: malformed header entries", p);
  }
  return out;
}

}  // namespace scorediff
