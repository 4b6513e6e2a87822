// train: Adam against torch::optim::Adam, EMA, checkpoint round trip, bit-exact resume, NaN guard.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

#include "scorediff/core/interrupt.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/models/fused_mlp.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/train/adam.hpp"
#include "test_util.hpp"

using namespace scorediff;
namespace fs = std::filesystem;

namespace {

Config small_config(int64_t steps) {
  return load_config("swiss-roll", {fmt::format("train.steps={}", steps), "train.log_every=1", "train.warmup=5",
                                    "data.n_train=300", "model.width=16", "model.depth=2", "train.batch=32"});
}

std::vector<nlohmann::json> read_log(const fs::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST(Adam, MatchesTorchOptimAdam) {
  auto gen = make_generator(1);
  torch::Tensor target = torch::randn({5, 3}, gen);
  for (double wd : {0.0, 0.1}) {
    torch::Tensor a = torch::randn({5, 3}, gen).requires_grad_(true);
    torch::Tensor b = a.detach().clone().requires_grad_(true);
    Adam ours({a}, AdamOptions{0.9, 0.99, 1e-8, wd});
    torch::optim::AdamW reference({b}, torch::optim::AdamWOptions(3e-2).betas({0.9, 0.99}).eps(1e-8).weight_decay(wd));
    for (int step = 0; step < 50; ++step) {
      a.mutable_grad() = torch::Tensor();
      ours.zero_grad();
      (a - target).pow(3).abs().sum().backward();
      ours.step(3e-2);
      reference.zero_grad();
      (b - target).pow(3).abs().sum().backward();
      reference.step();
    }
    EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6)) << "weight decay " << wd << ": " << (a - b).abs().max().item<float>();
    EXPECT_EQ(ours.steps(), 50);
  }
}

TEST(Adam, FusedAndAtenUpdatesAgreeWithClippingFoldedIn) {
  // The fused per-tensor pass and the ATen operations, with the clipping factor applied inside the update,
  // against torch's clip_grad_norm_ on the same gradients.
  auto gen = make_generator(2);
  std::vector<torch::Tensor> fused, aten, clipped;
  for (std::vector<int64_t> shape : {std::vector<int64_t>{7, 5}, {5}, {300}}) {
    torch::Tensor t = torch::randn(shape, gen);
    fused.push_back(t.clone().requires_grad_(true));
    aten.push_back(t.clone().requires_grad_(true));
    clipped.push_back(t.clone().requires_grad_(true));
  }
  Adam a(fused, AdamOptions{0.9, 0.999, 1e-8, 0.01}), b(aten, AdamOptions{0.9, 0.999, 1e-8, 0.01});
  int clipped_steps = 0;
  for (int step = 0; step < 30; ++step) {
    for (size_t i = 0; i < fused.size(); ++i) {
      torch::Tensor g = torch::randn(fused[i].sizes(), gen) * (step % 2 == 0 ? 10.0 : 0.01);
      fused[i].mutable_grad() = g.clone();
      aten[i].mutable_grad() = g.clone();
      clipped[i].mutable_grad() = g.clone();
    }
    GradNorm n = gradient_norm(fused, 1.0);
    const double reference = torch::nn::utils::clip_grad_norm_(clipped, 1.0);
    EXPECT_NEAR(n.norm, reference, 1e-5 * reference);
    if (n.scale < 1) {
      ++clipped_steps;
      for (size_t i = 0; i < fused.size(); ++i)
        EXPECT_TRUE(torch::allclose(fused[i].grad() * n.scale, clipped[i].grad(), 1e-5, 1e-7));
    }
    a.step_fused(1e-2, n.scale);
    b.step_aten(1e-2, n.scale);
  }
  EXPECT_EQ(clipped_steps, 15);  // the large-gradient steps only
  for (size_t i = 0; i < fused.size(); ++i) {
    EXPECT_TRUE(torch::allclose(fused[i], aten[i], 1e-5, 1e-6)) << i << ": " << (fused[i] - aten[i]).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(a.exp_avg_sq()[i], b.exp_avg_sq()[i], 1e-5, 1e-9));
  }
}

TEST(Schedule, WarmupThenCosine) {
  TrainOptions o;
  o.lr = 1.0;
  o.warmup = 10;
  o.steps = 110;
  o.lr_final_ratio = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(o, 0), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(o, 9), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(o, 10), 1.0);
  EXPECT_NEAR(learning_rate(o, 60), 0.55, 1e-12);  // halfway: (1 + 0.1)/2
  EXPECT_NEAR(learning_rate(o, 110), 0.1, 1e-12);
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(learning_rate(o, 60), 1.0);
}

TEST(Ema, FollowsTheWarmedUpDecay) {
  torch::Tensor p = torch::zeros({2});
  Ema ema({p}, 0.99);
  p.fill_(1.0);
  ema.update({p}, 1);  // d = min(0.99, 2/11)
  EXPECT_NEAR(ema.shadow()[0][0].item<float>(), 1 - 2.0 / 11, 1e-6);
  for (int step = 2; step < 2000; ++step) ema.update({p}, step);
  EXPECT_NEAR(ema.shadow()[0][0].item<float>(), 1.0, 1e-6);
}

TEST(Checkpoint, RoundTripsTheWholeTrainingState) {
  TempDir dir;
  Config config = small_config(12);
  TrainedRun run = train_run(config, dir.path(), {false, true});
  TensorFile file = read_safetensors(dir / "last.safetensors");
  EXPECT_EQ(file.metadata.at("step"), "12");
  EXPECT_EQ(file.metadata.at("format"), "scorediff-checkpoint/1");
  for (const char* name : {"model.net.layer0.weight", "ema.net.layer0.weight", "optim.exp_avg.net.layer0.weight",
                           "optim.exp_avg_sq.net.layer2.bias", "model.net.features.W", "rng.train", "train.step"})
    EXPECT_TRUE(file.contains(name)) << name;
  LoadedModel raw = load_trained(dir / "last.safetensors", false);
  LoadedModel ema = load_trained(dir / "last.safetensors", true);
  auto trained = run.model->named_parameters();
  auto averaged = run.ema_model->named_parameters();
  for (const auto& item : raw.model->named_parameters()) EXPECT_TRUE(torch::equal(item.value(), trained[item.key()]));
  for (const auto& item : ema.model->named_parameters()) EXPECT_TRUE(torch::equal(item.value(), averaged[item.key()]));
  // Without a choice the weights follow sample.use_ema, overrides included (eval --set sample.use_ema=false).
  LoadedModel by_config = load_trained(dir / "last.safetensors", std::nullopt, {"sample.use_ema=false", "sample.n=7"});
  EXPECT_EQ(by_config.config.sample.n, 7);
  for (const auto& item : by_config.model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), trained[item.key()])) << item.key();
  LoadedModel by_default = load_trained(dir / "last.safetensors");
  for (const auto& item : by_default.model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), averaged[item.key()])) << item.key();
  EXPECT_EQ(raw.config.to_toml(), run.config.to_toml());
  EXPECT_GT(raw.config.model.sigma_data, 0.5);  // estimated from the data and stored
  EXPECT_EQ(fs::exists(dir / "ckpt" / "step-12.safetensors"), true);
}

TEST(Autoguidance, CombinesTheModelWithAnEarlierCheckpointOfItsRun) {
  TempDir dir;
  Config config = small_config(20);
  config.train.ckpt_every = 10;
  train_run(config, dir.path(), {false, true});
  LoadedModel good = load_trained(dir / "last.safetensors", true);
  LoadedModel weak = load_trained(dir / "ckpt" / "step-10.safetensors", true);
  auto gen = make_generator(3);
  torch::Tensor x = torch::randn({9, 2}, gen);
  torch::Tensor t = torch::rand({9}, gen) * 0.9 + 0.05;
  torch::Tensor s_good = model_score_fn(good.model, good.prepared.process)(x, t);
  torch::Tensor s_weak = model_score_fn(weak.model, weak.prepared.process)(x, t);
  ASSERT_GT((s_good - s_weak).abs().max().item<double>(), 1e-3);  // the two checkpoints differ

  for (const char* guide : {"step-10", ""}) {
    Config c = good.config;
    c.sample.guide = *guide ? guide : (dir / "ckpt" / "step-10.safetensors").string();  // by step, then by path
    c.sample.guidance = 1.7;
    torch::Tensor guided = sampling_score_fn(c, good.model, good.prepared, run_dir_of(dir / "last.safetensors"))(x, t);
    EXPECT_TRUE(torch::allclose(guided, s_weak + 1.7 * (s_good - s_weak), 1e-5, 1e-5)) << guide;
  }
  Config plain = good.config;
  plain.sample.guide = "step-10";  // w = 1: the model alone
  EXPECT_TRUE(torch::equal(sampling_score_fn(plain, good.model, good.prepared, dir.path())(x, t), s_good));
  EXPECT_EQ(run_dir_of(dir / "ckpt" / "step-10.safetensors"), dir.path());
  {  // sample.precision = bfloat16 reaches the MLP's inference path, the guide's evaluation included
    torch::NoGradGuard no_grad;
    Config bf16 = good.config;
    bf16.sample.precision = "bfloat16";
    torch::Tensor fast = sampling_score_fn(bf16, good.model, good.prepared, dir.path())(x, t);
    torch::Tensor exact = sampling_score_fn(good.config, good.model, good.prepared, dir.path())(x, t);
    EXPECT_FALSE(torch::equal(fast, exact));
    EXPECT_LT((fast - exact).abs().max().item<double>(), 2e-2 * exact.abs().max().item<double>());
    bf16.sample.guide = "step-10";
    bf16.sample.guidance = 1.7;
    torch::Tensor guided16 = sampling_score_fn(bf16, good.model, good.prepared, dir.path())(x, t);
    torch::Tensor weak16;
    {
      BFloat16Inference on;
      weak16 = model_score_fn(weak.model, weak.prepared.process)(x, t);
    }
    EXPECT_TRUE(torch::allclose(guided16, weak16 + 1.7 * (fast - weak16), 1e-5, 1e-5));
  }

  Config missing = good.config;
  missing.sample.guidance = 2;
  missing.sample.guide = "step-15";
  EXPECT_THAT_ERROR(sampling_score_fn(missing, good.model, good.prepared, dir.path()), "does not exist");
  Config unguided = good.config;
  EXPECT_THAT_ERROR(config_from_toml(unguided.to_toml(), "test", {"sample.guidance=2"}), "needs sample.guide");
  EXPECT_THAT_ERROR(config_from_toml(unguided.to_toml(), "test", {"sample.guidance=2", "sample.guide=step-30"}),
                    "beyond the run's train.steps = 20");

  TempDir other;  // a guide trained for another process
  Config ve = small_config(3);
  Schema schema = ve.schema();
  schema.set("process.sigma_max=7");
  ve.validate();
  train_run(ve, other.path(), {false, true});
  Config foreign = good.config;
  foreign.sample.guide = (other / "last.safetensors").string();
  foreign.sample.guidance = 2;
  EXPECT_THAT_ERROR(sampling_score_fn(foreign, good.model, good.prepared, dir.path()), "same process");
}

TEST(Checkpoint, ResumeContinuesBitForBit) {
  TempDir whole, split;
  train_run(small_config(30), whole.path(), {false, true});
  train_run(small_config(30), split.path(), {false, true, 13});  // interrupted after step 13
  TrainedRun resumed = train_run(small_config(30), split.path(), {true, true});
  auto a = read_log(whole / "train.jsonl"), b = read_log(split / "train.jsonl");
  ASSERT_EQ(resumed.log.size(), 30u);  // the earlier steps' records too, for plots and reports
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(resumed.log[i], b[i]) << "record " << i;
  ASSERT_EQ(a.size(), 30u);
  ASSERT_EQ(b.size(), 30u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]);
    EXPECT_EQ(a[i]["loss"].get<double>(), b[i]["loss"].get<double>()) << "step " << i + 1;  // exact, not near
    EXPECT_EQ(a[i]["loss_per_level"], b[i]["loss_per_level"]);
    EXPECT_EQ(a[i]["grad_norm"].get<double>(), b[i]["grad_norm"].get<double>());
  }
  TensorFile fa = read_safetensors(whole / "last.safetensors"), fb = read_safetensors(split / "last.safetensors");
  for (const auto& [name, t] : fa.tensors) EXPECT_TRUE(torch::equal(t, fb.at(name))) << name;

  // Resuming a finished run trains nothing: same weights, same log, and its time is the logged one.
  TrainedRun again = train_run(small_config(30), split.path(), {true, true});
  EXPECT_EQ(read_log(split / "train.jsonl").size(), 30u);
  ASSERT_EQ(again.log.size(), 30u);
  double logged = 0;
  for (size_t i = 0; i < b.size(); ++i) logged += 1.0 / b[i]["steps_per_s"].get<double>();  // log_every = 1
  EXPECT_NEAR(again.seconds, logged, 1e-9 * logged + 1e-3);
  TensorFile fc = read_safetensors(split / "last.safetensors");
  for (const auto& [name, t] : fb.tensors) EXPECT_TRUE(torch::equal(t, fc.at(name))) << name;
}

TEST(Checkpoint, InterruptCheckpointsAndResumesBitForBit) {
  TempDir whole, split;
  train_run(small_config(20), whole.path(), {false, true});
  uninstall_interrupt_handlers();  // from the default dispositions, even where the parent ignores SIGINT
  install_interrupt_handlers();
  TrainRunOptions options(false, true);
  options.hook_every = 1;
  options.hook = [](int64_t step, ScoreModel&, ScoreModel&) {
    if (step == 7) std::raise(SIGINT);  // as Ctrl-C would, in the middle of step 7's aside work
  };
  EXPECT_THAT_ERROR(train_run(small_config(20), split.path(), options), "stopped at step 8 of 20");
  uninstall_interrupt_handlers();
  EXPECT_FALSE(interrupt_requested());
  EXPECT_EQ(read_safetensors(split / "last.safetensors").metadata.at("step"), "8");
  EXPECT_TRUE(fs::exists(split / "ckpt" / "step-8.safetensors"));
  train_run(small_config(20), split.path(), {true, true});
  TensorFile fa = read_safetensors(whole / "last.safetensors"), fb = read_safetensors(split / "last.safetensors");
  for (const auto& [name, t] : fa.tensors) EXPECT_TRUE(torch::equal(t, fb.at(name))) << name;
  EXPECT_EQ(read_log(split / "train.jsonl").size(), 20u);
}

TEST(Checkpoint, ResumeRefusesAChangedConfiguration) {
  TempDir dir;
  train_run(small_config(5), dir.path(), {false, true});
  Config changed = small_config(10);
  changed.train.lr = 0.5;
  EXPECT_THAT_ERROR(train_run(changed, dir.path(), {true, true}), "differs in train.lr");
  TempDir empty;
  EXPECT_THAT_ERROR(train_run(small_config(5), empty.path(), {true, true}), "not found");
}

TEST(Trainer, StopsWithAClearMessageWhenTrainingDiverges) {
  TempDir dir;
  Config config = small_config(50);
  config.train.lr = 1e30;  // Adam's first steps move weights by ~lr: the loss overflows at once
  config.train.warmup = 0;
  config.train.grad_clip = 0;
  EXPECT_THAT_ERROR(train_run(config, dir.path(), {false, true}), "training diverged");
}
