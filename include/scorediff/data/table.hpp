// Any [N, D] table of numbers as a dataset (`data.name = table`): rows from a .npy or a CSV file (plain
// or gzipped), an optional integer label per row, every 5th row held out, columns standardised with
// statistics that the run's configuration (and so its checkpoint) keeps.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <string>

#include "scorediff/data/toy.hpp"

namespace scorediff {

struct Table {
  torch::Tensor values;  // [N, D] float64, every entry finite
  torch::Tensor labels;  // [N] int64 >= 0, or undefined when the table has none
};

// Reads `path`: a .npy matrix (any numeric dtype) or else CSV, gzipped or not. `header` = "auto" (the
// first row is a header when one of its cells is not a number), "yes" or "no". `label_column` >= 0
// takes that column out of the values as labels; `labels_path` (a .npy of N integers) gives them
// instead. Fails with one line naming the file, and the line and column where it can, on a wrong rank,
// a non-numeric or empty cell, NaN or Inf, rows of different lengths, non-integer or negative labels,
// or labels of another length.
Table read_table(const std::filesystem::path& path, const std::string& header = "auto", int64_t label_column = -1,
                 const std::filesystem::path& labels_path = {});

// The rows a table dataset holds out: row i when i % kTableHeldOutEvery == kTableHeldOutEvery - 1.
inline constexpr int64_t kTableHeldOutEvery = 5;
inline constexpr int64_t kTableMinRows = 10;

void register_table_dataset(Registry<DatasetFactory>& registry);

}  // namespace scorediff
