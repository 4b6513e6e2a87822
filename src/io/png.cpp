// PNG reading and writing through libpng's classic API, which reports errors by longjmp. Each libpng
// call sequence therefore lives in one C-style function (decode_rows, encode_rows) that owns no C++
// object with a destructor, so the jump skips nothing; the C++ callers hold the png structs in a guard
// and turn a failed call into scorediff::Error with libpng's message.
#include "scorediff/io/png.hpp"

#include <fmt/ranges.h>
#include <png.h>
#include <torch/torch.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "scorediff/core/error.hpp"
#include "scorediff/io/files.hpp"

namespace scorediff {
namespace {

// Larger sides are refused before any allocation: a corrupt header must not ask for gigabytes.
constexpr png_uint_32 kMaxSide = 1 << 14;

struct PngMessage {
  char text[256] = "unknown libpng error";
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* out = static_cast<PngMessage*>(png_get_error_ptr(png));
  std::strncpy(out->text, message, sizeof(out->text) - 1);
  out->text[sizeof(out->text) - 1] = '\0';
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // e.g. "iCCP: known incorrect sRGB profile": harmless

struct MemoryReader {
  const unsigned char* data;
  size_t size, offset;
};

void read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (length > reader->size - reader->offset) png_error(png, "file is truncated");
  std::memcpy(out, reader->data + reader->offset, length);
  reader->offset += length;
}

struct MemoryWriter {
  std::vector<unsigned char> bytes;
  bool out_of_memory = false;
};

void write_to_memory(png_structp png, png_bytep data, png_size_t length) {
  auto* writer = static_cast<MemoryWriter*>(png_get_io_ptr(png));
  try {
    writer->bytes.insert(writer->bytes.end(), data, data + length);
  } catch (const std::bad_alloc&) {
    writer->out_of_memory = true;  // no exception may cross libpng's C frames
  }
  if (writer->out_of_memory) png_error(png, "out of memory");
}

void flush_nothing(png_structp) {}

// Decodes into rows owned by `info`: palette and low bit depths expanded, alpha dropped, so the
// result is gray or RGB at 8 or 16 bits (big-endian). False on any libpng error.
bool decode_rows(png_structp png, png_infop info, MemoryReader* reader) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, reader, read_from_memory);
  png_set_user_limits(png, kMaxSide, kMaxSide);
  png_read_png(png, info, PNG_TRANSFORM_EXPAND | PNG_TRANSFORM_STRIP_ALPHA, nullptr);
  return true;
}

bool encode_rows(png_structp png, png_infop info, MemoryWriter* writer, png_uint_32 width, png_uint_32 height,
                 int color_type, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, writer, write_to_memory, flush_nothing);
  png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_rows(png, info, rows);
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  return true;
}

class ReadStructs {
 public:
  explicit ReadStructs(PngMessage* message) {
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, on_png_error, on_png_warning);
    if (png != nullptr) info = png_create_info_struct(png);
  }
  ~ReadStructs() { png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr); }
  ReadStructs(const ReadStructs&) = delete;
  ReadStructs& operator=(const ReadStructs&) = delete;
  png_structp png = nullptr;
  png_infop info = nullptr;
};

class WriteStructs {
 public:
  explicit WriteStructs(PngMessage* message) {
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, on_png_error, on_png_warning);
    if (png != nullptr) info = png_create_info_struct(png);
  }
  ~WriteStructs() { png_destroy_write_struct(&png, info != nullptr ? &info : nullptr); }
  WriteStructs(const WriteStructs&) = delete;
  WriteStructs& operator=(const WriteStructs&) = delete;
  png_structp png = nullptr;
  png_infop info = nullptr;
};

}  // namespace

// -> [C, H, W] float32 in [0, 1], C = 1 or 3.
torch::Tensor read_png(const std::filesystem::path& path) {
  const std::string bytes = read_file(path, "PNG file");
  const std::string p = path.string();
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 8 || png_sig_cmp(data, 0, 8) != 0) fail("'{}' is not a PNG file (bad signature)", p);

  PngMessage message;
  ReadStructs s(&message);
  require(s.png != nullptr && s.info != nullptr, "cannot read '{}': libpng could not start", p);
  MemoryReader reader{data, bytes.size(), 0};
  if (!decode_rows(s.png, s.info, &reader)) fail("cannot read PNG '{}': {}", p, message.text);

  const int64_t height = png_get_image_height(s.png, s.info), width = png_get_image_width(s.png, s.info);
  const int64_t channels = png_get_channels(s.png, s.info), depth = png_get_bit_depth(s.png, s.info);
  require((channels == 1 || channels == 3) && (depth == 8 || depth == 16),
          "cannot read PNG '{}': unexpected {} channels of {} bits after expansion", p, channels, depth);
  png_bytepp rows = png_get_rows(s.png, s.info);
  // [H, W·C] bytes, then [H, W, C] values; 16-bit samples are big-endian.
  torch::Tensor raw = torch::empty({height, width * channels * (depth / 8)}, torch::kUInt8);
  for (int64_t y = 0; y < height; ++y)
    std::memcpy(raw.data_ptr<uint8_t>() + y * raw.size(1), rows[y], static_cast<size_t>(raw.size(1)));
  torch::Tensor values;
  if (depth == 8) {
    values = raw.to(torch::kFloat32) / 255.0;
  } else {
    torch::Tensor pairs = raw.to(torch::kInt32).view({height, width * channels, 2});
    values = (pairs.select(2, 0) * 256 + pairs.select(2, 1)).to(torch::kFloat32) / 65535.0;
  }
  return values.view({height, width, channels}).permute({2, 0, 1}).contiguous();
}

// image [C, H, W], C = 1 or 3.
void write_png(const std::filesystem::path& path, const torch::Tensor& image) {
  const std::string p = path.string();
  require(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
          "cannot write PNG '{}': expected an image [C, H, W] with C = 1 or 3, got shape {}", p, image.sizes().vec());
  const int64_t channels = image.size(0), height = image.size(1), width = image.size(2);
  require(height > 0 && width > 0 && height <= kMaxSide && width <= kMaxSide,
          "cannot write PNG '{}': size {}x{} is outside 1..{}", p, width, height, kMaxSide);
  // [H, W, C] bytes, rounded to the nearest of the 256 levels.
  torch::Tensor pixels = image.detach().to(torch::kCPU, torch::kFloat32).nan_to_num(0.0).clamp(0.0, 1.0)
                             .mul(255.0).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y) rows[y] = pixels.data_ptr<uint8_t>() + y * width * channels;

  PngMessage message;
  WriteStructs s(&message);
  require(s.png != nullptr && s.info != nullptr, "cannot write '{}': libpng could not start", p);
  MemoryWriter writer;
  if (!encode_rows(s.png, s.info, &writer, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height),
                   channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, rows.data()))
    fail("cannot write PNG '{}': {}", p, message.text);
  AtomicFile file(path);
  file.write(writer.bytes.data(), writer.bytes.size());
  file.commit();
}

// images [N, C, H, W] -> [C, rows·(H+pad)+pad, cols·(W+pad)+pad].
torch::Tensor image_grid(const torch::Tensor& images, int64_t cols, int64_t pad, double pad_value) {
  require(images.dim() == 4 && images.size(0) > 0, "image_grid expects images [N, C, H, W] with N > 0, got shape {}",
          images.sizes().vec());
  require(cols >= 1 && pad >= 0, "image_grid needs cols >= 1 and pad >= 0, got cols={} pad={}", cols, pad);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t rows = (n + cols - 1) / cols;
  // Every cell is an image with pad on its right and bottom; empty cells are all padding. Then
  // [rows, cols, C, H+pad, W+pad] -> [C, rows, H+pad, cols, W+pad], plus the top and left border.
  torch::Tensor cells = torch::full({rows * cols, c, h + pad, w + pad}, pad_value, images.options());
  cells.slice(0, 0, n).slice(2, 0, h).slice(3, 0, w).copy_(images);
  torch::Tensor grid = cells.view({rows, cols, c, h + pad, w + pad}).permute({2, 0, 3, 1, 4})
                           .reshape({c, rows * (h + pad), cols * (w + pad)});
  return torch::constant_pad_nd(grid, {pad, 0, pad, 0}, pad_value);
}

}  // namespace scorediff
