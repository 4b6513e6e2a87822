// The public API (scorediff/scorediff.hpp) against the command-line program and the pipeline underneath it.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/scorediff.hpp"
#include "test_util.hpp"

namespace scorediff {
namespace {

const std::vector<std::string> kTinyRun = {"train.steps=300", "train.log_every=100", "train.ckpt_every=0",
                                           "run.threads=1"};

// One small Swiss-roll run shared by the tests of this file.
class Api : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    TrainRequest request;
    request.sets = kTinyRun;
    request.out = (*dir_ / "run").string();
    result_ = train("swiss-roll", request);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string checkpoint() { return result_.checkpoint; }

  static TempDir* dir_;
  static TrainResult result_;
};
TempDir* Api::dir_ = nullptr;
TrainResult Api::result_;

Array array_of(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat32).contiguous();
  return {c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())};
}

TEST_F(Api, TrainsToTheEndAndSamplesWhatTheCommandSamplesBitForBit) {
  EXPECT_FALSE(result_.cancelled);
  EXPECT_EQ(result_.steps, 300);
  EXPECT_TRUE(std::isfinite(result_.final_loss));
  const Model model = Model::load(checkpoint());
  EXPECT_EQ(model.step(), 300);
  EXPECT_EQ(model.sample_shape(), std::vector<int64_t>{2});

  const CliResult cli = run_cli("sample --ckpt " + checkpoint() + " --seed 5 -n 300 -q -o " +
                                (*dir_ / "cli.npy").string());
  ASSERT_EQ(cli.status, 0) << cli.err;
  const torch::Tensor expected = read_npy(*dir_ / "cli.npy").to(torch::kFloat32);
  SampleRequest request;
  request.seed = 5;
  request.n = 300;
  const Array samples = model.sample(request);
  ASSERT_EQ(samples.shape, (std::vector<int64_t>{300, 2}));
  EXPECT_EQ(samples.data, array_of(expected).data);  // bit for bit
  request.seed = 6;
  EXPECT_NE(model.sample(request).data, samples.data);
}

TEST_F(Api, ScoreAndDenoiserAreTheModelsAndTweediesAtEachRowsNoiseLevel) {
  const Model model = Model::load(checkpoint());
  at::Generator gen = make_generator(11);
  const torch::Tensor x = torch::randn({5, 2}, gen, torch::kFloat32);
  const std::vector<double> sigma{0.05, 0.3, 1.0, 2.5, 5.0};
  const Array s = model.score(array_of(x), sigma);
  ASSERT_EQ(s.shape, (std::vector<int64_t>{5, 2}));

  // The pipeline's own score function of the same EMA weights, at t(σ) of the run's process.
  LoadedModel loaded = load_trained(checkpoint(), true);
  const NoiseProcess& process = *loaded.prepared.process;
  std::vector<double> times;
  for (double s : sigma) times.push_back(process.t_at_sigma(s));
  const torch::Tensor t = torch::tensor(times, torch::kFloat64).to(torch::kFloat32);
  torch::Tensor direct;
  {
    torch::InferenceMode guard;
    direct = model_score_fn(loaded.model, loaded.prepared.process)(x, t);
  }
  EXPECT_TRUE(torch::allclose(torch::from_blob(const_cast<float*>(s.data.data()), {5, 2}), direct, 1e-6, 1e-6));
  // Each row at its own σ: a single σ for every row gives the first row's value (up to the rounding of a
  // batch with other noise levels) in the first row only.
  const Array one = model.score(array_of(x), {0.05});
  EXPECT_NEAR(one.data[0], s.data[0], 1e-5 * std::abs(s.data[0]) + 1e-6);
  EXPECT_GT(std::abs(one.data[2] - s.data[2]), 1e-3 * std::abs(s.data[2]));

  // Tweedie: D = (x + std² s)/m.
  const Array d = model.denoise(array_of(x), sigma);
  const torch::Tensor m = process.mean_coef(t).unsqueeze(1), sd = process.std(t).unsqueeze(1);
  const torch::Tensor tweedie = (x + sd * sd * direct) / m;
  EXPECT_TRUE(torch::allclose(torch::from_blob(const_cast<float*>(d.data.data()), {5, 2}), tweedie, 1e-5, 1e-5));
}

TEST_F(Api, LogLikelihoodIsTheCommands) {
  at::Generator gen = make_generator(12);
  const torch::Tensor x = torch::randn({40, 2}, gen, torch::kFloat32) * 2;
  write_npy(*dir_ / "points.npy", x);
  const CliResult cli =
      run_cli("likelihood --ckpt " + checkpoint() + " --data " + (*dir_ / "points.npy").string() + " -q");
  ASSERT_EQ(cli.status, 0) << cli.err;
  const double expected = nlohmann::json::parse(cli.out).at("nll").get<double>();
  const std::vector<double> logp = Model::load(checkpoint()).log_likelihood(array_of(x));
  ASSERT_EQ(logp.size(), 40u);
  double nll = 0;
  for (double v : logp) nll -= v / 40;
  EXPECT_NEAR(nll, expected, 1e-9 * std::abs(expected));
  LikelihoodRequest request;
  request.divergence = "exact-ish";
  EXPECT_THAT_ERROR(Model::load(checkpoint()).log_likelihood(array_of(x), request), "exact or hutchinson");
}

TEST_F(Api, WeightsAreTheCheckpointsEmaTensors) {
  const Model model = Model::load(checkpoint());
  const std::map<std::string, Array> weights = model.weights();
  LoadedModel loaded = load_trained(checkpoint(), true);
  int64_t compared = 0;
  for (const auto& item : loaded.model->named_parameters(true)) {
    ASSERT_EQ(weights.count(item.key()), 1u) << item.key();
    EXPECT_EQ(weights.at(item.key()).data, array_of(item.value()).data) << item.key();
    ++compared;
  }
  EXPECT_GT(compared, 2);
  // The raw weights differ from the EMA in the trained parameters (the fixed Fourier frequencies are shared).
  const std::map<std::string, Array> raw = Model::load(checkpoint(), LoadOptions{false, 0}).weights();
  int64_t differing = 0;
  for (const auto& [name, array] : raw) differing += array.data != weights.at(name).data;
  EXPECT_GT(differing, 2);
}

TEST_F(Api, ACancelledRunResumesToTheUninterruptedOne) {
  TrainRequest request;
  request.sets = kTinyRun;
  request.out = (*dir_ / "cancelled").string();
  int64_t calls = 0;
  request.progress = [&](const TrainProgress& p) {
    ++calls;
    EXPECT_EQ(p.steps, 300);
    EXPECT_TRUE(std::isfinite(p.loss));
    return p.step < 120;
  };
  const TrainResult stopped = train("swiss-roll", request);
  EXPECT_TRUE(stopped.cancelled);
  EXPECT_EQ(stopped.steps, 120);
  EXPECT_EQ(calls, 120);
  EXPECT_EQ(Model::load(stopped.checkpoint).step(), 120);

  request.progress = nullptr;
  request.resume = true;
  const TrainResult resumed = train("swiss-roll", request);
  EXPECT_FALSE(resumed.cancelled);
  EXPECT_EQ(resumed.steps, 300);
  const auto a = Model::load(resumed.checkpoint).weights(), b = Model::load(checkpoint()).weights();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, array] : a) EXPECT_EQ(array.data, b.at(name).data) << name;
}

TEST_F(Api, EvaluateMeasuresPointsAgainstTheNamedDataset) {
  SampleRequest request;
  request.n = 1000;
  const Array samples = Model::load(checkpoint()).sample(request);
  const std::map<std::string, double> m = evaluate(samples, "swiss-roll", 0);
  ASSERT_EQ(m.count("swd"), 1u);
  EXPECT_GT(m.at("swd"), 0);
  // Samples far from the data measure worse than the model's.
  Array shifted = samples;
  for (float& v : shifted.data) v += 3.0f;
  EXPECT_GT(evaluate(shifted, "swiss-roll", 0).at("swd"), 3 * m.at("swd"));
}

TEST_F(Api, BadInputIsOneErrorWithTheCommandsLine) {
  // A missing and a corrupt checkpoint: the command's line, as scorediff::Error.
  const std::string missing = (*dir_ / "missing.safetensors").string();
  const std::string corrupt = (*dir_ / "corrupt.safetensors").string();
  {
    std::ofstream file(corrupt, std::ios::binary);
    file << std::string(64, '\x7f');
  }
  for (const std::string& path : {missing, corrupt}) {
    std::string api_message = "(no error)";
    try {
      Model::load(path);
    } catch (const Error& e) {
      api_message = e.what();
    }
    const CliResult cli = run_cli("sample --ckpt " + path + " -q -o " + (*dir_ / "x.npy").string());
    EXPECT_EQ(cli.status, 2);
    EXPECT_EQ(cli.err, "scorediff: error: " + api_message + "\n");
  }

  const Model model = Model::load(checkpoint());
  SampleRequest request;
  request.sampler = "nope";
  EXPECT_THAT_ERROR(model.sample(request), "'nope'");
  EXPECT_THAT_ERROR(model.score(Array{{3, 3}, std::vector<float>(9, 0.f)}, {1.0}),
                    "rows of 3 values, the model's data 2");
  EXPECT_THAT_ERROR(model.score(Array{{3, 2}, std::vector<float>(5, 0.f)}, {1.0}), "5 values for shape [3, 2]");
  EXPECT_THAT_ERROR(model.score(Array{{2, 2}, {0.f, NAN, 0.f, 0.f}}, {1.0}), "x holds NaN or Inf values");
  EXPECT_THAT_ERROR(model.score(Array{{2, 2}, std::vector<float>(4, 0.f)}, {1.0, 2.0, 3.0}),
                    "sigma has 3 values for 2 rows");
  EXPECT_THAT_ERROR(model.score(Array{{2, 2}, std::vector<float>(4, 0.f)}, {-1.0}),
                    "sigma -1 is outside the model's noise range [0.01, 5]");
  EXPECT_THAT_ERROR(Model().sample(), "holds no checkpoint");
  EXPECT_THAT_ERROR(evaluate(Array{{2, 2}, std::vector<float>(4, 0.f)}, "nope", 0), "'nope'");
  EXPECT_THAT_ERROR(train("no-such-preset"), "no-such-preset");
}

}  // namespace
}  // namespace scorediff
