// scorediff encode: data to noise along the probability-flow ODE (Song et al. 2021, §4.3): the latents that
// `scorediff sample --init latents.npy --sampler ode-rk45 --set sample.denoise=false` decodes back.
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "cli/score_source.hpp"
#include "scorediff/core/progress.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/samplers/ode.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff::cli {

void add_encode_command(CLI::App& app) {
  struct Args {
    ScoreSourceArgs source;
    std::string input, out = "latents.npy", label;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "encode", "Probability-flow ODE from data to noise (adaptive Dormand-Prince): latents that sample --init decodes");
  add_score_source_options(cmd, args->source,
                           "override a [sample] key: rtol, atol, t_end (where the data sits), t_start or sigma_start "
                           "(where the latents sit; default the process' t_max), class, cfg");
  cmd->add_option("-i,--input", args->input, "points .npy [N, D] in data units")->required();
  cmd->add_option("-o,--out", args->out, "latents .npy [N, D], the sampler's state at the start time")->capture_default_str();
  CLI::Option* label = cmd->add_option("--class", args->label, "class-conditional models: the class(es) (sample.class)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->footer(
      "\nDecode with: scorediff sample --ckpt C --init latents.npy --sampler ode-rk45 --set sample.denoise=false\n"
      "(the same t_end, t_start, class and cfg; the final Tweedie step is not part of the ODE).");
  cmd->callback([args, label] {
    check_output_file(args->out);
    const torch::Tensor points = read_points(args->input);
    std::vector<std::string> sets{fmt::format("sample.n={}", points.size(0))};
    if (label->count() > 0) sets.push_back("sample.class=" + args->label);
    ScoreSource source = load_score_source(args->source, sets, {"sample."});
    const Config& config = source.loaded.config;
    const Prepared& p = source.loaded.prepared;
    require(points.size(1) == p.train_data.size(1), "--input '{}' has points of dimension {}, the model {}", args->input,
            points.size(1), p.train_data.size(1));
    Rk45SamplerOptions options;
    options.t_end = config.sample.t_end;
    options.t_start = editing(config.sample) ? start_time(config.sample, *p.process) : 0.0;
    options.rtol = config.sample.rtol;
    options.atol = config.sample.atol;
    Progress progress("encode ode-rk45", 1000, "step", args->quiet);
    auto start = std::chrono::steady_clock::now();
    SampleResult r = encode_ode_rk45(source.score, *p.process,
                                     p.dataset->to_model_units(points).to(p.train_data.device(), torch::kFloat32), options,
                                     [&progress](int64_t done, int64_t) { progress.update(done); });
    progress.finish(fmt::format("{} NFE", r.nfe));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_npy(args->out, r.samples.to(torch::kCPU));
    fmt::print("{}\n", nlohmann::json({{"latents", args->out},
                                        {"n", points.size(0)},
                                        {"nfe", r.nfe},
                                        {"seconds", seconds},
                                        {"score", source.analytic ? "analytic" : args->source.raw ? "raw" : "ema"}})
                           .dump());
  });
}

}  // namespace scorediff::cli
