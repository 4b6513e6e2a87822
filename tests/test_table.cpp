// The table dataset: CSV and .npy parsing against known contents, one-line errors for bad files, the
// held-out split and standardisation, evaluation against the held-out rows, and a checkpoint that keeps
// its standardisation when the file changes under it.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>

#include "scorediff/core/rng.hpp"
#include "scorediff/data/table.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/sampling_score.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/samplers/registry.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

// n rows of 3 columns, x_ij = i + 10·j + 0.5·j², and a label column i % 3 at the end.
std::string labelled_csv(int n, const std::string& header = "n,3,a,b,c\n") {
  std::string text = header;
  for (int i = 0; i < n; ++i) text += fmt::format("{},{},{},{}\n", i, i + 10.5, i * 0.25 + 22, i % 3);
  return text;
}

torch::Tensor expected_values(int n) {
  torch::Tensor i = torch::arange(n, torch::kFloat64);
  return torch::stack({i, i + 10.5, i * 0.25 + 22}, 1);
}

DataOptions table_options(const std::filesystem::path& path, int64_t label_column = 3) {
  DataOptions o;
  o.name = "table";
  o.path = path.string();
  o.label_column = label_column;
  return o;
}

}  // namespace

TEST(Table, ReadsCsvWithHeaderAndLabelColumn) {
  TempDir dir;
  write_file_atomic(dir / "t.csv", labelled_csv(20));
  Table t = read_table(dir / "t.csv", "auto", 3);
  EXPECT_TRUE(torch::equal(t.values, expected_values(20)));
  EXPECT_TRUE(torch::equal(t.labels, torch::arange(20, torch::kInt64).remainder(3)));
  // Without a label column the labels stay in the values; a numeric first row is data under "auto".
  write_file_atomic(dir / "plain.csv", labelled_csv(20, ""));
  Table plain = read_table(dir / "plain.csv");
  EXPECT_EQ(plain.values.size(0), 20);
  EXPECT_EQ(plain.values.size(1), 4);
  EXPECT_FALSE(plain.labels.defined());
  EXPECT_EQ(read_table(dir / "plain.csv", "yes").values.size(0), 19);  // header = yes drops the first row
}

TEST(Table, ReadsGzippedCsvAndNpyWithALabelFile) {
  TempDir dir;
  const std::string text = labelled_csv(15);
  gzFile gz = gzopen((dir / "t.csv.gz").c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(gz);
  Table t = read_table(dir / "t.csv.gz", "auto", 3);
  EXPECT_TRUE(torch::equal(t.values, expected_values(15)));

  write_npy(dir / "x.npy", expected_values(15).to(torch::kFloat32));
  write_npy(dir / "y.npy", torch::arange(15, torch::kInt64).remainder(3));
  Table n = read_table(dir / "x.npy", "auto", -1, dir / "y.npy");
  EXPECT_TRUE(torch::allclose(n.values, expected_values(15)));
  EXPECT_TRUE(torch::equal(n.labels, t.labels));
}

TEST(Table, BadFilesFailWithOneLineNamingTheProblem) {
  TempDir dir;
  auto csv = [&](const std::string& name, const std::string& text) {
    write_file_atomic(dir / name, text);
    return dir / name;
  };
  EXPECT_THAT_ERROR(read_table(dir / "missing.csv"), "table '" + (dir / "missing.csv").string() + "' not found");
  EXPECT_THAT_ERROR(read_table(csv("word.csv", "1,2\n3,x\n")), "line 2, column 2: 'x' is not a number");
  EXPECT_THAT_ERROR(read_table(csv("empty.csv", "1,2\n3,\n")), "line 2, column 2: an empty cell is not a number");
  EXPECT_THAT_ERROR(read_table(csv("nan.csv", "1,2\n3,nan\n")), "line 2, column 2: 'nan' is not finite");
  EXPECT_THAT_ERROR(read_table(csv("ragged.csv", "1,2\n3,4,5\n")), "line 2 has 3 cells, line 1 has 2");
  EXPECT_THAT_ERROR(read_table(csv("none.csv", "a,b\n")), "has no rows of numbers");
  EXPECT_THAT_ERROR(read_table(csv("frac.csv", "1,0\n2,1.5\n"), "auto", 1), "line 2: label 1.5 is not a whole number >= 0");
  EXPECT_THAT_ERROR(read_table(csv("neg.csv", "1,0\n2,-1\n"), "auto", 1), "label -1 is not a whole number");
  EXPECT_THAT_ERROR(read_table(csv("range.csv", "1,0\n2,1\n"), "auto", 2), "data.label_column = 2 is out of range");
  write_npy(dir / "rank3.npy", torch::zeros({2, 3, 4}));
  EXPECT_THAT_ERROR(read_table(dir / "rank3.npy"), "must be a matrix [N, D], got shape [2, 3, 4]");
  torch::Tensor with_nan = torch::zeros({4, 2});
  with_nan[2][1] = std::numeric_limits<float>::quiet_NaN();
  write_npy(dir / "nan.npy", with_nan);
  EXPECT_THAT_ERROR(read_table(dir / "nan.npy"), "row 3, column 2 is not finite");
  write_npy(dir / "x.npy", torch::zeros({12, 2}));
  write_npy(dir / "short.npy", torch::zeros({11}, torch::kInt64));
  EXPECT_THAT_ERROR(read_table(dir / "x.npy", "auto", -1, dir / "short.npy"), "has 11 entries but table");
  write_file_atomic(dir / "few.csv", labelled_csv(kTableMinRows - 1));
  EXPECT_THAT_ERROR(make_dataset(table_options(dir / "few.csv")), "has 9 rows; at least 10 are needed");
  DataOptions no_path;
  no_path.name = "table";
  EXPECT_THAT_ERROR(make_dataset(no_path), "dataset 'table' needs data.path");
  DataOptions stray;
  stray.label_column = 2;
  EXPECT_THAT_ERROR(resolve(stray), "apply only to dataset 'table'");
}

TEST(Table, StandardisesWithTrainingRowsAndHoldsOutEveryFifth) {
  TempDir dir;
  write_file_atomic(dir / "t.csv", labelled_csv(50));
  DataOptions o = table_options(dir / "t.csv");
  auto dataset = make_dataset(o);
  ASSERT_EQ(dataset->dim(), 3);
  torch::Tensor values = expected_values(50);
  torch::Tensor held_mask = torch::arange(50).remainder(5) == 4;
  torch::Tensor train = values.index({~held_mask}), held = values.index({held_mask});
  torch::Tensor mean = train.mean(0), scale = train.std(0, false);
  at::Generator gen = make_generator(1);
  torch::Tensor rows = dataset->sample(1000, gen);  // all 40 training rows, in file order
  ASSERT_EQ(rows.size(0), 40);
  EXPECT_TRUE(torch::allclose(rows.to(torch::kFloat64), (train - mean) / scale, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(dataset->held_out().to(torch::kFloat64), (held - mean) / scale, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(dataset->to_data_units(rows.to(torch::kFloat64)), train, 1e-5, 1e-5));  // float32 rows
  EXPECT_TRUE(torch::allclose(dataset->to_model_units(train), rows, 1e-6, 1e-6));
  // Labels ride along with their rows: all 40 in file order, then 10 drawn by the same random numbers as
  // sample() draws them.
  const torch::Tensor train_labels = torch::arange(50).index({~held_mask}).remainder(3);
  EXPECT_EQ(dataset->classes(), 3);
  at::Generator all_gen = make_generator(1);
  EXPECT_TRUE(torch::equal(dataset->sample_labelled(1000, all_gen).labels, train_labels));
  at::Generator g1 = make_generator(2), g2 = make_generator(2), g3 = make_generator(2);
  LabelledPoints some = dataset->sample_labelled(10, g1);
  EXPECT_TRUE(torch::equal(some.points, dataset->sample(10, g2)));
  torch::Tensor index = torch::randperm(40, g3, torch::kInt64).slice(0, 0, 10);
  EXPECT_TRUE(torch::equal(some.labels, train_labels.index_select(0, index)));
  EXPECT_TRUE(torch::equal(some.points, rows.index_select(0, index)));

  // The recorded statistics rebuild the same dataset; statistics of the wrong length are refused.
  dataset->record(o);
  ASSERT_EQ(o.column_mean.size(), 3u);
  EXPECT_NEAR(o.column_scale[1], scale[1].item<double>(), 1e-12);
  EXPECT_TRUE(torch::equal(make_dataset(o)->sample(1000, gen), rows));
  o.column_mean.pop_back();
  EXPECT_THAT_ERROR(make_dataset(o), "need 3 entries each");
}

TEST(Table, EvaluationIsAgainstTheHeldOutRows) {
  TempDir dir;
  write_file_atomic(dir / "t.csv", labelled_csv(60));
  auto dataset = make_dataset(table_options(dir / "t.csv"));
  at::Generator gen = make_generator(0);
  // The held-out rows themselves are at distance 0; the training rows are exactly at the floor.
  SampleMetrics same = evaluate_samples(*dataset, dataset->held_out(), 3);
  EXPECT_NEAR(same.swd, 0.0, 1e-9);
  EXPECT_GT(same.swd_data_vs_data, 0.01);
  SampleMetrics train = evaluate_samples(*dataset, dataset->sample(1000, gen), 3);
  EXPECT_NEAR(train.swd, train.swd_data_vs_data, 1e-9);
  EXPECT_NEAR(train.swd_data_vs_data, same.swd_data_vs_data, 1e-9);
  // Shifted rows are worse than the floor.
  SampleMetrics shifted = evaluate_samples(*dataset, dataset->held_out() + 1.0, 3);
  EXPECT_GT(shifted.swd, 2 * shifted.swd_data_vs_data);
}

TEST(Table, CheckpointKeepsItsStandardisationAndSamplesInDataUnits) {
  TempDir dir;
  write_file_atomic(dir / "t.csv", labelled_csv(40));
  Config config = load_config("table", {"data.path=" + (dir / "t.csv").string(), "data.label_column=3", "train.steps=3",
                                        "model.width=16", "sample.n=8", "sample.nfe=4", "run.threads=1"});
  TrainedRun run = train_run(config, dir / "run", {false, true});
  ASSERT_EQ(run.config.data.column_mean.size(), 3u);
  // The file changes under the checkpoint: the stored statistics still decide the units.
  write_file_atomic(dir / "t.csv", labelled_csv(40, "") + "1000,1000,1000,0\n");
  LoadedModel loaded = load_trained(dir / "run" / "last.safetensors");
  EXPECT_EQ(loaded.config.data.column_mean, run.config.data.column_mean);
  EXPECT_EQ(loaded.config.data.column_scale, run.config.data.column_scale);
  torch::Tensor back = loaded.prepared.dataset->to_data_units(torch::zeros({1, 3})).to(torch::kFloat64);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(back[0][j].item<double>(), run.config.data.column_mean[static_cast<size_t>(j)], 1e-4);
  // `sample` writes data units: the CLI's samples are the model-unit ones mapped back (same seed).
  CliResult r = run_cli("sample -q --ckpt run/last.safetensors -o s.npy", dir.path());
  ASSERT_EQ(r.status, 0) << r.err;
  torch::Tensor s = read_npy(dir / "s.npy").to(torch::kFloat64);
  const Prepared& p = loaded.prepared;
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(loaded.config.run.seed), "sample"));
  torch::Tensor z = run_sampler(loaded.config.sample, sampling_score_fn(loaded.config, loaded.model, p, dir / "run"),
                                *p.process, 3, gen, true)
                        .samples.to(torch::kFloat64);
  ASSERT_EQ(s.sizes(), z.sizes());
  EXPECT_TRUE(torch::allclose(s, p.dataset->to_data_units(z), 1e-4, 1e-3));
  EXPECT_FALSE(torch::allclose(s, z, 1e-2, 1e-2));
}
