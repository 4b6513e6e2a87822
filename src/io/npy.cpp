#include "scorediff/io/npy.hpp"

#include <cstring>
#include <regex>

#include "scorediff/core/error.hpp"
#include "scorediff/io/files.hpp"

namespace scorediff {
namespace {

struct DtypeCode {
  const char* descr;
  torch::ScalarType type;
};
constexpr DtypeCode kNpyDtypes[] = {{"<f4", torch::kFloat32}, {"<f8", torch::kFloat64}, {"<i8", torch::kInt64},
                                 {"<i4", torch::kInt32},   {"|u1", torch::kUInt8},   {"|i1", torch::kInt8},
                                 {"|b1", torch::kBool}};

std::string header_field(const std::string& header, const std::string& name, const std::string& path) {
  std::regex pattern("'" + name + "'\\s*:\\s*('[^']*'|True|False|\\([^)]*\\))");
  std::smatch match;
  if (!std::regex_search(header, match, pattern)) fail("'{}' is not a valid .npy file: header has no '{}'", path, name);
  return match[1].str();
}

}  // namespace

torch::Tensor read_npy(const std::filesystem::path& path) {
  std::string bytes = read_file(path, ".npy file");
  const std::string p = path.string();
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) fail("'{}' is not a .npy file (bad magic)", p);
  auto major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail("'{}' is truncated", p);
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    header_start = 12;
  } else {
    fail("'{}' has unsupported .npy version {}", p, major);
  }
  if (header_start + header_len > bytes.size()) fail("'{}' is truncated (header)", p);
  std::string header = bytes.substr(header_start, header_len);

  std::string descr = header_field(header, "descr", p);
  descr = descr.substr(1, descr.size() - 2);
  if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';
  const DtypeCode* code = nullptr;
  for (const auto& d : kNpyDtypes)
    if (descr == d.descr) code = &d;
  if (code == nullptr) fail("'{}' has unsupported dtype '{}'; expected float32 or float64 (or integer/bool)", p, descr);
  if (header_field(header, "fortran_order", p) == "True") fail("'{}' is in Fortran order; save it C-contiguous", p);

  std::string shape_text = header_field(header, "shape", p);
  std::vector<int64_t> shape;
  std::regex number("\\d+");
  for (auto it = std::sregex_iterator(shape_text.begin(), shape_text.end(), number); it != std::sregex_iterator(); ++it)
    shape.push_back(std::stoll(it->str()));

  int64_t count = 1;
  for (int64_t s : shape) count *= s;
  size_t nbytes = static_cast<size_t>(count) * c10::elementSize(code->type);
  size_t data_start = header_start + header_len;
  if (bytes.size() - data_start != nbytes)
    fail("'{}' is truncated or corrupt: shape {} needs {} data bytes, file has {}", p, fmt::join(shape, "x"), nbytes,
         bytes.size() - data_start);
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(code->type));
  std::memcpy(out.data_ptr(), bytes.data() + data_start, nbytes);
  return out;
}

void write_npy(const std::filesystem::path& path, const torch::Tensor& array) {
  torch::Tensor a = array.detach().to(torch::kCPU).contiguous();
  const DtypeCode* code = nullptr;
  for (const auto& d : kNpyDtypes)
    if (a.scalar_type() == d.type) code = &d;
  require(code != nullptr, "cannot write dtype {} to .npy", c10::toString(a.scalar_type()));
  std::string shape;
  for (int64_t s : a.sizes()) shape += std::to_string(s) + ",";
  if (a.dim() > 1) shape.pop_back();
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", code->descr, shape);
  // Pad so that magic + version + length + header is a multiple of 64, ending in '\n' (format 1.0).
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>((header.size() >> 8) & 0xff);
  bytes += header;
  bytes.append(static_cast<const char*>(a.data_ptr()), a.numel() * a.element_size());
  write_file_atomic(path, bytes);
}

torch::Tensor read_points(const std::filesystem::path& path, std::optional<int64_t> expected_dim, bool flatten) {
  torch::Tensor a = read_npy(path);
  const std::string p = path.string();
  if (flatten && a.dim() > 2 && a.size(0) > 0) a = a.reshape({a.size(0), -1});
  if (a.scalar_type() == torch::kBool) fail("'{}' holds booleans; expected float points of shape [N, D]", p);
  if (a.dim() != 2) fail("'{}' has shape [{}]; expected points of shape [N, D]", p, fmt::join(a.sizes(), ", "));
  if (a.size(0) == 0) fail("'{}' holds no points", p);
  if (expected_dim && a.size(1) != *expected_dim)
    fail("'{}' has points of dimension {}; expected {}", p, a.size(1), *expected_dim);
  a = a.to(torch::kFloat32);
  auto bad = (~torch::isfinite(a)).any(1);
  int64_t n_bad = bad.sum().item<int64_t>();
  if (n_bad > 0) {
    int64_t first = bad.nonzero()[0][0].item<int64_t>();
    fail("'{}' has NaN or Inf values in {} of {} points (first at row {})", p, n_bad, a.size(0), first);
  }
  return a;
}

}  // namespace scorediff
