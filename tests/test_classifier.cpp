// metrics/classifier and metrics/image_metrics: Fréchet distance and KID against closed forms, image
// quality through a hand-made classifier, classifier files, and a short training run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/metrics/classifier.hpp"
#include "scorediff/metrics/image_metrics.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

// n draws of N(mean, cov): mean [F], cov [F, F] -> [n, F] float64.
torch::Tensor gaussian(int64_t n, const torch::Tensor& mean, const torch::Tensor& cov, at::Generator& gen) {
  torch::Tensor z = torch::randn({n, mean.size(0)}, gen, torch::kFloat64);
  return mean + torch::matmul(z, torch::linalg_cholesky(cov).t());
}

ClassifierOptions small_options() {
  ClassifierOptions o;
  o.channels = 4;
  o.features = 8;
  return o;
}

}  // namespace

TEST(ImageMetrics, FrechetIsZeroForIdenticalSetsAndSymmetric) {
  auto gen = make_generator(1);
  torch::Tensor mix = torch::randn({16, 16}, gen, torch::kFloat64);
  torch::Tensor a = torch::matmul(torch::randn({3000, 16}, gen, torch::kFloat64), mix);  // correlated features
  const double scale = a.var(0).sum().item<double>();
  EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-10 * scale);
  // Order of the rows does not matter.
  EXPECT_NEAR(frechet_distance(a, a.index_select(0, torch::randperm(3000, gen))), 0.0, 1e-10 * scale);
  torch::Tensor b = torch::matmul(torch::randn({2000, 16}, gen, torch::kFloat64), mix.t()) + 0.3;
  const double ab = frechet_distance(a, b), ba = frechet_distance(b, a);
  EXPECT_GT(ab, 1.0);
  EXPECT_NEAR(ab, ba, 1e-9 * ab);
  // float32 features give the same number to float rounding (computed in float64 inside).
  EXPECT_NEAR(frechet_distance(a.to(torch::kFloat32), b.to(torch::kFloat32)), ab, 1e-5 * ab);
}

TEST(ImageMetrics, FrechetInOneDimensionIsMeanAndStdGap) {
  // 1-D: (μ1 − μ2)² + σ1² + σ2² − 2σ1σ2 = (μ1 − μ2)² + (σ1 − σ2)², with the sets' own moments.
  auto gen = make_generator(2);
  torch::Tensor a = 1.5 + 2.0 * torch::randn({500, 1}, gen, torch::kFloat64);
  torch::Tensor b = -0.5 + 0.7 * torch::randn({800, 1}, gen, torch::kFloat64);
  const double dm = a.mean().item<double>() - b.mean().item<double>();
  const double ds = a.std().item<double>() - b.std().item<double>();  // N − 1 denominators
  EXPECT_NEAR(frechet_distance(a, b), dm * dm + ds * ds, 1e-10);
}

TEST(ImageMetrics, FrechetMatchesTheClosedFormOfTwoGaussians) {
  auto gen = make_generator(3);
  {
    // 2-D, covariances that do not commute. For a 2×2 matrix with non-negative eigenvalues λ1, λ2,
    // tr √M = √λ1 + √λ2 = √(tr M + 2√det M); with M = Σa Σb: tr((Σa Σb)^{1/2}) = √(tr(ΣaΣb) + 2√(det Σa det Σb)).
    torch::Tensor ma = torch::tensor({0.0, 0.0}, torch::kFloat64), mb = torch::tensor({1.0, -0.5}, torch::kFloat64);
    torch::Tensor ca = torch::tensor({{2.0, 0.8}, {0.8, 1.0}}, torch::kFloat64);
    torch::Tensor cb = torch::tensor({{0.5, -0.3}, {-0.3, 1.5}}, torch::kFloat64);
    const double cross = std::sqrt(torch::matmul(ca, cb).trace().item<double>() +
                                   2 * std::sqrt(ca.det().item<double>() * cb.det().item<double>()));
    const double exact = (ma - mb).pow(2).sum().item<double>() + ca.trace().item<double>() + cb.trace().item<double>() -
                         2 * cross;  // 2.2928
    // 200 000 draws each: over 20 other seeds the estimate was off by 0.0024 on average, sd 0.0095.
    torch::Tensor a = gaussian(200000, ma, ca, gen), b = gaussian(200000, mb, cb, gen);
    EXPECT_NEAR(frechet_distance(a, b), exact, 0.05);
  }
  {
    // 12-D, Σb = 4 Σa for a full random Σa: tr((Σa Σb)^{1/2}) = 2 tr Σa, so FD = ‖μa − μb‖² + tr Σa.
    torch::Tensor root = torch::randn({12, 12}, gen, torch::kFloat64);
    torch::Tensor ca = torch::matmul(root, root.t()) / 12 + 0.1 * torch::eye(12, torch::kFloat64);
    torch::Tensor ma = torch::zeros({12}, torch::kFloat64), mb = torch::full({12}, 0.25, torch::kFloat64);
    const double exact = 12 * 0.0625 + ca.trace().item<double>();  // 15.470
    // 100 000 draws each: over 20 other seeds off by 0.0095 on average, sd 0.057; 0.3 is about 5 sd.
    torch::Tensor a = gaussian(100000, ma, ca, gen), b = gaussian(100000, mb, 4 * ca, gen);
    EXPECT_NEAR(frechet_distance(a, b), exact, 0.3);
  }
}

TEST(ImageMetrics, KidIsTheUnbiasedPairSum) {
  // One subset holding every row: the estimate is the pair sums over i ≠ j, written out here.
  auto gen = make_generator(4);
  torch::Tensor a = torch::randn({5, 3}, gen, torch::kFloat64), b = torch::randn({5, 3}, gen, torch::kFloat64) + 0.2;
  auto k = [](const torch::Tensor& x, const torch::Tensor& y) {
    return std::pow(torch::dot(x, y).item<double>() / 3.0 + 1.0, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      if (i != j) xx += k(a[i], a[j]), yy += k(b[i], b[j]);
      xy += k(a[i], b[j]);
    }
  const double expected = xx / 20 + yy / 20 - 2 * xy / 25;
  KidResult r = kernel_distance(a, b, 1, 5, gen);
  EXPECT_NEAR(r.mean, expected, 1e-12 * std::abs(expected));
  EXPECT_EQ(r.se, 0.0);
}

TEST(ImageMetrics, KidNearZeroForOneDistributionAndTheClosedFormForAShift) {
  auto gen = make_generator(5);
  // Same distribution, two draws: unbiased, so within 3 standard errors of 0 (over 20 other seeds,
  // mean/SE had sd 1.2 and never exceeded 2.9: the subsets share rows, so the SE is a little small).
  torch::Tensor a = torch::randn({20000, 16}, gen), b = torch::randn({20000, 16}, gen);
  KidResult same = kernel_distance(a, b, 50, 400, gen);
  EXPECT_GT(same.se, 0.0);
  EXPECT_LT(std::abs(same.mean), 3 * same.se) << same.mean << " ± " << same.se;
  KidResult shifted = kernel_distance(a, b + 0.3, 50, 400, gen);
  EXPECT_GT(shifted.mean, 10 * shifted.se);
  EXPECT_GT(shifted.mean, 20 * std::abs(same.mean));

  // 1-D: (xy + 1)³ = Σ_k C(3,k) x^k y^k, so MMD² = Σ_k C(3,k) (E x^k − E y^k)². N(0,1) against
  // N(0.5, 1): raw moments (0, 1, 0) and (0.5, 1.25, 0.5³ + 3·0.5) give 3·0.25 + 3·0.0625 + 1.625² = 3.578125.
  torch::Tensor x = torch::randn({40000, 1}, gen), y = torch::randn({40000, 1}, gen) + 0.5;
  // SE ≈ 0.12 here; over 20 other seeds the error had sd 0.16 and at most 0.41 (heavy x⁶ tails).
  KidResult r = kernel_distance(x, y, 100, 400, gen);
  EXPECT_NEAR(r.mean, 3.578125, 4 * r.se + 0.02) << r.mean << " ± " << r.se;
}

TEST(ImageMetrics, ClassFractionsMatchAHandMadeClassifier) {
  // A classifier wired by hand to read brightness: channel 0 of every conv (and batch norm) passes the pixel through
  // (centre tap 1; conv1's bias 1 keeps the normalised 2x − 1 positive), feature 0 averages it (= 2x for
  // a uniform image), and logit_c = 10 (2c·g − c²) with g = 4.5 · feature = 9x, i.e. −10 (g − c)² + 10 g²:
  // the class is the nearest integer to 9x, confidently (softmax ≥ 0.9999) at x = c/9 and not (0.88)
  // at x = (c + 0.4)/9.
  auto gen = make_generator(6);
  Classifier classifier(std::vector<int64_t>{1, 8, 8}, 10, small_options(), gen);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : classifier->parameters()) p.zero_();
    auto params = classifier->named_parameters();
    for (const char* conv : {"conv1", "conv2", "conv3", "conv4"}) params[std::string(conv) + ".weight"][0][0][1][1] = 1.0;
    // Batch norm at its initial running statistics (mean 0, variance 1): the identity up to 1/√(1 + 1e-5).
    for (const char* bn : {"bn1", "bn2", "bn3", "bn4"}) params[std::string(bn) + ".weight"].fill_(1.0);
    params["conv1.bias"][0] = 1.0;
    params["fc1.weight"][0].narrow(0, 0, 4).fill_(0.25);  // [8 channels, 2, 2] flattened: channel 0 first
    for (int64_t c = 0; c < 10; ++c) {
      params["fc2.weight"][c][0] = 10.0 * 2 * c * 4.5;
      params["fc2.bias"][c] = -10.0 * c * c;
    }
  }
  const std::vector<std::pair<int64_t, int64_t>> counts = {{0, 50}, {3, 120}, {7, 30}, {9, 400}};
  std::vector<torch::Tensor> images;
  for (auto [c, n] : counts) {
    const int64_t unsure = c == 3 ? 60 : 0;  // brightness (c + 0.4)/9: still class c, not confident
    images.push_back(torch::full({n - unsure, 1, 8, 8}, static_cast<double>(c) / 9));
    images.push_back(torch::full({unsure, 1, 8, 8}, (static_cast<double>(c) + 0.4) / 9));
  }
  torch::Tensor samples = torch::cat(images);  // 600 images: crosses the 500-image evaluation batch
  torch::Tensor reference = torch::rand({300, 1, 8, 8}, gen);
  ImageQuality q = image_quality(classifier, samples, reference, 10, 0.9, 0);
  ASSERT_EQ(q.class_fractions.size(), 10u);
  double total = 0;
  for (double f : q.class_fractions) total += f;
  EXPECT_NEAR(total, 1.0, 1e-12);
  const std::vector<double> expected = {50.0 / 600, 0, 0, 120.0 / 600, 0, 0, 0, 30.0 / 600, 0, 400.0 / 600};
  for (int64_t c = 0; c < 10; ++c) EXPECT_NEAR(q.class_fractions[c], expected[c], 1e-12) << "class " << c;
  EXPECT_NEAR(q.confident_fraction, 540.0 / 600, 1e-12);
  // Among the 540 confident images class 3 has 60, not 120.
  const std::vector<double> confident = {50.0 / 540, 0, 0, 60.0 / 540, 0, 0, 0, 30.0 / 540, 0, 400.0 / 540};
  ASSERT_EQ(q.confident_class_fractions.size(), 10u);
  for (int64_t c = 0; c < 10; ++c) EXPECT_NEAR(q.confident_class_fractions[c], confident[c], 1e-12) << "class " << c;
  EXPECT_EQ(q.samples, 600);
  EXPECT_EQ(q.non_finite, 0);
  EXPECT_GT(q.fd_cls, 0.0);
  auto json = q.to_json();
  for (const char* key :
       {"fd_cls", "kid_cls", "kid_cls_se", "class_fractions", "confident_fraction", "confident_class_fractions"})
    EXPECT_TRUE(json.contains(key)) << key;

  // The same set against itself: no distance; NaN samples are counted and measured as black.
  ImageQuality self = image_quality(classifier, samples, samples, 10, 0.9, 1);
  EXPECT_NEAR(self.fd_cls, 0.0, 1e-9);
  samples[0][0][0][0] = NAN;
  EXPECT_EQ(image_quality(classifier, samples, reference, 10, 0.9, 0).non_finite, 1);
  // No confident sample at all: the confident shares are all 0, not NaN.
  ImageQuality unsure = image_quality(classifier, torch::full({20, 1, 8, 8}, 3.4 / 9), reference, 10, 0.9, 0);
  EXPECT_EQ(unsure.confident_fraction, 0.0);
  EXPECT_EQ(unsure.confident_class_fractions, std::vector<double>(10, 0.0));
  EXPECT_THAT_ERROR(image_quality(classifier, samples, reference, 7, 0.9, 0), "classes");
}

// The report merges the samples' figures with the held-out images' under a _real suffix; every value
// must survive the merge (it once iterated a destroyed temporary, which ran away with the memory).
TEST(ImageMetrics, EvaluationJsonKeepsBothSetsUnderTheirNames) {
  ImageEvaluation e;
  e.samples.fd_cls = 12.5;
  e.samples.class_fractions = {0.25, 0.75};
  e.samples.confident_fraction = 0.5;
  e.samples.samples = 64;
  e.real.fd_cls = 3.25;
  e.real.class_fractions = {0.5, 0.5};
  e.real.confident_fraction = 0.875;
  e.real.samples = 64;
  e.classifier = "runs/c.safetensors";
  const nlohmann::json json = e.to_json();
  EXPECT_EQ(json.at("fd_cls").get<double>(), 12.5);
  EXPECT_EQ(json.at("fd_cls_real").get<double>(), 3.25);
  EXPECT_EQ(json.at("class_fractions_real").get<std::vector<double>>(), (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(json.at("confident_fraction_real").get<double>(), 0.875);
  EXPECT_EQ(json.at("classifier").get<std::string>(), "runs/c.safetensors");
  EXPECT_EQ(json.size(), 2 * e.samples.to_json().size() + 1);
}

TEST(Classifier, InitialisationIsSeededAndAnyImageSizeWorks) {
  for (std::vector<int64_t> shape : {std::vector<int64_t>{1, 14, 14}, {1, 28, 28}, {3, 40, 36}, {1, 5, 6}}) {
    auto g1 = make_generator(7), g2 = make_generator(7), g3 = make_generator(8);
    Classifier a(shape, 10, small_options(), g1), b(shape, 10, small_options(), g2), c(shape, 10, small_options(), g3);
    torch::Tensor x = torch::rand({3, shape[0], shape[1], shape[2]});
    EXPECT_TRUE(torch::equal(a->logits(x), b->logits(x)));
    EXPECT_FALSE(torch::equal(a->logits(x), c->logits(x)));
    EXPECT_EQ(a->features(x).sizes(), (std::vector<int64_t>{3, 8}));
    EXPECT_EQ(a->logits(x).sizes(), (std::vector<int64_t>{3, 10}));
  }
  auto gen = make_generator(9);
  Classifier classifier(std::vector<int64_t>{1, 14, 14}, 10, small_options(), gen);
  EXPECT_THAT_ERROR(classifier->logits(torch::rand({2, 1, 28, 28})), "1x14x14");
}

TEST(Classifier, RandomShiftTranslatesEachImageWithReplicatedEdges) {
  auto gen = make_generator(12);
  torch::Tensor x = torch::rand({40, 2, 6, 5}, gen);
  torch::Tensor y = random_shift(x, 2, gen);
  // Reference: the image padded by replicating its edges, cropped at offset (dy, dx) in [0, 4]².
  torch::Tensor padded = torch::nn::functional::pad(
      x, torch::nn::functional::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReplicate));
  std::set<int64_t> seen;
  for (int64_t i = 0; i < 40; ++i) {
    int64_t found = -1;
    for (int64_t dy = 0; dy <= 4; ++dy)
      for (int64_t dx = 0; dx <= 4; ++dx)
        if (torch::equal(y[i], padded[i].narrow(1, dy, 6).narrow(2, dx, 5))) found = 5 * dy + dx;
    ASSERT_GE(found, 0) << "image " << i << " is not a shifted copy";
    seen.insert(found);
  }
  EXPECT_GE(seen.size(), 12u);  // 40 draws from 25 offsets: far more than a constant shift
  EXPECT_TRUE(torch::equal(random_shift(x, 0, gen), x));
}

TEST(Classifier, SaveLoadRoundTripAndDatasetCheck) {
  TempDir dir;
  auto gen = make_generator(10);
  Classifier classifier(std::vector<int64_t>{1, 14, 14}, 10, small_options(), gen);
  classifier->train();
  classifier->logits(torch::rand({16, 1, 14, 14}, gen));  // moves batch norm's running statistics off their start
  save_classifier(dir / "c.safetensors", classifier, "mnist", 0.875);
  LoadedClassifier loaded = load_classifier(dir / "c.safetensors");
  torch::Tensor x = torch::rand({7, 1, 14, 14}, gen);
  EXPECT_TRUE(torch::equal(classify(classifier, x), classify(loaded.classifier, x)));
  EXPECT_EQ(loaded.dataset, "mnist");
  EXPECT_DOUBLE_EQ(loaded.test_accuracy, 0.875);
  EXPECT_EQ(loaded.classifier->shape(), (std::vector<int64_t>{1, 14, 14}));
  EXPECT_EQ(loaded.classifier->options().channels, 4);

  check_classifier_matches(loaded, "mnist", {1, 14, 14});
  EXPECT_THAT_ERROR(check_classifier_matches(loaded, "fashion-mnist", {1, 14, 14}),
                    "c.safetensors' was trained on mnist 1x14x14, not fashion-mnist 1x14x14");
  EXPECT_THAT_ERROR(check_classifier_matches(loaded, "mnist", {1, 28, 28}), "not mnist 1x28x28");
}

TEST(Classifier, LoadRefusesCorruptAndForeignFiles) {
  TempDir dir;
  auto gen = make_generator(11);
  Classifier classifier(std::vector<int64_t>{1, 8, 8}, 10, small_options(), gen);
  save_classifier(dir / "c.safetensors", classifier, "fashion-mnist", 0.9);
  std::string bytes = read_file(dir / "c.safetensors");
  bytes[bytes.size() - 100] ^= 0x5a;  // inside the tensor data
  write_file_atomic(dir / "flipped.safetensors", bytes);
  EXPECT_THAT_ERROR(load_classifier(dir / "flipped.safetensors"), "corrupt");
  write_file_atomic(dir / "short.safetensors", bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT_ERROR(load_classifier(dir / "short.safetensors"), "corrupt");
  EXPECT_THAT_ERROR(load_classifier(dir / "missing.safetensors"), "missing.safetensors");

  TensorFile other;
  other.tensors.emplace_back("w", torch::zeros({2}));
  other.metadata["format"] = "scorediff-checkpoint/1";
  write_safetensors(dir / "model.safetensors", other);
  EXPECT_THAT_ERROR(load_classifier(dir / "model.safetensors"), "is not a scorediff classifier");
}

TEST(Classifier, TrainingRefusesUnlabelledDataAndBadOptions) {
  ImageData data;
  data.name = "png-folder";
  data.train = {torch::rand({20, 1, 8, 8}), torch::full({20}, -1, torch::kInt64)};
  data.test = data.train;
  EXPECT_THAT_ERROR(train_classifier(data, small_options(), 0, true), "no class labels");
  data.classes = 10;
  ClassifierOptions bad = small_options();
  bad.epochs = -1;
  EXPECT_THAT_ERROR(train_classifier(data, bad, 0, true), "epochs must be >= 1 (or 0 for automatic)");
  // Automatic epochs: enough to show min_images images, at least 4.
  EXPECT_EQ(classifier_epochs(ClassifierOptions{}, 60000), 4);
  EXPECT_EQ(classifier_epochs(ClassifierOptions{}, 9000), 14);
  bad.epochs = 3;
  EXPECT_EQ(classifier_epochs(bad, 9000), 3);
}

TEST(Classifier, ShortTrainingOnFashionMnistBeatsChance) {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  // scripts/setup.sh installs the dataset; without it read_idx fails naming the missing file.
  // The 10 000 t10k images at 14×14: 2 000 to train, 1 000 others to test (chance: 10 %).
  ImageSet all = resize_images(read_idx(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz"), 14);
  ImageData data;
  data.name = "fashion-mnist";
  data.classes = 10;
  data.train = {all.images.narrow(0, 0, 2000), all.labels.narrow(0, 0, 2000)};
  data.test = {all.images.narrow(0, 5000, 1000), all.labels.narrow(0, 5000, 1000)};
  ClassifierOptions options;  // the defaults, but more steps for the small set
  options.epochs = 5;
  options.batch = 64;
  TrainedClassifier a = train_classifier(data, options, 3, true);
  RecordProperty("test_accuracy", std::to_string(a.test_accuracy));
  EXPECT_GT(a.test_accuracy, 0.7);  // measured 0.814; chance is 0.1
  // The reported accuracy is the fraction of test labels the classifier's arg-max gets right, counted here
  // independently of classifier_accuracy.
  torch::Tensor predicted = classify(a.classifier, data.test.images).argmax(1);
  const double counted = (predicted == data.test.labels.to(predicted.dtype())).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(counted, a.test_accuracy, 1e-12);
  // Same seed, same classifier (a shorter run, with every random draw: batches, shifts, dropout).
  data.train = {data.train.images.narrow(0, 0, 300), data.train.labels.narrow(0, 0, 300)};
  options.epochs = 1;
  options.shift = 2;
  TrainedClassifier b = train_classifier(data, options, 4, true), c = train_classifier(data, options, 4, true);
  EXPECT_TRUE(torch::equal(classify(b.classifier, data.test.images), classify(c.classifier, data.test.images)));
}

TEST(Classifier, CliRefusesBadInputWithOneLine) {
  TempDir dir;
  for (const char* args : {"train-classifier --data nope -q", "train-classifier --data mnist --epochs 0 -q",
                           "train-classifier --data fashion-mnist --path /nonexistent -q"}) {
    CliResult r = run_cli(args, dir.path());
    EXPECT_EQ(r.status, 2) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args;
  }
}
