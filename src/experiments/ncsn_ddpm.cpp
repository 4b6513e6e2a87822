// Seed 002: NCSN and DDPM are two discretisations of one idea (Song et al. 2021 write them as the VE and
// the VP SDE). Both are trained on the same data with the same network, steps, batch and learning rate:
// NCSN (Song & Ermon 2019) with its geometric noise ladder, σ²-weighted DSM and annealed Langevin
// dynamics; DDPM (Ho et al. 2020) with the VP process (β 0.1 → 20), the ε-parametrisation and its simple
// loss (σ² weighting of the score loss, t uniform) and ancestral sampling. Each samples at the NCSN
// sampler's NFE (levels × steps per level) and at a tenth of it; `ncsn-ddpm` measures SWD on the Swiss
// roll, `ncsn-ddpm-mnist` FD-cls and class coverage on MNIST.
#include <torch/torch.h>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/experiments/toolkit.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

// The DDPM side: the VP process of Ho et al. (β linear from 0.1 to 20 over t ∈ [0, 1], Song et al.'s
// continuous form), ε-parametrised, t uniform, sampled by the ancestral sampler from the prior.
const std::vector<std::string> kDdpm = {"process.name=vp",      "process.beta_min=0.1",
                                        "process.beta_max=20",  "model.param=eps",
                                        "objective.sigma_sampling=time", "objective.weighting=sigma2",
                                        "sample.sampler=ancestral",      "sample.init=prior"};

// The sampler settings of each side at a given NFE: NCSN keeps its levels and spends nfe/levels
// Langevin steps on each; DDPM takes nfe ancestral steps.
Config at_nfe(Config config, int64_t nfe) {
  if (config.sample.sampler == "ald")
    config.sample.steps_per_level = std::max<int64_t>(1, nfe / config.process.levels);
  else
    config.sample.nfe = nfe;
  return config;
}

// What makes the comparison fair, checked rather than assumed: the two configurations differ only in
// process, objective, parametrisation and sampler.
void require_same_budget(const Config& a, const Config& b) {
  require(a.train.steps == b.train.steps && a.train.batch == b.train.batch && a.train.lr == b.train.lr &&
              a.data.name == b.data.name && a.data.n_train == b.data.n_train && a.model.name == b.model.name &&
              a.model.width == b.model.width && a.model.depth == b.model.depth &&
              a.model.channels == b.model.channels,
          "ncsn-ddpm: the NCSN and DDPM configurations must share data, network and training budget");
}

// The NCSN sampler's NFE, levels × steps per level, at which both sides sample first.
int64_t ncsn_nfe(const Config& ncsn) { return ncsn.sample.steps_per_level * ncsn.process.levels; }

struct Side {
  std::string key, label;
  Config config;
};

std::vector<Side> sides(const std::string& ncsn_preset, const std::string& ddpm_preset, const ExperimentContext& ctx,
                        const std::vector<std::string>& defaults) {
  Config ncsn = experiment_config(ncsn_preset, ctx, defaults);
  require(ncsn.sample.sampler == "ald" && ncsn.process.name == "ladder",
          "ncsn-ddpm: the NCSN side must use process 'ladder' and sampler 'ald'");
  Config ddpm = experiment_config(ddpm_preset, ctx, defaults, kDdpm);
  ddpm.sample.nfe = ncsn_nfe(ncsn);
  require_same_budget(ncsn, ddpm);
  return {{"ncsn", "NCSN: σ ladder, annealed Langevin", ncsn}, {"ddpm", "DDPM: VP, ε, ancestral", ddpm}};
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string budget_text(const Config& c, const TrainedRun& run) {
  return fmt::format("{} steps of batch {} at learning rate {}, {} parameters", c.train.steps, c.train.batch,
                     num(c.train.lr), run.parameters);
}

// The side-by-side in words, from the measured figures (`value` holds the metric per "<side>_<full|tenth>").
std::string verdict(const nlohmann::json& metrics, const std::string& value, const std::string& name, int64_t full) {
  auto at = [&](const char* key) { return metrics[key][value].get<double>(); };
  std::string text = fmt::format(
      "At {} NFE, {} is {} for NCSN and {} for DDPM; at a tenth of the NFE, {} and {}.", full, name, num(at("ncsn_full")),
      num(at("ddpm_full")), num(at("ncsn_tenth")), num(at("ddpm_tenth")));
  if (at("ncsn_tenth") > at("ddpm_tenth") && at("ncsn_tenth") / at("ncsn_full") > at("ddpm_tenth") / at("ddpm_full"))
    text += " Cutting the steps costs NCSN more: annealed Langevin relies on each level's chain reaching that level's "
            "distribution, and with a tenth of the steps at the same step size it stops short, while each ancestral "
            "step draws from the Gaussian posterior the score defines, so fewer, larger steps cost DDPM only their "
            "discretisation error.";
  return text;
}

}  // namespace

nlohmann::json run_ncsn_ddpm(const ExperimentContext& ctx) {
  std::vector<Side> both = sides("swiss-roll", "swiss-roll-vp", ctx, {});
  const int64_t full = ncsn_nfe(both[0].config);
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  Checks checks;
  Figure figure(ctx.out / "samples.png", 4 * 330, 360, 4, 1);
  int panel = 1;
  double floor = 0;
  std::string budget;
  for (const Side& side : both) {
    TrainedRun run = train_run(side.config, ctx.out / side.key, {false, ctx.quiet});
    budget = budget_text(side.config, run);
    for (int64_t nfe : {full, full / 10}) {
      Config config = at_nfe(run.config, nfe);
      // The same stream for every row: the samplers start from their own priors, drawn from the same seed.
      Sampled s = sample_and_measure(config, run.prepared, run.ema_model, ctx.quiet, "ncsn-ddpm");
      floor = s.metrics.swd_data_vs_data;
      const double ratio = s.metrics.swd / floor;
      const std::string key = side.key + (nfe == full ? "_full" : "_tenth");
      metrics[key] = {{"swd", s.metrics.swd},           {"swd_floor", floor},
                      {"swd_ratio", ratio},             {"nfe", s.result.nfe},
                      {"nan_count", s.metrics.nan_count}, {"train_seconds", run.seconds},
                      {"sample_seconds", s.seconds},    {"ms_per_sample", 1e3 * s.seconds / config.sample.n}};
      rows.push_back({side.label, std::to_string(s.result.nfe), num(s.metrics.swd), num(ratio), num(run.seconds),
                      num(s.seconds), num(1e6 * s.seconds / config.sample.n)});
      if (nfe == full) {
        checks.at_most("swd_ratio_" + side.key, ratio, 2.0);
        checks.equal("nan_count_" + side.key, static_cast<double>(s.metrics.nan_count), 0);
      }
      torch::Tensor data = run.prepared.train_data.cpu();
      figure.scatter(panel++, fmt::format("{}, {} NFE: SWD/floor {:.2f}", side.key, s.result.nfe, ratio),
                     {{data, "data", palette(0), 0.15}, {s.result.samples, "samples", palette(1), 0.3}},
                     bounding_range({data}));
    }
  }
  figure.save();
  metrics["swd_data_vs_data"] = floor;

  Report report("NCSN against DDPM on the Swiss roll (seed 002)");
  report.paragraph(fmt::format(
      "Seed 002: NCSN and DDPM are two discretisations of one idea. Both train the same MLP on the same standardised "
      "Swiss roll for the same budget ({}). NCSN (`swiss-roll` preset): {} noise levels from σ = {} to {}, σ²-weighted "
      "DSM, annealed Langevin with ε = {}. DDPM (`swiss-roll-vp` with the ancestral sampler): the VP process with β "
      "from {} to {}, ε-parametrisation, t uniform, ancestral sampling from N(0, I). Each samples {} points at {} NFE "
      "(NCSN: {} Langevin steps per level) and at a tenth of that, from the EMA weights. SWD against fresh data, next "
      "to the data-vs-data floor {}.",
      budget, both[0].config.process.levels, num(both[0].config.process.sigma_max), num(both[0].config.process.sigma_min),
      num(both[0].config.sample.eps), num(both[1].config.process.beta_min), num(both[1].config.process.beta_max),
      both[0].config.sample.n, full, both[0].config.sample.steps_per_level, num(floor)));
  report.table({"method", "NFE", "SWD", "SWD / floor", "train s", "sample s", "µs / sample"}, rows);
  report.paragraph(verdict(metrics, "swd_ratio", "SWD / floor", full));
  report.image("samples.png", "Training data and samples of each model at each NFE");
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, std::move(metrics), ctx);
}

nlohmann::json run_ncsn_ddpm_mnist(const ExperimentContext& ctx) {
  std::vector<Side> both = sides("mnist-ncsn", "mnist-ncsn", ctx, {"sample.n=256"});
  const int64_t full = ncsn_nfe(both[0].config);
  auto dataset = make_dataset(both[0].config.data);
  set_threads(static_cast<int>(ctx.threads), Workload::Convolution);
  LoadedClassifier classifier = ensure_classifier(*dataset, both[0].config.data, ctx.quiet);
  const auto seed = static_cast<uint64_t>(both[0].config.run.seed);
  const int64_t n = both[0].config.sample.n;

  // The reference no model should come near: uniform noise over the pixel range, measured like the samples.
  at::Generator noise_gen = make_generator(derive_seed(seed, "ncsn-ddpm-noise"));
  torch::Tensor noise = torch::rand({n, dataset->dim()}, noise_gen);
  if (both[0].config.data.pixels != "zero-one") noise = 2 * noise - 1;
  const double noise_fd = evaluate_images(*dataset, noise, classifier, seed).samples.fd_cls;

  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::pair<std::string, std::string>> grids;  // file, caption
  Checks checks;
  double floor = 0;
  std::string budget;
  for (const Side& side : both) {
    TrainedRun run = train_experiment_run(side.config, ctx, side.key);
    budget = budget_text(side.config, run);
    const Prepared& p = run.prepared;
    for (int64_t nfe : {full, full / 10}) {
      Config config = at_nfe(run.config, nfe);
      at::Generator gen = make_generator(derive_seed(seed, "ncsn-ddpm"), p.train_data.device());
      auto start = std::chrono::steady_clock::now();
      SampleResult sampled = run_sampler(config.sample, model_score_fn(run.ema_model, p.process), *p.process,
                                         p.train_data.size(1), gen, ctx.quiet);
      const double seconds = seconds_since(start);
      torch::Tensor samples = sampled.samples.to(torch::kCPU);
      ImageEvaluation e = evaluate_images(*dataset, samples, classifier, seed);
      floor = e.real.fd_cls;
      const auto& shares = e.samples.class_fractions;
      const double smallest = *std::min_element(shares.begin(), shares.end());
      const std::string key = side.key + (nfe == full ? "_full" : "_tenth");
      nlohmann::json m = e.to_json();
      m["nfe"] = sampled.nfe;
      m["train_seconds"] = run.seconds;
      m["sample_seconds"] = seconds;
      m["smallest_class_share"] = smallest;
      metrics[key] = m;
      rows.push_back({side.label, std::to_string(sampled.nfe), num(e.samples.fd_cls), num(e.samples.kid_cls),
                      num(smallest), num(run.seconds), num(seconds), num(seconds / static_cast<double>(n))});
      save_image_grid(ctx.out / (key + ".png"), *dataset, samples.slice(0, 0, 64), 8);
      grids.emplace_back(key + ".png", fmt::format("{}, {} NFE: the first 64 samples", side.label, sampled.nfe));
      if (nfe == full) {
        // Digits, not noise, and every class among them: a-priori bounds, not tuned on this run.
        checks.below("fd_cls_over_noise_" + side.key, e.samples.fd_cls / noise_fd, 0.1);
        checks.at_least("smallest_class_share_" + side.key, smallest, 0.02);
        checks.equal("non_finite_" + side.key, static_cast<double>(e.samples.non_finite), 0);
      }
    }
  }
  metrics["fd_cls_real"] = floor;
  metrics["fd_cls_uniform_noise"] = noise_fd;
  metrics["classifier_test_accuracy"] = classifier.test_accuracy;

  Report report("NCSN against DDPM on MNIST (seed 002)");
  report.paragraph(fmt::format(
      "Seed 002: NCSN and DDPM are two discretisations of one idea. Both train the `mnist-ncsn` U-Net on the same "
      "{} MNIST digits (pixels in {}) for the same budget ({}). NCSN: {} noise levels from σ = {} to {}, "
      "σ²-weighted DSM, annealed Langevin with ε = {} from uniform noise. DDPM: the VP process with β from {} to {}, "
      "ε-parametrisation, t uniform, ancestral sampling from N(0, I). Each draws {} samples from its EMA weights at "
      "{} NFE (NCSN: {} steps per level) and at a tenth of that. FD-cls and KID-cls use the MNIST classifier's "
      "features (test accuracy {:.1f} %), not Inception; the floor, FD-cls of {} held-out digits, is {}; uniform "
      "noise scores {}.",
      both[0].config.data.n_train, both[0].config.data.pixels == "zero-one" ? "[0, 1]" : "[−1, 1]", budget, both[0].config.process.levels, num(both[0].config.process.sigma_max),
      num(both[0].config.process.sigma_min), num(both[0].config.sample.eps), num(both[1].config.process.beta_min),
      num(both[1].config.process.beta_max), n, full, both[0].config.sample.steps_per_level,
      100 * classifier.test_accuracy, n, num(floor), num(noise_fd)));
  report.table({"method", "NFE", "FD-cls", "KID-cls", "smallest class share", "train s", "sample s", "s / sample"},
               rows);
  report.paragraph(verdict(metrics, "fd_cls", "FD-cls", full));
  for (const auto& [file, caption] : grids) report.image(file, caption);
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, std::move(metrics), ctx);
}

}  // namespace scorediff
