// scorediff sample: draw samples from a checkpoint (EMA weights by default) into a .npy file.
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "cli/score_source.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/samplers/registry.hpp"
#include "scorediff/pipeline/sampling_score.hpp"
#include "scorediff/pipeline/training.hpp"

namespace scorediff::cli {
namespace {

// Where the labels of class-conditional samples go: samples.npy -> samples.labels.npy.
std::string labels_file(const std::string& out) {
  const std::filesystem::path path(out);
  return (path.parent_path() / (path.stem().string() + ".labels.npy")).string();
}

}  // namespace

namespace {

// A folder of PNGs as points [N, C·H·W] in the data's pixel range, resized to data.image_size when it is set.
torch::Tensor folder_points(ImageSet folder, const std::string& dir, const Config& config, const ToyDataset& dataset) {
  const std::vector<int64_t> shape = dataset.image_shape();
  require(shape.size() == 3, "--init '{}' is a folder of images, but this model's data '{}' are not images", dir,
          config.data.name);
  if (config.data.image_size > 0 && folder.images.size(2) != config.data.image_size)
    folder = resize_images(folder, config.data.image_size);
  const std::vector<int64_t> own = folder.images.sizes().slice(1).vec();
  require(own == shape, "--init '{}' holds {}x{}x{} images, the model {}x{}x{}", dir, own[2], own[1], own[0], shape[2],
          shape[1], shape[0]);
  return unit_to_range(folder.images, config.data.pixels).flatten(1);
}

}  // namespace

void add_sample_command(CLI::App& app) {
  struct Args {
    ScoreSourceArgs source;
    std::string out = "samples.npy", sampler, label, init;
    int64_t n = -1, nfe = 0;
    double cfg = 0, t_start = 0, sigma_start = 0;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("sample", "Sample from a trained checkpoint (or an exact score); writes .npy and reports NFE");
  add_score_source_options(cmd, args->source, "override a [sample] key, e.g. --set sample.eps=1e-5 (any key with --analytic)");
  cmd->add_option("-o,--out", args->out, "output .npy")->capture_default_str();
  CLI::Option* sampler = cmd->add_option("--sampler", args->sampler, "sampler (see below); default from the config");
  cmd->add_option("-n,--n", args->n, "number of samples (sample.n)")->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  CLI::Option* nfe = cmd->add_option("--nfe", args->nfe, "score evaluations for reverse-time samplers (sample.nfe; >= 1)");
  CLI::Option* label = cmd->add_option("--class", args->label,
                                      "class-conditional models (sample.class): all, none, k or k1,k2,...; the labels "
                                      "go to <out>.labels.npy");
  CLI::Option* cfg = cmd->add_option("--cfg", args->cfg, "classifier-free guidance weight w (sample.cfg)")
                         ->check(CLI::Range(0.0, 100.0));
  CLI::Option* init = cmd->add_option("--init", args->init,
                                     "start from these points .npy [N, D] (N samples): the initial state itself (saved "
                                     "noise, or the latents of `scorediff encode`), or, with --t-start / --sigma-start, "
                                     "points in data units to edit (SDEdit); for image models also a folder of PNGs "
                                     "(resized to data.image_size when it is set)");
  CLI::Option* t_start = cmd->add_option("--t-start", args->t_start,
                                        "SDEdit: noise the --init points to this time and sample from there (sample.t_start)")
                             ->check(CLI::PositiveNumber & finite());
  CLI::Option* sigma_start = cmd->add_option("--sigma-start", args->sigma_start,
                                            "SDEdit: the same by noise level (sample.sigma_start)")
                                 ->check(CLI::PositiveNumber & finite());
  t_start->excludes(sigma_start);
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->footer("\nSamplers (sample.sampler), from their specs:\n" + describe_samplers());
  cmd->callback([args, nfe, sampler, label, cfg, init, t_start, sigma_start] {
    check_output_file(args->out);
    std::vector<std::string> sets;
    if (sampler->count() > 0) sets.push_back("sample.sampler=" + args->sampler);
    if (args->n >= 0) sets.push_back(fmt::format("sample.n={}", args->n));
    if (label->count() > 0) sets.push_back("sample.class=" + args->label);
    if (t_start->count() > 0) sets.push_back(fmt::format("sample.t_start={}", args->t_start));
    if (sigma_start->count() > 0) sets.push_back(fmt::format("sample.sigma_start={}", args->sigma_start));
    torch::Tensor points;
    ImageSet folder;  // --init as a folder of PNGs: converted once the model's pixel range is known
    if (init->count() > 0) {
      const bool is_folder = std::filesystem::is_directory(args->init);
      if (is_folder) folder = read_png_folder(args->init);
      else points = read_points(args->init);
      const int64_t count = is_folder ? folder.size() : points.size(0);
      require(args->n < 0 || args->n == count, "-n {} and --init '{}' of {} points disagree", args->n, args->init, count);
      sets.push_back(fmt::format("sample.n={}", count));
    }
    if (cfg->count() > 0) sets.push_back(fmt::format("sample.cfg={}", args->cfg));
    if (nfe->count() > 0) {
      require(args->nfe >= 1, "--nfe must be >= 1, got {}", args->nfe);
      sets.push_back(fmt::format("sample.nfe={}", args->nfe));
    }
    ScoreSource source = load_score_source(args->source, sets, {"sample."});
    const Config& config = source.loaded.config;
    const Prepared& p = source.loaded.prepared;
    auto start = std::chrono::steady_clock::now();
    torch::Tensor initial;
    if (folder.size() > 0) points = folder_points(folder, args->init, config, *p.dataset);
    if (points.defined()) {
      require(points.size(1) == p.train_data.size(1), "--init '{}' has points of dimension {}, the model {}", args->init,
              points.size(1), p.train_data.size(1));
      initial = editing(config.sample) ? p.dataset->to_model_units(points) : points;
    }
    SampleResult result = draw_samples(config, source.score, p, args->quiet, initial);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_npy(args->out, p.dataset->to_data_units(result.samples.to(torch::kCPU)));
    nlohmann::json report{{"samples", args->out}};
    if (!source.analytic) {
      const torch::Tensor labels = sampling_labels(config, *source.loaded.model);
      if (labels.defined()) {
        const std::string labels_path = labels_file(args->out);
        write_npy(labels_path, labels);
        report["labels"] = labels_path;
      }
    }
    report["n"] = result.samples.size(0);
    report["sampler"] = config.sample.sampler;
    report["nfe"] = result.nfe;
    report["seconds"] = seconds;
    report["score"] = source.analytic ? "analytic" : args->source.raw ? "raw" : "ema";
    report["step"] = source.loaded.step;
    fmt::print("{}\n", report.dump());
  });
}

}  // namespace scorediff::cli
