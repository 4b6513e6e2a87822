// cli: class-conditional sampling, encoding and editing from the command line, and their bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "scorediff/core/rng.hpp"

#include "scorediff/io/npy.hpp"
#include "scorediff/io/png.hpp"
#include "test_util.hpp"

using namespace scorediff;
namespace fs = std::filesystem;

namespace {

// One directory per suite, holding a small unconditional checkpoint "run" for the refusals.
class CliEditing : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    CliResult r = run_cli("train -q --no-sample --out run --set train.steps=20 --set data.n_train=200 --set model.width=16",
                          dir_->path());
    ASSERT_EQ(r.status, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static void expect_bad_input(const std::string& args, const std::string& fragment) {
    scorediff::expect_bad_input(args, dir_->path(), fragment);
  }
  static fs::path path(const std::string& name) { return dir_->path() / name; }

  static TempDir* dir_;
};

TempDir* CliEditing::dir_ = nullptr;

}  // namespace

TEST_F(CliEditing, ConditionalSamplingRefusesClassesThatDoNotFitAndWarnsOfAnUntrainedNullClass) {
  // A class-conditional run without label dropout: its null class was never trained.
  CliResult r = run_cli("train -q --out cond -c conditional-2d --set train.steps=20 --set data.n_train=200 "
                        "--set model.width=16 --set train.label_dropout=0 --set sample.n=16 --set sample.steps_per_level=2",
                        dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  CliResult sampled = run_cli("sample -q --ckpt cond/last.safetensors --class 2,5 -n 10 --set sample.steps_per_level=2 "
                              "-o cond.npy",
                              dir_->path());
  ASSERT_EQ(sampled.status, 0) << sampled.err;
  EXPECT_EQ(sampled.err, "");
  const torch::Tensor labels = read_npy(path("cond.labels.npy"));
  EXPECT_TRUE(torch::equal(labels, torch::tensor({2, 2, 2, 2, 2, 5, 5, 5, 5, 5}, torch::kInt64)));
  CliResult guided = run_cli("sample -q --ckpt cond/last.safetensors --cfg 2 -n 8 --set sample.steps_per_level=2 "
                             "-o guided.npy",
                             dir_->path());
  ASSERT_EQ(guided.status, 0) << guided.err;
  EXPECT_NE(guided.err.find("warning: sample.cfg = 2 uses the null class, which this model never saw"), std::string::npos)
      << guided.err;

  expect_bad_input("sample --ckpt cond/last.safetensors --class 8", "sample.class: class 8 is outside [0, 8)");
  expect_bad_input("sample --ckpt cond/last.safetensors --class 1,x", "sample.class = '1,x': expected auto, all, none");
  expect_bad_input("sample --ckpt cond/last.safetensors --class none --cfg 1", "it needs a class-conditional model");
  expect_bad_input("sample --ckpt run/last.safetensors --class 3", "sample.class = '3' needs a class-conditional model");
  expect_bad_input("sample --ckpt run/last.safetensors --cfg 2", "sample.cfg = 2 is classifier-free guidance");
  expect_bad_input("sample --ckpt run/last.safetensors --cfg -1", "--cfg");
  expect_bad_input("train --dry-run --set train.label_dropout=0.1", "train.label_dropout = 0.1 needs a class-conditional model");
  expect_bad_input("train -q --out nolabels --set train.steps=1 --set model.classes=3",
                   "model.classes = 3 needs labelled data; dataset 'swiss-roll' has no labels");
  expect_bad_input("train -q --out labels3 -c conditional-2d --set train.steps=1 --set model.classes=3",
                   "labels in [0, 7] do not fit model.classes = 3");
  expect_bad_input("train -q --out energy -c conditional-2d --set train.steps=1 --set model.name=energy-mlp",
                   "energy models have no class conditioning");
}

TEST_F(CliEditing, EncodeThenDecodeReturnsThePointsAndSdeditStaysNearThemForSmallStarts) {
  // A trained Swiss-roll model: samples of it, carried to noise by the probability-flow ODE and back.
  CliResult r = run_cli("train -q --no-sample --out roll --set train.steps=3000", dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_cli("sample -q --ckpt roll/last.safetensors -n 300 --sampler ode-rk45 -o roll.npy", dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_cli("encode -q --ckpt roll/last.safetensors -i roll.npy -o latents.npy", dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_cli("sample -q --ckpt roll/last.safetensors --init latents.npy --sampler ode-rk45 --set sample.denoise=false "
              "-o decoded.npy",
              dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  const torch::Tensor input = read_npy(path("roll.npy")), latents = read_npy(path("latents.npy"));
  const torch::Tensor decoded = read_npy(path("decoded.npy"));
  const double rms = (decoded - input).pow(2).mean().sqrt().item<double>();
  std::printf("Swiss roll encode -> decode (ode-rk45): RMS %.3g\n", rms);
  EXPECT_LT(rms, 1e-3);
  EXPECT_GT(latents.std().item<double>(), 3.0);  // the latents are noise at σ_max = 5, not the data
  // SDEdit: a small start keeps each point near its input; σ_max forgets it.
  auto distance = [&](const std::string& start) {
    // Another seed than the one that drew roll.npy: from σ_max the same seed would retrace its own noise.
    CliResult e = run_cli("sample -q --seed 7 --ckpt roll/last.safetensors --init roll.npy --sigma-start " + start +
                              " --sampler ode-rk45 -o edited.npy",
                          dir_->path());
    EXPECT_EQ(e.status, 0) << e.err;
    return (read_npy(path("edited.npy")) - input).pow(2).sum(1).sqrt().mean().item<double>();
  };
  const double near = distance("0.05"), far = distance("5");
  EXPECT_LT(near, 0.1);
  EXPECT_GT(far, 5 * near);

  expect_bad_input("sample --ckpt roll/last.safetensors --sigma-start 0.5", "edit given points: pass them");
  expect_bad_input("sample --ckpt roll/last.safetensors --init roll.npy --sigma-start 50",
                   "sample.sigma_start = 50 is outside the process' noise levels");
  expect_bad_input("sample --ckpt roll/last.safetensors --init roll.npy -n 5", "-n 5 and --init 'roll.npy' of 300 points");
  expect_bad_input("sample --ckpt roll/last.safetensors --init missing.npy", "missing.npy");
  ASSERT_EQ(run_command("/usr/bin/python3 -c \"import numpy; numpy.save('three.npy', numpy.zeros((4, 3), 'float32'))\"",
                        dir_->path())
                .status,
            0);
  expect_bad_input("sample --ckpt roll/last.safetensors --init three.npy", "has points of dimension 3, the model 2");
  expect_bad_input("encode --ckpt roll/last.safetensors -i three.npy", "has points of dimension 3, the model 2");
}

TEST_F(CliEditing, ClassifierGuidanceTrainsANoisyClassifierOfTheRunAndRefusesOneOfAnotherProcess) {
  // An unconditional MNIST model at 8×8 pixels, a few steps: guided towards class 3 by its noisy classifier.
  const std::string mnist8 = "-c mnist --set data.image_size=8 --set model.channels=8 --set model.attention=[4] --set train.steps=4 ";
  CliResult r = run_cli("train -q --no-sample --out mn " + mnist8, dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_cli("train-classifier -q --noisy --ckpt mn/last.safetensors --epochs 1", dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("mn/noisy-classifier.safetensors"), std::string::npos) << r.out;
  r = run_cli("sample -q --ckpt mn/last.safetensors --set sample.classifier=mn/noisy-classifier.safetensors "
              "--set sample.classifier_scale=2 --class 3 -n 4 --set sample.nfe=3 -o guided.npy",
              dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(torch::equal(read_npy(path("guided.labels.npy")), torch::full({4}, 3, torch::kInt64)));
  EXPECT_TRUE(torch::isfinite(read_npy(path("guided.npy"))).all().item<bool>());

  // The same data under another process, a classifier of clean images, and the options without their partners.
  r = run_cli("train -q --no-sample --out mn40 " + mnist8 + "--set process.sigma_max=40", dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  expect_bad_input("sample --ckpt mn40/last.safetensors --set sample.classifier=mn/noisy-classifier.safetensors --class 3",
                   "was trained for process.sigma_max = 80.0; this run has process.sigma_max = 40.0");
  r = run_cli("train-classifier -q --data mnist --image-size 8 --epochs 1 -o clean8.safetensors", dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  expect_bad_input("sample --ckpt mn/last.safetensors --set sample.classifier=clean8.safetensors --class 3",
                   "is a classifier of clean images");
  expect_bad_input("sample --ckpt mn/last.safetensors --set sample.classifier=nope.safetensors --class 3",
                   "sample.classifier: 'nope.safetensors' does not exist");
  expect_bad_input("sample --ckpt mn/last.safetensors --set sample.classifier=mn/noisy-classifier.safetensors --class 10",
                   "class 10 is outside [0, 10)");
  expect_bad_input("sample --ckpt mn/last.safetensors --set sample.classifier_scale=2", "needs sample.classifier");
  expect_bad_input("train-classifier --noisy", "--noisy needs --ckpt");

  // The same model edits a folder of PNGs (16×16, resized to the run's 8×8): from σ = 0.01 it gives them back.
  fs::create_directories(path("digits"));
  auto gen = make_generator(5);
  const torch::Tensor images = torch::rand({3, 1, 16, 16}, gen);
  for (int i = 0; i < 3; ++i) write_png(path("digits") / fmt::format("{}.png", i), images[i]);
  r = run_cli("sample -q --ckpt mn/last.safetensors --init digits --sigma-start 0.01 --set sample.nfe=3 -o edited.npy",
              dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  const torch::Tensor expected = torch::nn::functional::avg_pool2d(torch::round(images * 255) / 255,
                                                                   torch::nn::functional::AvgPool2dFuncOptions(2))
                                     .flatten(1) * 2 - 1;
  EXPECT_LT((read_npy(path("edited.npy")) - expected).abs().max().item<double>(), 0.1);
  expect_bad_input("sample --ckpt run/last.safetensors --init digits --sigma-start 0.01", "this model's data 'swiss-roll' are not images");
  expect_bad_input("train-classifier --noisy --ckpt mn/last.safetensors --data mnist", "leave out --data");
}
