// scorediff experiment NAME: reproduce a seed experiment into a directory (report.md, metrics.json, PNGs).
// scorediff demo: the main job, every foundation experiment into runs/demo with an index report.
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff::cli {
namespace {

struct ExperimentArgs {
  std::vector<std::string> sets, variants;
  int64_t seed = 0, threads = 1, seeds = 0;
  bool quiet = false, resume = false;
};

void add_experiment_options(CLI::App* cmd, ExperimentArgs& args) {
  cmd->add_option("-s,--set", args.sets, "override a key of the experiment's preset (repeatable)");
  cmd->add_option("--seed", args.seed, "seed for every random draw")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", args.threads, "intra-op threads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seeds", args.seeds,
                  "experiments that repeat each setting over seeds (auto-noise): how many, from --seed on (default: "
                  "the experiment's)")
      ->check(CLI::Range(int64_t{2}, int64_t{1000}));
  cmd->add_option("--variants", args.variants,
                  "experiments with named variants (fashion-ablation): run only these, comma-separated")
      ->delimiter(',');
  cmd->add_flag("-q,--quiet", args.quiet, "no progress output");
  cmd->add_flag("--resume", args.resume,
                "image experiments: continue or reuse the training under OUT/train (same configuration)");
}

ExperimentContext context(const ExperimentArgs& args, const std::filesystem::path& out) {
  ensure_output_dir(out);
  return {out, args.sets, args.seed, args.threads, args.quiet, args.resume, args.seeds, args.variants};
}

}  // namespace

void add_experiment_command(CLI::App& app) {
  struct Args {
    ExperimentArgs common;
    std::string name, out;
    bool list = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("experiment", "Reproduce a seed experiment: report.md, metrics.json and figures");
  cmd->add_option("name", args->name, "experiment (" + join_names(experiments().names()) + ")");
  cmd->add_option("-o,--out", args->out, "output directory (default runs/<name>)");
  cmd->add_flag("--list", args->list, "list the experiments");
  add_experiment_options(cmd, args->common);
  cmd->callback([args] {
    if (args->list) {
      for (const auto& name : experiments().names()) fmt::print("{:<14} {}\n", name, experiments().help(name));
      fmt::print("\nSamplers (--set sample.sampler=NAME), from their specs:\n{}", describe_samplers());
      return;
    }
    require(!args->name.empty(), "experiment needs a name; valid: {}", join_names(experiments().names()));
    const ExperimentEntry& entry = experiments().get(args->name);
    if (args->common.seeds > 0 && !entry.repeats_seeds) {
      std::vector<std::string> repeating;
      for (const auto& name : experiments().names())
        if (experiments().get(name).repeats_seeds) repeating.push_back(name);
      fail("experiment {} runs one seed (--seed); --seeds N is for {}", args->name, join_names(repeating));
    }
    require(args->common.variants.empty() || entry.has_variants, "experiment {} has no named variants (--variants)",
            args->name);
    std::filesystem::path out = args->out.empty() ? std::filesystem::path("runs") / args->name : std::filesystem::path(args->out);
    nlohmann::json metrics = entry.run(context(args->common, out));
    fmt::print("{}\n", nlohmann::json({{"experiment", args->name}, {"report", (out / "report.md").string()}, {"metrics", metrics}}).dump());
  });
}

void add_demo_command(CLI::App& app) {
  struct Args {
    ExperimentArgs common;
    std::string out = "runs/demo";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("demo", "The main job: the circle, mixing and Swiss-roll experiments end to end");
  cmd->add_option("-o,--out", args->out, "output directory")->capture_default_str();
  add_experiment_options(cmd, args->common);
  cmd->callback([args] {
    require(args->common.seeds == 0, "demo runs each experiment on one seed (--seed); --seeds N is for `experiment`");
    require(args->common.variants.empty(), "demo runs every experiment whole; --variants is for `experiment`");
    std::filesystem::path out = args->out;
    ensure_output_dir(out);
    auto start = std::chrono::steady_clock::now();
    Report index("scorediff demo");
    index.paragraph("Three experiments of the seed documents, reproduced end to end on toy data: train a score model "
                    "by denoising score matching, sample it, measure the samples, and draw the results.");
    nlohmann::json all;
    for (const std::string name : {"circle", "mog-mixing", "swiss-roll"}) {
      if (!args->common.quiet) fmt::print(stderr, "demo: experiment {}\n", name);
      nlohmann::json metrics = experiments().get(name).run(context(args->common, out / name));
      all[name] = metrics;
      index.heading(fmt::format("[{}]({}/report.md): {}", name, name, experiments().help(name)));
      if (name == "circle")
        index.paragraph(fmt::format("Mean cosine between the learned and exact score at σ = 0.1 near the data: **{}**.",
                                    num(metrics["score_cosine"].get<double>())))
            .image("circle/score_field.png", "Learned and exact score fields");
      if (name == "mog-mixing")
        index.paragraph(fmt::format(
                  "Mode weights (true {:.2f}): Langevin exact {:.2f}, annealed exact {:.2f}, Langevin trained {:.2f}, "
                  "annealed trained {:.2f}.",
                  fmt::join(metrics["true_weights"].get<std::vector<double>>(), "/"),
                  fmt::join(metrics["langevin_analytic"]["weights"].get<std::vector<double>>(), "/"),
                  fmt::join(metrics["ald_analytic"]["weights"].get<std::vector<double>>(), "/"),
                  fmt::join(metrics["langevin_trained"]["weights"].get<std::vector<double>>(), "/"),
                  fmt::join(metrics["ald_trained"]["weights"].get<std::vector<double>>(), "/")))
            .image("mog-mixing/mixing.png", "Langevin vs annealed Langevin");
      if (name == "swiss-roll")
        index.paragraph(fmt::format("SWD {} against {} for two data sets of the same size; {} NaN; max radius ratio {}.",
                                    num(metrics["swd"].get<double>()), num(metrics["swd_data_vs_data"].get<double>()),
                                    metrics["nan_count"].get<int64_t>(), num(metrics["max_radius_ratio"].get<double>())))
            .image("swiss-roll/samples.png", "Swiss roll: data and samples");
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    index.paragraph(fmt::format("Total time {} on {} thread(s).", format_duration(seconds), args->common.threads));
    index.save(out / "report.md");
    fmt::print("{}\n", nlohmann::json({{"report", (out / "report.md").string()}, {"seconds", seconds}, {"metrics", all}}).dump());
    if (!args->common.quiet) fmt::print(stderr, "demo: done in {}; open {}\n", format_duration(seconds), (out / "report.md").string());
  });
}

}  // namespace scorediff::cli
