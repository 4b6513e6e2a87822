// scorediff inpaint: completes masked held-out images with the predictor–corrector sampler and writes
// originals | masked | completed as one PNG grid.
#include <fmt/core.h>

#include "cli/common.hpp"
#include "cli/score_source.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/pipeline/image_tasks.hpp"

namespace scorediff::cli {

void add_inpaint_command(CLI::App& app) {
  struct Args {
    ScoreSourceArgs source;
    std::string mask = "right", out = "inpaint.png", npy;
    int64_t images = 16, nfe = 0;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("inpaint", "Complete masked held-out images with the PC sampler (image models)");
  add_score_source_options(cmd, args->source, "override a sample.* key (predictor, corrector, snr, corrector_steps)");
  cmd->add_option("--images", args->images, "held-out images to complete")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--mask", args->mask, "unknown region: " + join_names(mask_kinds()))->capture_default_str();
  cmd->add_option("--nfe", args->nfe, "score evaluations (0 = the pc sampler's default)")->check(CLI::NonNegativeNumber);
  cmd->add_option("-o,--out", args->out, "PNG grid: original | masked | completed per row")->capture_default_str();
  cmd->add_option("--npy", args->npy, "also write the completed images .npy [N, C*H*W]");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->callback([args] {
    require(args->source.analytic.empty(), "inpaint needs a trained image model (--ckpt), not --analytic");
    check_mask_kind(args->mask);  // before the model and data load
    check_output_file(args->out);
    if (!args->npy.empty()) check_output_file(args->npy);
    std::vector<std::string> sets;
    if (args->nfe > 0) sets.push_back(fmt::format("sample.nfe={}", args->nfe));
    ScoreSource source = load_score_source(args->source, sets, {"sample."});
    const Config& config = source.loaded.config;
    const Prepared& p = source.loaded.prepared;
    const auto seed = static_cast<uint64_t>(config.run.seed);
    torch::Tensor originals = held_out_images(*p.dataset, args->images, seed);
    at::Generator mask_gen = make_generator(derive_seed(seed, "mask"));
    torch::Tensor mask = image_mask(args->mask, p.dataset->image_shape(), args->images, mask_gen);
    at::Generator gen = make_generator(derive_seed(seed, "inpaint"), p.train_data.device());
    InpaintResult r = inpaint_images(config, p, source.score, originals, mask, gen, args->quiet);
    // Unknown pixels shown at the middle of the range so the mask reads as grey.
    torch::Tensor masked = originals * mask + mid_grey(p.dataset->pixel_range()) * (1 - mask);
    save_comparison_grid(args->out, *p.dataset, {originals, masked, r.completed});
    if (!args->npy.empty()) write_npy(args->npy, r.completed);
    fmt::print("{}\n", nlohmann::json{{"grid", args->out}, {"images", args->images}, {"mask", args->mask}, {"nfe", r.nfe},
                                      {"mse_unknown", r.mse_unknown}}
                           .dump());
  });
}

}  // namespace scorediff::cli
