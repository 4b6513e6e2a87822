// Data-parallel training (c10d, Gloo on loopback): N worker processes take the step one process would.
#include <fstream>

#include "scorediff/io/safetensors.hpp"
#include "scorediff/train/data_parallel.hpp"
#include "test_util.hpp"

namespace scorediff {
namespace {

namespace fs = std::filesystem;

// Swiss roll, seed 001's network, the global batch of 256 rows the 2 ranks split 128 / 128.
const std::string kTrain =
    "train -q --no-sample --threads 1 --seed 3 --set train.steps=20 --set train.log_every=5 --set train.warmup=5 ";

double max_difference(const TensorFile& a, const TensorFile& b, const std::string& prefix) {
  double worst = 0;
  int compared = 0;
  for (const auto& [name, t] : a.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    EXPECT_TRUE(b.contains(name)) << name;
    if (!b.contains(name)) continue;
    worst = std::max(worst, (t.to(torch::kFloat64) - b.at(name).to(torch::kFloat64)).abs().max().item<double>());
    ++compared;
  }
  EXPECT_GT(compared, 0) << "no tensor named " << prefix << "*";
  return worst;
}

std::vector<double> logged_losses(const fs::path& log) {
  std::ifstream in(log);
  std::vector<double> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return out;
}

}  // namespace

TEST(DataParallel, ShardsCoverTheBatchOnce) {
  for (int world : {1, 2, 3, 7}) {
    int64_t next = 0;
    for (int rank = 0; rank < world; ++rank) {
      auto [begin, end] = shard_rows(100, rank, world);
      EXPECT_EQ(begin, next);
      EXPECT_GE(end - begin, 100 / world);
      EXPECT_LE(end - begin, 100 / world + 1);
      next = end;
    }
    EXPECT_EQ(next, 100);
  }
  EXPECT_THAT_ERROR(shard_rows(10, 2, 2), "outside a world of 2");
}

TEST(DataParallel, TwoProcessesGiveTheParametersOfOneAndResumeWithAnyCount) {
  ASSERT_TRUE(data_parallel_available()) << "built without c10d/Gloo (libgloo-dev)";
  TempDir dir;
  CliResult one = run_cli(kTrain + "--out one", dir.path());
  ASSERT_EQ(one.status, 0) << one.err;
  CliResult two = run_cli(kTrain + "--nproc 2 --out two", dir.path());
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_NE(two.out.find("\"backend\":\"gloo\""), std::string::npos) << two.out;  // CPU tensors: Gloo
  TensorFile a = read_safetensors(dir / "one/last.safetensors"), b = read_safetensors(dir / "two/last.safetensors");
  EXPECT_EQ(b.metadata.at("step"), "20");
  // The parameters after 20 Adam steps, and the EMA rank 0 kept.
  EXPECT_LE(max_difference(a, b, "model."), 1e-5);
  EXPECT_LE(max_difference(a, b, "ema."), 1e-5);
  // Training moved them: Adam's moments hold gradients, so this is not a comparison of two initialisations.
  double moment = 0;
  for (const auto& [name, t] : b.tensors)
    if (name.rfind("optim.exp_avg.", 0) == 0) moment = std::max(moment, t.abs().max().item<double>());
  EXPECT_GT(moment, 1e-4);
  // Rank 0 logged the global batch's loss (the sum over both shards), window by window.
  std::vector<double> la = logged_losses(dir / "one/train.jsonl"), lb = logged_losses(dir / "two/train.jsonl");
  ASSERT_EQ(la.size(), 4u);
  ASSERT_EQ(lb.size(), 4u);
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], 1e-5 * std::abs(la[i])) << "window " << i;
  // The run's result names the world size and the time spent in the all-reduce.
  nlohmann::json result = nlohmann::json::parse(two.out);
  EXPECT_EQ(result["world_size"], 2);
  EXPECT_GT(result["allreduce_seconds"].get<double>(), 0);

  // Stopped at step 10 with 2 workers, resumed by 1 process: the same run.
  CliResult first = run_cli(kTrain + "--nproc 2 --stop-at 10 --out split", dir.path());
  ASSERT_EQ(first.status, 0) << first.err;
  CliResult rest = run_cli(kTrain + "--resume --out split", dir.path());
  ASSERT_EQ(rest.status, 0) << rest.err;
  EXPECT_LE(max_difference(a, read_safetensors(dir / "split/last.safetensors"), "model."), 1e-5);

  // Sliced score matching differentiates the score in x through the sharded evaluation.
  const std::string ssm = kTrain + "--set objective.name=ssm --set train.steps=5 ";
  CliResult ssm_one = run_cli(ssm + "--out ssm-one", dir.path());
  CliResult ssm_two = run_cli(ssm + "--nproc 2 --out ssm-two", dir.path());
  ASSERT_EQ(ssm_one.status, 0) << ssm_one.err;
  ASSERT_EQ(ssm_two.status, 0) << ssm_two.err;
  EXPECT_LE(max_difference(read_safetensors(dir / "ssm-one/last.safetensors"),
                           read_safetensors(dir / "ssm-two/last.safetensors"), "model."),
            1e-5);
}

TEST(DataParallel, UNetWithDropoutTakesTheSameStepsInTwoProcesses) {
  ASSERT_TRUE(data_parallel_available()) << "built without c10d/Gloo (libgloo-dev)";
  TempDir dir;
  // Dropout masks are drawn for the global batch (BatchShard); checkpoints every 2 steps make ranks 1..N
  // wait for rank 0 through the store. Float32 convolutions: in bfloat16 the rounding of a half batch's
  // gradients differs from the whole batch's by far more than the bound.
  const std::string unet =
      "train -q --no-sample --threads 1 --config mnist --set data.image_size=14 --set data.n_train=500 "
      "--set model.channels=8 --set 'model.channel_mult=[1,2]' --set 'model.attention=[7]' "
      "--set model.fourier_features=16 --set model.dropout=0.2 --set model.conv_precision=float32 "
      "--set train.steps=6 --set train.batch=8 "
      "--set train.warmup=2 --set train.log_every=3 --set train.ckpt_every=2 --set train.sample_every=0 ";
  CliResult one = run_cli(unet + "--out one", dir.path());
  ASSERT_EQ(one.status, 0) << one.err;
  CliResult two = run_cli(unet + "--nproc 2 --out two", dir.path());
  ASSERT_EQ(two.status, 0) << two.err;
  TensorFile a = read_safetensors(dir / "one/last.safetensors"), b = read_safetensors(dir / "two/last.safetensors");
  EXPECT_LE(max_difference(a, b, "model."), 1e-5);
  EXPECT_TRUE(fs::exists(dir / "two/ckpt/step-4.safetensors"));
}

TEST(DataParallel, CpuWorkersSumWithGlooAndKeepTheirDevice) {
  for (const std::string backend : {"auto", "gloo"}) {
    DistOptions o;
    o.world_size = 2;
    o.local_world = 2;
    o.backend = backend;
    EXPECT_EQ(place_worker("cpu", o), "cpu");
    EXPECT_EQ(o.backend, "gloo");
    EXPECT_EQ(o.device_index, -1);  // no CUDA device chosen
  }
  DistOptions nccl;
  nccl.world_size = 2;
  nccl.backend = "nccl";
  EXPECT_THROW(place_worker("cpu", nccl), Error);  // NCCL sums CUDA tensors only
  DistOptions outside;
  outside.world_size = 2;
  outside.local_rank = 2;
  outside.local_world = 2;
  EXPECT_THROW(place_worker("cpu", outside), Error);
}

TEST(DataParallel, BadOptionsFailWithOneLine) {
  TempDir dir;
  struct Case {
    std::string args, fragment;
  };
  for (const Case& c : std::vector<Case>{
           {"--nproc 2 --world-size 2", "use one"},
           {"--nproc 2 --master-port 29999", "use one or the other"},
           {"--rank 2 --world-size 2", "--rank 2 must be smaller than --world-size 2"},
           {"--nproc 0", "--nproc"},
           {"--nproc 4 --set train.batch=3", "train.batch = 3 is smaller than --nproc 4"},
           {"--master-port 70000 --world-size 2", "--master-port"},
           {"--nproc 2 --backend mpi", "unknown --backend 'mpi'; valid: auto, gloo, nccl"},
           {"--nproc 2 --backend nccl", "--backend nccl"},
       }) {
    CliResult r = run_cli(kTrain + "--out bad " + c.args, dir.path());
    EXPECT_EQ(r.status, 2) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace scorediff
