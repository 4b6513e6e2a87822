// The training loop and its hooks, each on its own: log window averages and speeds, checkpoints at the
// due steps (and only on rank 0), EMA views with the EMA weights in eval mode, the interrupt stop.
#include <gtest/gtest.h>

#include <fstream>

#include "scorediff/core/interrupt.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/train/hooks/checkpointer.hpp"
#include "scorediff/train/hooks/ema_hook.hpp"
#include "scorediff/train/hooks/interrupt_hook.hpp"
#include "scorediff/train/hooks/log_window.hpp"
#include "scorediff/train/loop.hpp"
#include "test_util.hpp"

using namespace scorediff;
namespace fs = std::filesystem;

namespace {

StepStats stats_of(double loss, double grad, std::vector<double> level_sums, std::vector<int64_t> counts,
                   bool skipped = false) {
  StepStats s;
  s.loss = loss;
  s.grad_norm = grad;
  s.lr = 0.5;
  s.skipped = skipped;
  s.level_loss_sum = torch::tensor(level_sums, torch::kFloat64);
  s.level_count = torch::tensor(counts, torch::kInt64);
  return s;
}

// A small trained setting: the swiss-roll preset with a tiny MLP.
struct Small {
  Config config;
  Prepared prepared;
  ScoreModel model{nullptr};
  std::unique_ptr<Trainer> trainer;
  explicit Small(int64_t steps) {
    config = load_config("swiss-roll", {fmt::format("train.steps={}", steps), "data.n_train=200", "model.width=16",
                                        "model.depth=2", "train.batch=16", "train.warmup=2"});
    prepared = prepare(config);
    at::Generator gen = make_generator(1);
    model = make_model(config.model, 2, gen);
    Objective objective = make_objective(config.objective, nullptr);
    trainer = std::make_unique<Trainer>(model, prepared.process, objective,
                                        level_count(config.objective, *prepared.process), prepared.train_data,
                                        config.train, 3);
  }
  ScoreModel fresh_model() {
    at::Generator gen = make_generator(2);
    return make_model(config.model, 2, gen);
  }
};

// Records the steps it saw and the finish call.
struct Recorder : TrainingHook {
  std::vector<int64_t> steps;
  int64_t finished_at = -1;
  bool after_step(const StepEvent& e) override {
    steps.push_back(e.step);
    return false;
  }
  void finish(const StepEvent& e) override { finished_at = e.step; }
};

}  // namespace

TEST(LogWindow, AveragesEachWindowAndTimesOnlyTheSteps) {
  LogWindow window(3, 2, nullptr, nullptr, /*world_size=*/2);
  const std::vector<StepStats> stats = {stats_of(1, 10, {1, 0}, {1, 0}), stats_of(2, 20, {0, 4}, {0, 2}),
                                        stats_of(9, 90, {9, 9}, {1, 1}, true), stats_of(4, 40, {4, 0}, {1, 0}),
                                        stats_of(6, 60, {0, 6}, {0, 1})};
  for (size_t i = 0; i < stats.size(); ++i) {
    StepEvent e;
    e.step = static_cast<int64_t>(i) + 1;
    e.last_step = 5;
    e.stats = &stats[i];
    e.train_seconds = 0.5 * static_cast<double>(e.step);   // two steps per second
    e.communication_seconds = 0.1 * static_cast<double>(e.step);
    EXPECT_FALSE(window.after_step(e));
  }
  ASSERT_EQ(window.records.size(), 2u);  // step 3 (log_every) and step 5 (the last)
  const auto& first = window.records[0];
  EXPECT_EQ(first["step"], 3);
  EXPECT_DOUBLE_EQ(first["loss"].get<double>(), 1.5);  // the skipped step is left out
  EXPECT_DOUBLE_EQ(first["grad_norm"].get<double>(), 15);
  EXPECT_EQ(first["skipped"], 1);
  EXPECT_DOUBLE_EQ(first["loss_per_level"][0].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(first["loss_per_level"][1].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(first["steps_per_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(first["allreduce_share"].get<double>(), 0.2);
  EXPECT_EQ(first["world_size"], 2);
  const auto& second = window.records[1];
  EXPECT_EQ(second["step"], 5);
  EXPECT_DOUBLE_EQ(second["loss"].get<double>(), 5.0);
  EXPECT_EQ(second["skipped"], 0);
  EXPECT_DOUBLE_EQ(second["loss_per_level"][0].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(second["loss_per_level"][1].get<double>(), 6.0);
  EXPECT_DOUBLE_EQ(second["steps_per_s"].get<double>(), 2.0);  // 2 steps in 1 s: a partial window
  EXPECT_DOUBLE_EQ(second["lr"].get<double>(), 0.5);
}

TEST(LogWindow, WritesARecordWhenTheRunStopsEarlyAndLeavesEmptyLevelsNull) {
  TempDir dir;
  {
    JsonlWriter log(dir / "train.jsonl", false);
    LogWindow window(100, 2, &log, nullptr);
    StepStats s = stats_of(3, 1, {3, 0}, {1, 0});
    StepEvent e;
    e.step = 7;
    e.last_step = 50;
    e.stats = &s;
    e.stopping = true;
    e.train_seconds = 1;
    window.after_step(e);
    ASSERT_EQ(window.records.size(), 1u);
    EXPECT_TRUE(window.records[0]["loss_per_level"][1].is_null());
    EXPECT_FALSE(window.records[0].contains("world_size"));
  }
  std::ifstream in(dir / "train.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(nlohmann::json::parse(line)["step"], 7);
}

TEST(TrainingLoop, CallsEveryHookAfterEveryStepAndFinishesOnce) {
  Small small(7);
  Recorder a, b;
  TrainingLoop loop(*small.trainer, 7);
  loop.add(a);
  loop.add(b);
  loop.run();
  EXPECT_EQ(a.steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(b.steps, a.steps);
  EXPECT_EQ(a.finished_at, 7);
  EXPECT_EQ(small.trainer->steps_done(), 7);
  // Nothing left: no step, but the hooks still finish (the final checkpoint of a complete run).
  Recorder c;
  TrainingLoop again(*small.trainer, 7);
  again.add(c);
  again.run();
  EXPECT_TRUE(c.steps.empty());
  EXPECT_EQ(c.finished_at, 7);
}

TEST(Checkpointer, WritesEveryNStepsAndAtTheEndOnRankZeroOnly) {
  TempDir dir, other;
  fs::create_directories(dir / "ckpt");
  fs::create_directories(other / "ckpt");
  Small small(10);
  Checkpointer lead(*small.trainer, dir.path(), "the config", 4, true);
  Checkpointer follower(*small.trainer, other.path(), "the config", 4, false);
  struct Due : TrainingHook {
    Checkpointer* lead;
    Checkpointer* follower;
    std::vector<int64_t> due;
    bool after_step(const StepEvent& e) override {
      const bool a = lead->after_step(e), b = follower->after_step(e);
      EXPECT_EQ(a, b) << e.step;
      if (a) due.push_back(e.step);
      return a;
    }
    void finish(const StepEvent& e) override {
      lead->finish(e);
      follower->finish(e);
    }
  } both;
  both.lead = &lead;
  both.follower = &follower;
  TrainingLoop loop(*small.trainer, 10);
  loop.add(both);
  loop.run();
  EXPECT_EQ(both.due, (std::vector<int64_t>{4, 8}));
  for (const char* name : {"step-4", "step-8", "step-10"})
    EXPECT_TRUE(fs::exists(dir / "ckpt" / (std::string(name) + ".safetensors"))) << name;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "ckpt"), fs::directory_iterator{}), 3);
  TensorFile last = read_safetensors(dir / "last.safetensors");
  EXPECT_EQ(last.metadata.at("step"), "10");
  EXPECT_EQ(last.metadata.at("config"), "the config");
  EXPECT_EQ(last.metadata.at("format"), kCheckpointFormat);
  for (const auto& [name, tensor] : small.trainer->state().tensors) EXPECT_TRUE(torch::equal(tensor, last.at(name))) << name;
  EXPECT_TRUE(fs::is_empty(other / "ckpt"));
  EXPECT_FALSE(fs::exists(other / "last.safetensors"));
}

TEST(EmaHook, ShowsTheEmaWeightsInEvalModeAtTheDueSteps) {
  Small small(10);
  ScoreModel ema = small.fresh_model();
  std::vector<int64_t> seen;
  EmaHook hook(*small.trainer, small.model, ema, 4, /*include_last=*/true, /*lead=*/true,
               [&](int64_t step, ScoreModel& raw, ScoreModel& averaged) {
                 seen.push_back(step);
                 EXPECT_FALSE(raw->is_training());
                 EXPECT_FALSE(averaged->is_training());
                 ScoreModel expected = small.fresh_model();
                 small.trainer->copy_ema_to(expected);
                 auto want = expected->named_parameters();
                 for (const auto& item : averaged->named_parameters())
                   EXPECT_TRUE(torch::equal(item.value(), want[item.key()])) << item.key();
               });
  EmaHook follower(*small.trainer, small.model, small.fresh_model(), 4, true, /*lead=*/false,
                   [&](int64_t, ScoreModel&, ScoreModel&) { ADD_FAILURE() << "only rank 0 looks"; });
  struct Check : TrainingHook {
    ScoreModel model{nullptr};
    bool after_step(const StepEvent&) override {
      EXPECT_TRUE(model->is_training());  // back in train mode for the next step
      return false;
    }
  } check;
  check.model = small.model;
  TrainingLoop loop(*small.trainer, 10);
  loop.add(hook);
  loop.add(follower);
  loop.add(check);
  loop.run();
  EXPECT_EQ(seen, (std::vector<int64_t>{4, 8, 10}));
}

TEST(InterruptHook, StopsOnlyARunThatWasAskedToStopBeforeItsLastStep) {
  StepStats s;
  StepEvent e;
  e.stats = &s;
  e.step = 5;
  e.last_step = 10;
  InterruptHook lead(0, 10, "run/last.safetensors"), follower(1, 10, "run/last.safetensors");
  EXPECT_FALSE(lead.after_step(e));
  e.stopping = true;
  EXPECT_THAT_ERROR(lead.after_step(e), "training stopped at step 5 of 10; checkpoint 'run/last.safetensors' written");
  EXPECT_THAT_ERROR(follower.after_step(e), "rank 1 stopped at step 5 of 10");
  EXPECT_THROW(lead.after_step(e), Interrupted);  // the CLI's exit status 130
  e.step = 10;  // asked at the last step: the run ends normally
  EXPECT_FALSE(lead.after_step(e));
}

// A labelled data set gives the run its training labels, drawn with the training points (the same points
// as an unlabelled draw would give, so no earlier result moves); an unlabelled one gives none.
TEST(Prepare, KeepsTheTrainingLabelsOfLabelledData) {
  Config config = load_config("mog2", {"data.n_train=500"});
  Prepared p = prepare(config);
  ASSERT_TRUE(p.train_labels.defined());
  ASSERT_EQ(p.train_labels.numel(), 500);
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "data"));
  EXPECT_TRUE(torch::equal(p.train_data.cpu(), p.dataset->sample(500, gen)));
  EXPECT_TRUE(torch::equal(p.train_labels.cpu(), p.dataset->mixture()->nearest_mean(p.train_data.cpu().to(torch::kFloat64))));
  Config roll = load_config("swiss-roll", {"data.n_train=100"});
  EXPECT_FALSE(prepare(roll).train_labels.defined());
}
