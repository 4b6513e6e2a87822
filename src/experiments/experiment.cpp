#include "scorediff/experiments/experiment.hpp"

#include <algorithm>

#include "scorediff/core/runtime.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"

namespace scorediff {

nlohmann::json run_few_step(const ExperimentContext& context);        // few_step.cpp
nlohmann::json run_few_step_mnist(const ExperimentContext& context);  // few_step.cpp

void register_builtins(Registry<ExperimentEntry>& r) {
  r.add("circle", {run_circle, "circle"}, "seed 000: learned score field on a circle vs the exact one");
  r.add("mog-mixing", {run_mog_mixing, "mog2"}, "seed 000: Langevin vs annealed Langevin on a 1/5-4/5 mixture");
  r.add("swiss-roll", {run_swiss_roll, "swiss-roll"}, "seed 001: DSM + annealed Langevin on the Swiss roll");
  r.add("objectives", {run_objectives, "mog2"},
        "seeds 001-004: ESM, ISM, SSM, SSM-VR, DSM (3 kernels), SURE for equal wall time on mog2 and the Swiss roll");
  r.add("cost-vs-dim", {run_cost_vs_dim, "mog2"}, "seed 001: seconds per step of ISM, SSM and DSM for D = 2 … 512");
  r.add("noise-levels", {run_noise_levels, "swiss-roll"}, "seed 001 ex. 2: single-σ DSM at σ = 0.1, 0.3, 0.5, 1");
  r.add("weighting", {run_weighting, "swiss-roll"}, "seed 001 ex. 3: uniform vs σ² vs SNR weighting, loss per scale");
  r.add("ebm", {run_ebm, "mog2"}, "seed 002: energy model by DSM on mog2 and two moons, exp(-E)/Z, NLL");
  r.add("ebm-cd", {run_ebm_cd, "mog2-cd"},
        "seed 002: energy MLP on mog2 by DSM, by contrastive divergence, and by CD with MH moves: mode weight, NLL");
  r.add("ebm-mnist", {run_ebm_mnist, "mnist-cd"},
        "seed 002: energy CNN by contrastive divergence on MNIST: Langevin samples, denoising, OOD AUROC vs Fashion-MNIST");
  r.add("few-step", {run_few_step, "swiss-roll-edm"},
        "issue 25: SWD against 1-35 NFE: EDM teacher samplers, flow (Euler, Heun), 2-rectified flow, consistency model");
  r.add("few-step-mnist", {run_few_step_mnist, "mnist"},
        "issue 25: a consistency model distilled from the mnist preset, FD-cls at 1-4 NFE against the teacher at 10-35");
  r.add("samplers", {run_samplers, "swiss-roll-vp"},
        "seed 003: SWD vs NFE of every reverse-time sampler, exact 8-Gaussians score and a trained Swiss-roll model");
  r.add("likelihood", {run_likelihood, "swiss-roll-vp"},
        "seed 003: PF-ODE NLL (exact and Hutchinson) of Gaussians and mog2 against the closed form");
  r.add("fashion-coverage", {run_fashion_coverage, "fashion-mnist"},
        "seed 000: the default Fashion-MNIST model covers all ten classes (histogram, FD-cls, KID-cls, sorted grid)");
  r.add("fashion-collapse", {run_fashion_collapse, "fashion-ncsn"},
        "seed 000: Fashion-MNIST with the seed's NCSN set-up (and its fix): class histogram along training");
  r.add("fashion-guidance", {run_fashion_guidance, "fashion-mnist"},
        "autoguidance for the 8 000-step preset (fashion-coverage's until stop 53), chosen on a selection seed");
  r.add("fashion-ablation", {run_fashion_ablation, "fashion-mnist", false, true},
        "issue 26: levers for the fashion-mnist preset's FD-cls at a fixed wall time, on a selection seed (--variants)");
  r.add("mnist-ema", {run_mnist_ema, "mnist"}, "seed 000 Table 1: FD-cls of raw vs EMA weights along MNIST training");
  r.add("eps-t-sweep", {run_eps_t_sweep, "mnist-ncsn"},
        "seed 000 Figure 1: annealed Langevin on MNIST for step eps x steps per level T, sample grid and FD-cls per cell");
  r.add("mnist-mlp", {run_mnist_mlp, "mnist-mlp"}, "seed 001 ex. 4: DSM with an MLP on flattened MNIST, annealed Langevin");
  r.add("auto-noise", {run_auto_noise, "swiss-roll", true},
        "seed 001 §9: sigma_max, sigma_min, levels and the Langevin step from the data vs the preset, Swiss roll and two moons");
  r.add("lambda-t", {run_lambda_t, "swiss-roll-vp"},
        "seed 003: lambda(t) = s^2, g^2 (uniform t and importance sampled), EDM's, on the Swiss roll: SWD and PF-ODE NLL");
  r.add("ncsn-ddpm", {run_ncsn_ddpm, "swiss-roll"},
        "seed 002: NCSN (ladder, annealed Langevin) vs DDPM (VP, eps, ancestral) on the Swiss roll: SWD, NFE, wall time");
  r.add("ncsn-ddpm-mnist", {run_ncsn_ddpm_mnist, "mnist-ncsn"},
        "seed 002: NCSN vs DDPM with the same U-Net and budget on MNIST: FD-cls, class coverage, NFE, wall time");
  r.add("memorisation", {run_memorisation, "mnist"},
        "seed 000 future work: the MNIST U-Net on 32 ... 9000 training digits, near-copies of training images per size");
  r.add("tables", {run_tables, "table"},
        "seed 000 future work: breast cancer, wine and 8x8 digits tables (python3-sklearn) against their held-out rows");
  r.add("inpainting", {run_inpainting, "mnist"}, "half-masked held-out digits completed by the PC sampler, next to the originals");
  r.add("conditional-2d", {run_conditional_2d, "conditional-2d"},
        "issue 24: a class-conditional model of the 8-Gaussian mixture; each class on its mode, sharpened by CFG");
  r.add("conditional-mnist", {run_conditional_mnist, "mnist"},
        "issue 24: class-conditional MNIST U-Net: label accuracy, FD-cls per class against CFG weight and classifier guidance");
  r.add("sdedit", {run_sdedit, "mnist"},
        "issue 24: SDEdit of coarsened MNIST digits, distance to the guide and FD-cls against sigma_start; encode/decode");
  r.add("sdedit-fashion", {run_sdedit_fashion, "fashion-mnist"},
        "issue 24: sdedit on Fashion-MNIST (the preset at 3 000 steps): distance and FD-cls against sigma_start; encode/decode");
  r.add("conditional-fashion", {run_conditional_fashion, "fashion-mnist"},
        "issue 24: class-conditional Fashion-MNIST U-Net: label accuracy, FD-cls per class against CFG weight and classifier guidance");
}

const Registry<ExperimentEntry>& experiments() { return builtin_registry<ExperimentEntry>("experiment"); }

Config experiment_config(const std::string& preset, const ExperimentContext& context,
                         const std::vector<std::string>& defaults, const std::vector<std::string>& forced) {
  std::vector<std::string> sets = {fmt::format("run.seed={}", context.seed),
                                   fmt::format("run.threads={}", context.threads)};
  sets.insert(sets.end(), defaults.begin(), defaults.end());
  sets.insert(sets.end(), context.sets.begin(), context.sets.end());
  sets.insert(sets.end(), forced.begin(), forced.end());
  return load_config(preset, sets);
}

std::vector<std::string> documented_preset(const std::string& preset, const std::vector<std::string>& defaults) {
  // Before stop 47: MNIST 3 000 steps in float32 under a constant learning rate, Fashion-MNIST 8 000 constant in
  // the NCHW layout (until stop 50) with EDM's σ_data 0.5 (until stop 57), both sampled by the deterministic Heun
  // sampler (no churn; pinned only where the experiment keeps the preset's sampler, since another sampler would
  // warn that it does not read the key; a user's --set sample.sampler on such an experiment gets that warning).
  std::vector<std::string> sets;
  if (preset == "mnist") sets = {"train.steps=3000", "train.schedule=constant", "model.conv_precision=float32"};
  if (preset == "fashion-mnist")
    sets = {"train.steps=8000", "train.schedule=constant", "model.channels_last=false", "model.sigma_data=0.5",
            "objective.sigma_data=0.5"};
  const bool own_sampler = std::any_of(defaults.begin(), defaults.end(),
                                       [](const std::string& s) { return s.rfind("sample.sampler=", 0) == 0; });
  if (!sets.empty() && !own_sampler) sets.push_back("sample.s_churn=0");
  sets.insert(sets.end(), defaults.begin(), defaults.end());
  return sets;
}

void write_metrics(const ExperimentContext& context, const nlohmann::json& metrics) {
  write_file_atomic(context.out / "metrics.json", metrics.dump(2) + "\n");
}

ImageRun train_image_run(const Config& config, const ExperimentContext& context) {
  set_threads(static_cast<int>(context.threads), Workload::Convolution);  // the classifier, if it must be trained
  LoadedClassifier classifier = ensure_classifier(*make_dataset(config.data), config.data, context.quiet);
  return {std::move(classifier), train_experiment_run(config, context)};
}

TrainedRun train_experiment_run(const Config& config, const ExperimentContext& context, const std::string& sub) {
  TrainRunOptions options;
  options.quiet = context.quiet;
  std::error_code ec;
  options.resume = context.resume && std::filesystem::exists(context.out / sub / "last.safetensors", ec);
  return train_run(config, context.out / sub, options);
}

}  // namespace scorediff
