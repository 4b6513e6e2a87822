// scorediff eval: sample quality of a checkpoint or of a .npy of samples against a dataset, as JSON.
#include <fmt/core.h>

#include "cli/common.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff::cli {

void add_eval_command(CLI::App& app) {
  struct Args {
    std::string ckpt, samples, data, classifier;
    std::vector<std::string> sets;
    int64_t seed = 0, projections = 1000;
    int reference_sets = kReferenceSets;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Measure samples against a dataset: SWD, mode weights, NaN count, radius for points; FD-cls, KID-cls, "
              "class histogram and confident fraction (with the held-out floor) for images");
  auto* ckpt = cmd->add_option("--ckpt", args->ckpt, "checkpoint: sample it with its [sample] settings, then measure");
  auto* samples = cmd->add_option("--samples", args->samples, ".npy of samples [N, D]");
  ckpt->excludes(samples);
  cmd->add_option("--data", args->data, "dataset for --samples (" + join_names(datasets().names()) + ")");
  cmd->add_option("-s,--set", args->sets, "override a config key, e.g. --set 'data.weights=[0.5,0.5]'");
  cmd->add_option("--seed", args->seed, "seed of the reference data and projections")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--projections", args->projections, "SWD projections")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--reference-sets", args->reference_sets,
                  "fresh data sets the SWD and its data-vs-data floor are averaged over (points)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--classifier", args->classifier,
                  "images: classifier from train-classifier (default runs/classifier-<data>[-<size>].safetensors)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->callback([args] {
    require(!args->ckpt.empty() || !args->samples.empty(), "eval needs --ckpt or --samples");
    torch::Tensor x;
    std::shared_ptr<const ToyDataset> dataset;
    DataOptions data_options;
    if (!args->ckpt.empty()) {
      // The overrides come before the weights are chosen: --set sample.use_ema=false evaluates the raw ones.
      LoadedModel loaded = load_trained(args->ckpt, std::nullopt, args->sets);
      const Prepared& p = loaded.prepared;
      at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(args->seed), "sample"), p.train_data.device());
      x = run_sampler(loaded.config.sample, sampling_score_fn(loaded.config, loaded.model, p, run_dir_of(args->ckpt)),
                      *p.process, p.train_data.size(1), gen, args->quiet)
              .samples.to(torch::kCPU);
      dataset = p.dataset;
      data_options = loaded.config.data;
    } else {
      require(!args->data.empty(), "eval --samples needs --data (one of: {})", join_names(datasets().names()));
      Config config;
      Schema schema = config.schema();
      schema.set("data.name=" + args->data);
      for (const auto& s : args->sets) schema.set(s);
      config.validate();
      dataset = make_dataset(config.data);
      data_options = config.data;
      x = dataset->to_model_units(read_points(args->samples, dataset->dim(), dataset->images()));
    }
    fmt::print("{}\n", evaluate_model_samples(*dataset, data_options, x, static_cast<uint64_t>(args->seed),
                                              args->projections, args->reference_sets, args->classifier)
                           .dump());
  });
}

}  // namespace scorediff::cli
