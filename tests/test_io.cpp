// io: .npy and safetensors round trips, NumPy's own byte layout, and every corruption refused.
#include <gtest/gtest.h>

#include <fstream>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/jsonl.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/io/safetensors.hpp"
#include "test_util.hpp"

using namespace scorediff;

TEST(Npy, RoundTripsEveryDtype) {
  TempDir dir;
  for (auto dtype : {torch::kFloat32, torch::kFloat64, torch::kInt64, torch::kInt32, torch::kUInt8}) {
    torch::Tensor a = (torch::arange(24) * 3 - 5).reshape({2, 3, 4}).to(dtype);
    write_npy(dir / "a.npy", a);
    torch::Tensor b = read_npy(dir / "a.npy");
    EXPECT_EQ(b.scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(a, b));
  }
}

TEST(Npy, ReadsNumPysOwnLayout) {
  // Bytes of np.save(f, np.array([[1.5, -2.0, 3.0], [4.0, 5.0, 6.25]])) (format 1.0, '<f8').
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  header += std::string(128 - 10 - header.size() - 1, ' ') + "\n";
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  double values[] = {1.5, -2.0, 3.0, 4.0, 5.0, 6.25};
  bytes.append(reinterpret_cast<const char*>(values), sizeof(values));
  TempDir dir;
  write_file_atomic(dir / "np.npy", bytes);
  torch::Tensor a = read_npy(dir / "np.npy");
  EXPECT_TRUE(torch::equal(a, torch::tensor({{1.5, -2.0, 3.0}, {4.0, 5.0, 6.25}}, torch::kFloat64)));
  // And what we write has NumPy's 64-byte-aligned header.
  write_npy(dir / "ours.npy", a);
  std::string ours = read_file(dir / "ours.npy");
  size_t len = static_cast<unsigned char>(ours[8]) | (static_cast<unsigned char>(ours[9]) << 8);
  EXPECT_EQ((10 + len) % 64, 0u);
  EXPECT_EQ(ours[10 + len - 1], '\n');
}

TEST(Npy, PointsRejectWrongShapeDtypeAndNaN) {
  TempDir dir;
  write_npy(dir / "3d.npy", torch::zeros({2, 2, 2}));
  EXPECT_THAT_ERROR(read_points(dir / "3d.npy"), "expected points of shape [N, D]");
  write_npy(dir / "dim3.npy", torch::zeros({4, 3}));
  EXPECT_THAT_ERROR(read_points(dir / "dim3.npy", 2), "dimension 3; expected 2");
  write_npy(dir / "bool.npy", torch::zeros({4, 2}, torch::kBool));
  EXPECT_THAT_ERROR(read_points(dir / "bool.npy"), "booleans");
  torch::Tensor nan = torch::zeros({4, 2});
  nan[2][1] = NAN;
  write_npy(dir / "nan.npy", nan);
  EXPECT_THAT_ERROR(read_points(dir / "nan.npy"), "NaN or Inf values in 1 of 4 points (first at row 2)");
  write_file_atomic(dir / "junk.npy", "not numpy");
  EXPECT_THAT_ERROR(read_points(dir / "junk.npy"), "not a .npy file");
  std::string good = read_file(dir / "dim3.npy");
  write_file_atomic(dir / "cut.npy", good.substr(0, good.size() - 3));
  EXPECT_THAT_ERROR(read_points(dir / "cut.npy"), "truncated");
  EXPECT_THAT_ERROR(read_points(dir / "missing.npy"), "not found");
  // float16 is not a supported dtype.
  std::string f2 = read_file(dir / "dim3.npy");
  f2.replace(f2.find("<f4"), 3, "<f2");
  write_file_atomic(dir / "f2.npy", f2);
  EXPECT_THAT_ERROR(read_points(dir / "f2.npy"), "unsupported dtype '<f2'");
}

TEST(Safetensors, RoundTripWithMetadata) {
  TempDir dir;
  TensorFile f;
  f.tensors = {{"a", torch::randn({3, 4})}, {"b", torch::arange(5, torch::kInt64)}, {"c", torch::ones({2}, torch::kFloat64)}};
  f.metadata = {{"config", "[run]\nseed = 1\n"}, {"step", "7"}};
  write_safetensors(dir / "x.safetensors", f);
  TensorFile g = read_safetensors(dir / "x.safetensors");
  ASSERT_EQ(g.tensors.size(), 3u);
  for (const auto& [name, t] : f.tensors) EXPECT_TRUE(torch::equal(g.at(name), t)) << name;
  EXPECT_EQ(g.metadata.at("config"), "[run]\nseed = 1\n");
  EXPECT_EQ(g.metadata.at("step"), "7");
  // The layout safetensors readers expect: u64 header length, JSON header, 8-byte aligned data.
  std::string bytes = read_file(dir / "x.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(bytes.size(), 8 + n + 12 * 4 + 5 * 8 + 2 * 8);
}

namespace {

// A plain write: the corruption tests write thousands of files and need no fsync.
void write_plain(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST(Safetensors, EveryTruncationAndEverySingleBitFlipIsRefused) {
  // Eight files whose headers end in every possible amount of space padding (0-7 bytes), with seeded
  // contents; every truncation and every single-bit flip of every byte must be refused.
  TempDir dir;
  auto gen = make_generator(42);
  for (int variant = 0; variant < 8; ++variant) {
    TensorFile f;
    f.tensors = {{"w", torch::randn({4, 3}, gen)}, {"step", torch::tensor({3}, torch::kInt64)}};
    f.metadata = {{"config", "[run]\nseed = 1\n" + std::string(static_cast<size_t>(variant), '#')}};
    write_safetensors(dir / "ok.safetensors", f);
    std::string bytes = read_file(dir / "ok.safetensors");
    EXPECT_NO_THROW(read_safetensors(dir / "ok.safetensors"));
    for (size_t cut = 0; cut < bytes.size(); cut += variant == 0 ? 1 : 7) {
      write_plain(dir / "bad.safetensors", bytes.substr(0, cut));
      EXPECT_THROW(read_safetensors(dir / "bad.safetensors"), Error) << "truncated at " << cut;
    }
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
        write_plain(dir / "bad.safetensors", flipped);
        EXPECT_THROW(read_safetensors(dir / "bad.safetensors"), Error) << "variant " << variant << " byte " << i << " bit " << bit;
      }
    }
  }
}

TEST(Files, AtomicWriteLeavesNoPartialFile) {
  TempDir dir;
  write_file_atomic(dir / "keep.txt", "old");
  {
    AtomicFile file(dir / "keep.txt");
    file.write("new", 3);
    // Destroyed without commit: an interrupted writer.
  }
  EXPECT_EQ(read_file(dir / "keep.txt"), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}), 1);
  EXPECT_THAT_ERROR(write_file_atomic(dir / "no" / "such" / "dir.txt", "x"), "does not exist");
}

TEST(Jsonl, ResumeDropsLinesAfterTheCheckpoint) {
  TempDir dir;
  {
    JsonlWriter w(dir / "log.jsonl", false);
    for (int s = 1; s <= 5; ++s) w.write({{"step", s}});
  }
  {
    JsonlWriter w(dir / "log.jsonl", true, 3);
    ASSERT_EQ(w.kept().size(), 3u);
    for (int s = 1; s <= 3; ++s) EXPECT_EQ(w.kept()[s - 1].at("step").get<int>(), s);
    w.write({{"step", 4}});
  }
  EXPECT_TRUE(JsonlWriter(dir / "other.jsonl", false).kept().empty());
  EXPECT_EQ(read_file(dir / "log.jsonl"), "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4}\n");
}
