// Image datasets behind the dataset registry: Fashion-MNIST as points of the model's pixel range, and a
// folder of PNGs in [0, 1].
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/core/schema.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/data/toy.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/png.hpp"
#include "test_util.hpp"

using namespace scorediff;

TEST(ImagesDataset, FashionMnistPointsFromTheRegistry) {
  DataOptions options;
  Schema schema;
  bind(schema, options);
  schema.set("data.name=fashion-mnist");
  schema.set("data.image_size=14");
  schema.set("data.pixels=minus-one-one");
  schema.check();
  auto dataset = make_dataset(options);
  EXPECT_EQ(dataset->dim(), 196);
  EXPECT_EQ(dataset->image_shape(), (std::vector<int64_t>{1, 14, 14}));
  EXPECT_EQ(dataset->pixel_range(), "minus-one-one");
  EXPECT_EQ(dataset->mixture(), nullptr);
  const ImageData* data = dataset->images();
  ASSERT_NE(data, nullptr);
  ASSERT_EQ(data->train.size(), 60000);

  auto gen = make_generator(5), again = make_generator(5), other = make_generator(6);
  torch::Tensor x = dataset->sample(1000, gen);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{1000, 196}));
  EXPECT_EQ(x.scalar_type(), torch::kFloat32);
  EXPECT_GE(x.min().item<float>(), -1.0f);
  EXPECT_LE(x.max().item<float>(), 1.0f);
  EXPECT_LT(x.min().item<float>(), -0.99f);  // really [-1, 1], not [0, 1]
  EXPECT_TRUE(torch::equal(x, dataset->sample(1000, again)));
  EXPECT_FALSE(torch::equal(x, dataset->sample(1000, other)));
  // Exactly the training images that randperm(N, gen) picks first, mapped to [-1, 1].
  auto pick = make_generator(5);
  torch::Tensor index = torch::randperm(60000, pick, torch::kInt64).slice(0, 0, 1000);
  EXPECT_TRUE(torch::equal(x, 2 * data->train.images.index_select(0, index).view({1000, 196}) - 1));
  // n >= N: every training image, in stored order.
  EXPECT_TRUE(torch::equal(dataset->sample(60000, gen), 2 * data->train.images.view({60000, 196}) - 1));

  schema.set("data.pixels=0-255");
  EXPECT_THAT_ERROR(schema.check(), "zero-one");
  schema.set("data.pixels=zero-one");
  schema.set("data.image_size=-1");
  EXPECT_THAT_ERROR(schema.check(), "data.image_size");
  DataOptions mnist;
  mnist.name = "mnist";
  resolve(mnist);  // not a mixture: nothing to fill, nothing refused
  mnist.weights = {1.0};
  EXPECT_THAT_ERROR(resolve(mnist), "apply only to mixture datasets");
}

TEST(ImagesDataset, PngFolderInZeroOne) {
  TempDir dir;
  for (int k = 0; k < 3; ++k) write_png(dir / fmt::format("{}.png", k), test_image(3, 2, 5, k));
  DataOptions options;
  options.name = "png-folder";
  options.path = dir.path().string();
  options.pixels = "zero-one";
  auto dataset = make_dataset(options);
  EXPECT_EQ(dataset->dim(), 30);
  auto gen = make_generator(1);
  torch::Tensor all = dataset->sample(10, gen);
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{3, 30}));
  for (int k = 0; k < 3; ++k) EXPECT_LT((all[k] - test_image(3, 2, 5, k).view({30})).abs().max().item<double>(), 1e-6) << k;
  options.pixels = "0-255";
  EXPECT_THAT_ERROR(make_dataset(options), "unknown pixel range");
}
