// scorediff plot samples|curves|score-field: figures from files a run left behind.
#include <fmt/core.h>

#include <fstream>

#include "cli/common.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/pipeline/run_report.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/plot/figures.hpp"

namespace scorediff::cli {

void add_plot_command(CLI::App& app) {
  struct Args {
    std::string samples, data = "swiss-roll", log, ckpt, out, title;
    std::vector<std::string> sets;
    std::vector<double> sigmas;
    int64_t n = 2000;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plot", "Draw figures: samples next to data, loss curves, score fields");
  cmd->require_subcommand(1, 1);

  CLI::App* samples = cmd->add_subcommand("samples", "Samples (.npy) next to data");
  samples->add_option("--samples", args->samples, ".npy of 2-D samples")->required();
  samples->add_option("--data", args->data, "dataset (" + join_names(datasets().names()) + ")")->capture_default_str();
  samples->add_option("-s,--set", args->sets, "override a [data] key");
  samples->add_option("-o,--out", args->out, "output PNG")->required();
  samples->add_option("--title", args->title, "title of the samples panel");
  samples->callback([args] {
    check_output_file(args->out);
    Config config;
    Schema schema = config.schema();
    schema.set("data.name=" + args->data);
    for (const auto& s : args->sets) schema.set(s);
    config.validate();
    auto dataset = make_dataset(config.data);
    require(dataset->dim() == 2, "plot samples draws 2-D data; '{}' has dimension {}", args->data, dataset->dim());
    torch::Tensor x = read_points(args->samples, 2);
    at::Generator gen = make_generator(0);
    plot_samples_vs_data(args->out, dataset->sample(std::min<int64_t>(x.size(0), 5000), gen), x,
                         args->title.empty() ? fmt::format("samples ({})", x.size(0)) : args->title);
    fmt::print("{}\n", args->out);
  });

  CLI::App* curves = cmd->add_subcommand("curves", "Loss curves (total and per level) from train.jsonl");
  curves->add_option("--log", args->log, "train.jsonl of a run")->required();
  curves->add_option("-o,--out", args->out, "output PNG")->required();
  curves->callback([args] {
    check_output_file(args->out);
    std::ifstream in(args->log);
    require(in.good(), "log '{}' not found", args->log);
    std::vector<nlohmann::json> records;
    std::string line;
    int64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      auto record = nlohmann::json::parse(line, nullptr, false);
      if (!record.is_discarded() && record.contains("event")) continue;  // a restart, not a training record
      require(!record.is_discarded() && record.contains("step") && record.contains("loss") &&
                  record.contains("loss_per_level"),
              "'{}' line {} is not a train.jsonl record", args->log, number);
      records.push_back(record);
    }
    require(!records.empty(), "'{}' holds no records", args->log);
    std::vector<double> labels;
    auto config_path = std::filesystem::path(args->log).parent_path() / "config.toml";
    std::error_code ec;
    if (std::filesystem::exists(config_path, ec)) {
      Config config = load_config(config_path.string());
      labels = level_sigmas(config.objective, *make_process(config.process));
    } else {
      for (size_t l = 0; l < records.front()["loss_per_level"].size(); ++l) labels.push_back(NAN);
    }
    plot_loss_curves(args->out, records, labels, std::filesystem::path(args->log).parent_path().filename().string());
    fmt::print("{}\n", args->out);
  });

  CLI::App* field = cmd->add_subcommand("score-field", "Learned score field of a 2-D checkpoint at noise levels");
  field->add_option("--ckpt", args->ckpt, "checkpoint")->required();
  field->add_option("--sigma", args->sigmas, "noise levels (default: two across the process' range)")->check(finite());
  field->add_option("-o,--out", args->out, "output PNG")->required();
  field->callback([args] {
    check_output_file(args->out);
    LoadedModel loaded = load_trained(args->ckpt, true);
    const Prepared& p = loaded.prepared;
    require(p.train_data.size(1) == 2, "score-field draws 2-D models; this one has dimension {}", p.train_data.size(1));
    std::vector<double> sigmas = args->sigmas;
    if (sigmas.empty()) sigmas = {p.process->sigma_max() / 4, p.process->sigma_min() * 10};
    torch::Tensor data = p.train_data.to(torch::kCPU);
    ScoreFn score = model_score_fn(loaded.model, p.process);
    std::vector<ScoreFieldSpec> specs;
    auto density = kernel_density(data);
    for (double s : sigmas) {
      require(s > 0, "--sigma must be > 0, got {}", s);
      specs.push_back({fmt::format("#gs = {:.3g}", s), score, s, density, {}});
    }
    plot_score_fields(args->out, *p.process, bounding_range({data}), specs);
    fmt::print("{}\n", args->out);
  });
}

}  // namespace scorediff::cli
