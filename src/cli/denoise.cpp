// scorediff denoise: Tweedie's posterior mean E[x₀ | x̃] (and, with --covariance, the second-order
// posterior covariance) for noisy points at a known noise level (seed 002 Lemma 3).
#include <fmt/core.h>

#include "cli/common.hpp"
#include "cli/score_source.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/pipeline/image_tasks.hpp"
#include "scorediff/process/tweedie.hpp"

namespace scorediff::cli {

void add_denoise_command(CLI::App& app) {
  struct Args {
    ScoreSourceArgs source;
    std::string input, out = "denoised.npy", covariance, grid = "denoise.png";
    double sigma = 0;
    int64_t images = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("denoise", "Tweedie denoising of noisy points: posterior mean (and covariance)");
  add_score_source_options(cmd, args->source, "override a config key (any key with --analytic)");
  auto* input = cmd->add_option("-i,--input", args->input, "noisy points .npy [N, D]");
  auto* images = cmd->add_option("--images", args->images,
                                 "image models: noise this many held-out images at --sigma and denoise them")
                     ->check(CLI::PositiveNumber);
  input->excludes(images);
  cmd->add_option("--grid", args->grid, "with --images: PNG grid clean | noisy | denoised per row")->capture_default_str();
  cmd->add_option("--sigma", args->sigma, "noise level of the input")->required()->check(CLI::PositiveNumber & finite());
  cmd->add_option("-o,--out", args->out, "posterior means .npy [N, D]")->capture_default_str();
  cmd->add_option("--covariance", args->covariance, "also write posterior covariances .npy [N, D, D]");
  cmd->callback([args] {
    check_output_file(args->out);
    if (!args->covariance.empty()) check_output_file(args->covariance);
    require(!args->input.empty() || args->images > 0, "denoise needs --input or --images");
    ScoreSource source = load_score_source(args->source, {}, {"data."});
    const Prepared& p = source.loaded.prepared;
    if (args->images > 0) {
      check_output_file(args->grid);
      const auto seed = static_cast<uint64_t>(source.loaded.config.run.seed);
      torch::Tensor clean = held_out_images(*p.dataset, args->images, seed);
      at::Generator gen = make_generator(derive_seed(seed, "denoise"), p.train_data.device());
      DenoiseResult r = denoise_images(p, source.score, clean, args->sigma, gen);
      write_npy(args->out, r.denoised);
      save_comparison_grid(args->grid, *p.dataset, {r.clean, r.noisy, r.denoised});
      fmt::print("{}\n", nlohmann::json{{"denoised", args->out}, {"grid", args->grid}, {"images", args->images},
                                        {"sigma", args->sigma}, {"psnr_noisy_db", r.psnr_noisy},
                                        {"psnr_denoised_db", r.psnr_denoised}}
                             .dump());
      return;
    }
    torch::Tensor x = read_points(args->input, p.train_data.size(1));
    const NoiseProcess& process = *p.process;
    require(args->sigma >= process.sigma_min() && args->sigma <= process.sigma_max(),
            "--sigma {} is outside the model's noise range [{}, {}]", args->sigma, process.sigma_min(), process.sigma_max());
    torch::Tensor t = torch::full({x.size(0)}, process.t_at_sigma(args->sigma), torch::kFloat32);
    torch::Tensor mean;
    {
      torch::NoGradGuard no_grad;
      mean = tweedie_denoise(source.score, process, x, t);
    }
    write_npy(args->out, mean);
    nlohmann::json result = {{"denoised", args->out}, {"n", x.size(0)}, {"sigma", args->sigma}};
    if (!args->covariance.empty()) {
      torch::Tensor cov = tweedie_covariance(source.score, process, x.to(torch::kFloat64), t.to(torch::kFloat64));
      write_npy(args->covariance, cov);
      result["covariance"] = args->covariance;
      result["mean_posterior_std"] = cov.diagonal(0, 1, 2).clamp_min(0).sqrt().mean().item<double>();
    }
    fmt::print("{}\n", result.dump());
  });
}

}  // namespace scorediff::cli
