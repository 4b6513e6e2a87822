// Issue 25: good samples in 1 to 10 network evaluations. On the Swiss roll and the 8-Gaussians mixture, SWD
// against NFE ∈ {1, 2, 4, 6, 10, 20, 35} for an EDM teacher under its samplers (EDM's Heun, DPM-Solver++ 2M and
// 3M, UniPC), a flow model (1-rectified) under Euler and Heun, the 2-rectified flow trained on its ODE's
// couplings (reflow, Liu et al. 2023), and a consistency model distilled from the teacher (Song et al. 2023); last,
// where a 10-NFE grid should end with the exact score (grid_end.cpp).
#include <torch/torch.h>

#include <chrono>
#include <map>

#include "scorediff/core/progress.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/experiments/checks.hpp"
#include "scorediff/experiments/experiment.hpp"
#include "scorediff/io/report.hpp"
#include "scorediff/pipeline/evaluation.hpp"
#include "scorediff/pipeline/few_step.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"
#include "scorediff/pipeline/image_tasks.hpp"
#include "scorediff/plot/figure.hpp"
#include "scorediff/samplers/registry.hpp"

#include "grid_end.hpp"

namespace scorediff {
namespace {

const std::vector<int64_t> kFewStepNfe = {1, 2, 4, 6, 10, 20, 35};
constexpr int64_t kPairs = 20000;

// One row of the comparison: a trained model and the sampler it is run with.
struct Method {
  std::string label, key;
  const TrainedRun* run;
  std::string sampler;
};

struct Row {
  std::vector<double> swd, micros;  // per NFE budget of kFewStepNfe; NaN where the sampler cannot spend that budget
  std::vector<int64_t> spent;       // the evaluations it spent (Heun's last step is an Euler step: one fewer)
  double floor = 0;                 // data vs data SWD of the same reference sets
};

Row sweep_method(const Method& m, uint64_t seed) {
  Row row;
  const Prepared& p = m.run->prepared;
  const ScoreFn score = model_score_fn(m.run->ema_model, p.process);
  for (int64_t nfe : kFewStepNfe) {
    Config c = m.run->config;
    c.sample.sampler = m.sampler;
    c.sample.nfe = nfe;
    c.sample.denoise = false;  // every evaluation goes to the solver (σ_min = 0.002 and t_min = 0.001 need no final step)
    bool fits = true;
    try {
      check_sampler(c.sample, *p.process);
    } catch (const Error&) {
      fits = false;
    }
    if (!fits) {
      row.swd.push_back(std::nan(""));
      row.micros.push_back(std::nan(""));
      row.spent.push_back(0);
      continue;
    }
    at::Generator gen = make_generator(derive_seed(seed, "few-step"), p.train_data.device());
    const auto start = std::chrono::steady_clock::now();
    SampleResult r = run_sampler(c.sample, score, *p.process, p.train_data.size(1), gen, true);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    row.spent.push_back(r.nfe);
    SampleMetrics metrics = evaluate_samples(*p.dataset, r.samples.to(torch::kCPU), seed, kSweepProjections);
    row.swd.push_back(metrics.nan_count > 0 ? std::nan("") : metrics.swd);
    row.floor = metrics.swd_data_vs_data;
    row.micros.push_back(1e6 * seconds / static_cast<double>(c.sample.n));
  }
  return row;
}

struct DatasetResult {
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::vector<std::string>> swd_rows, time_rows;
  std::vector<Curve> curves;
  double floor = 0;
  std::map<std::string, Row> rows;
  std::vector<std::string> runs;  // one line per trained run: what it is, steps, seconds
};

DatasetResult run_dataset(const ExperimentContext& ctx, const std::string& data, const std::vector<std::string>& scale) {
  DatasetResult out;
  const std::string d = "data.name=" + data;
  const std::vector<std::string> points = {"sample.n=5000"};
  std::vector<std::string> teacher_defaults = points;
  teacher_defaults.insert(teacher_defaults.end(), scale.begin(), scale.end());
  // Teacher and flow: the presets. The consistency model starts from the teacher's weights; the 2-rectified flow
  // from the flow's, trained on kPairs couplings of its ODE.
  TrainedRun teacher = train_experiment_run(experiment_config("swiss-roll-edm", ctx, teacher_defaults, {d}), ctx, data + "/teacher");
  TrainedRun flow = train_experiment_run(experiment_config("swiss-roll-flow", ctx, points, {d}), ctx, data + "/flow");
  std::vector<std::string> cm_sets = {d};
  cm_sets.insert(cm_sets.end(), consistency_sets().begin(), consistency_sets().end());
  TrainedRun cm = distill_run(experiment_config("swiss-roll-edm", ctx, teacher_defaults, cm_sets), teacher.ema_model,
                              ctx.out / data / "consistency", {false, ctx.quiet});
  ReflowPairs pairs = reflow_pairs(flow.config, flow.ema_model, flow.prepared.process, 2, kPairs, ctx.quiet);
  std::vector<std::string> reflow = reflow_sets(*flow.prepared.process, false);
  reflow.push_back(d);
  TrainedRun rectified = reflow_run(experiment_config("swiss-roll-flow", ctx, points, reflow), flow.ema_model, pairs,
                                    ctx.out / data / "reflow", {false, ctx.quiet});
  for (const auto& [what, run] : std::vector<std::pair<std::string, const TrainedRun*>>{
           {"EDM teacher (dsm, denoiser)", &teacher},
           {"flow (cfm, velocity): 1-rectified", &flow},
           {"consistency model distilled from the teacher (N = " + std::to_string(cm.config.objective.consistency_steps) +
                ", μ = " + num(cm.config.objective.target_decay) + ")",
            &cm},
           {"2-rectified flow (" + std::to_string(kPairs) + " pairs, from the flow's weights)", &rectified}})
    out.runs.push_back(fmt::format("{}: {} steps, {} s", what, run->steps, num(run->seconds)));

  const std::vector<Method> methods = {
      {"teacher · edm (Heun)", "teacher_edm", &teacher, "edm"},
      {"teacher · dpm-solver++ (2M)", "teacher_dpm2m", &teacher, "dpm-solver++"},
      {"teacher · dpm-solver++3m", "teacher_dpm3m", &teacher, "dpm-solver++3m"},
      {"teacher · unipc", "teacher_unipc", &teacher, "unipc"},
      {"flow · euler", "flow_euler", &flow, "ode-euler"},
      {"flow · heun", "flow_heun", &flow, "ode-heun"},
      {"2-rectified flow · euler", "reflow_euler", &rectified, "ode-euler"},
      {"consistency model", "consistency", &cm, "consistency"},
  };
  const auto seed = static_cast<uint64_t>(teacher.config.run.seed);
  Progress progress("few-step " + data, static_cast<int64_t>(methods.size()), "method", ctx.quiet);
  int colour = 0;
  for (const Method& m : methods) {
    Row row = sweep_method(m, seed);
    std::vector<std::string> swd_row = {m.label}, time_row = {m.label};
    Curve curve{m.label, {}, {}, palette(colour++ % 10)};
    for (size_t i = 0; i < kFewStepNfe.size(); ++i) {
      const std::string nfe = std::to_string(kFewStepNfe[i]);
      if (std::isnan(row.micros[i])) {
        swd_row.push_back("–");
        time_row.push_back("–");
        continue;
      }
      out.metrics[m.key]["swd"][nfe] = row.swd[i];
      out.metrics[m.key]["us_per_sample"][nfe] = row.micros[i];
      out.metrics[m.key]["nfe_spent"][nfe] = row.spent[i];
      swd_row.push_back(row.spent[i] == kFewStepNfe[i] ? num(row.swd[i]) : fmt::format("{} ({})", num(row.swd[i]), row.spent[i]));
      time_row.push_back(num(row.micros[i]));
      curve.x.push_back(static_cast<double>(row.spent[i]));
      curve.y.push_back(row.swd[i]);
    }
    out.swd_rows.push_back(swd_row);
    out.time_rows.push_back(time_row);
    out.curves.push_back(curve);
    out.rows[m.key] = row;
    out.floor = row.floor;  // the same seed's reference sets for every method
    progress.update(static_cast<int64_t>(out.swd_rows.size()));
  }
  progress.finish();
  out.curves.push_back({"data vs data", {1.0, 35.0}, {out.floor, out.floor}, {0, 0, 0}});
  out.metrics["swd_data_vs_data"] = out.floor;
  for (const auto& line : out.runs) out.metrics["runs"].push_back(line);
  return out;
}

std::vector<std::string> nfe_header(const std::string& corner) {
  std::vector<std::string> h = {corner};
  for (int64_t n : kFewStepNfe) h.push_back(std::to_string(n));
  return h;
}

// SWD over the floor of a method at an NFE of kFewStepNfe (NaN when it was not run).
double ratio(const DatasetResult& r, const std::string& key, int64_t nfe) {
  const size_t i = static_cast<size_t>(std::find(kFewStepNfe.begin(), kFewStepNfe.end(), nfe) - kFewStepNfe.begin());
  return r.rows.at(key).swd[i] / r.floor;
}

}  // namespace

nlohmann::json run_few_step(const ExperimentContext& ctx) {
  Report report("Few-step sampling: quality against network evaluations (issue 25)");
  report.paragraph(fmt::format(
      "Each model trained on the same data with its preset (swiss-roll-edm: an EDM teacher; swiss-roll-flow: a flow "
      "model, x_t = (1 − t) x₀ + t ε); the consistency model is distilled from the teacher (scorediff distill), the "
      "2-rectified flow trained on {} (noise, sample) couplings of the flow's ODE (scorediff reflow). SWD of 5 000 "
      "samples against fresh data ({} projections, the mean over the reference sets); every sampler runs without "
      "the final Tweedie step, so all evaluations go to the solver; '–' marks budgets a sampler cannot spend (Heun "
      "needs two per step; a budget it spends one short of shows the count spent in brackets). Wall time per sample on this machine's {} thread(s), sampling only.",
      kPairs, kSweepProjections, ctx.threads));
  nlohmann::json metrics;
  Checks checks;
  Figure fig(ctx.out / "swd_vs_nfe.png", 1400, 600, 2, 1);
  int panel = 1;
  // The EDM teacher's noise distribution and loss weight are set relative to the data's scale σ_d (Karras et al.
  // 2022 tune P_mean = −1.2 for σ_d = 0.5): the swiss-roll-edm preset's σ_d = 1 and P_mean for the standardised roll;
  // the 8-Gaussians mixture (radius 4, std 0.5) has σ_d ≈ 2.9, so P_mean = −1.2 + ln(2.9/0.5) = 0.56.
  const std::vector<std::pair<std::string, std::vector<std::string>>> datasets = {
      {"swiss-roll", {}}, {"8gaussians", {"objective.sigma_data=2.9", "objective.p_mean=0.56"}}};
  for (const auto& [data, scale] : datasets) {
    DatasetResult r = run_dataset(ctx, data, scale);
    metrics[data] = r.metrics;
    fig.curves(panel++, data, "NFE", "SWD", r.curves, true, true);
    report.heading(data);
    for (const auto& line : r.runs) report.paragraph(line);
    report.paragraph(fmt::format("Data vs data SWD at 5 000 points: {}.", num(r.floor)));
    report.table(nfe_header("SWD \\ NFE"), r.swd_rows);
    report.table(nfe_header("µs per sample \\ NFE"), r.time_rows);
    const std::string k = data == "swiss-roll" ? "swiss_roll" : "eight_gaussians";
    const double one_flow = ratio(r, "flow_euler", 1), one_reflow = ratio(r, "reflow_euler", 1);
    metrics[data]["reflow_one_step_ratio"] = one_reflow / one_flow;
    if (data == "swiss-roll") {
      checks.at_most(k + "_2_rectified_1_step_swd_over_1_rectified", one_reflow / one_flow, 0.5)
          .at_most(k + "_consistency_2_nfe_swd_over_floor", ratio(r, "consistency", 2), 2.0)
          .at_most(k + "_consistency_1_nfe_swd_over_floor", ratio(r, "consistency", 1), 3.0);
    }
    report.paragraph(fmt::format(
        "At one evaluation: the flow {}× the floor, the 2-rectified flow {}×, the consistency model {}× (2 NFE: "
        "{}×). At 10: DPM-Solver++(3M) {}×, UniPC {}×, the flow with Euler {}×.",
        num(one_flow), num(one_reflow), num(ratio(r, "consistency", 1)), num(ratio(r, "consistency", 2)),
        num(ratio(r, "teacher_dpm3m", 10)), num(ratio(r, "teacher_unipc", 10)), num(ratio(r, "flow_euler", 10))));
  }
  fig.save();
  report.image("swd_vs_nfe.png", "SWD against NFE, log-log; the black line is the data-vs-data floor");
  few_step_grid_end(ctx, report, checks, metrics);
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, metrics, ctx);
}

namespace {

// FD-cls of config.sample.n samples of `model` with `sampler` at `nfe` (no final Tweedie step), the grid's noise
// from the "few-step" stream; the samples are kept for the picture.
struct ImagePoint {
  double fd_cls = 0, confident = 0, seconds = 0;
  int64_t nfe = 0;
  torch::Tensor samples;
};

ImagePoint image_point(const TrainedRun& run, const std::string& sampler, int64_t nfe, LoadedClassifier& classifier) {
  Config c = run.config;
  c.sample.sampler = sampler;
  c.sample.nfe = nfe;
  c.sample.denoise = false;
  const Prepared& p = run.prepared;
  const auto seed = static_cast<uint64_t>(c.run.seed);
  at::Generator gen = make_generator(derive_seed(seed, "few-step"), p.train_data.device());
  const auto start = std::chrono::steady_clock::now();
  SampleResult r = run_sampler(c.sample, model_score_fn(run.ema_model, p.process), *p.process, p.train_data.size(1), gen,
                               true);
  ImagePoint out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.nfe = r.nfe;
  out.samples = r.samples.to(torch::kCPU);
  ImageEvaluation e = evaluate_images(*p.dataset, out.samples, classifier, seed);
  out.fd_cls = e.samples.fd_cls;
  out.confident = e.samples.confident_fraction;
  return out;
}

}  // namespace

// The MNIST row of issue 25: the mnist preset as the teacher, a consistency model distilled from it (pseudo-Huber
// distance, as Song & Dhariwal 2023 recommend for images), FD-cls of each against NFE.
nlohmann::json run_few_step_mnist(const ExperimentContext& ctx) {
  Config teacher_config = experiment_config("mnist", ctx, documented_preset("mnist", {"sample.n=1000"}));
  ImageRun teacher = train_image_run(teacher_config, ctx);
  std::vector<std::string> cm_sets = {"sample.n=1000", "train.steps=1200", "train.lr=2e-4", "train.warmup=100",
                                      "objective.metric=pseudo-huber"};
  cm_sets.insert(cm_sets.end(), consistency_sets().begin(), consistency_sets().end());
  Config cm_config = experiment_config("mnist", ctx, documented_preset("mnist", cm_sets));
  TrainRunOptions options(false, ctx.quiet);
  std::error_code ec;
  options.resume = ctx.resume && std::filesystem::exists(ctx.out / "consistency" / "last.safetensors", ec);
  TrainedRun cm = distill_run(cm_config, teacher.run.ema_model, ctx.out / "consistency", options);

  const auto seed = static_cast<uint64_t>(teacher.run.config.run.seed);
  const ToyDataset& dataset = *teacher.run.prepared.dataset;
  // MNIST holds out 997 distinct images: the floor uses all of them when sample.n asks for more.
  const int64_t floor_n = std::min<int64_t>(teacher.run.config.sample.n, dataset.images()->test.size());
  const double floor = evaluate_images(dataset, held_out_images(dataset, floor_n, seed), teacher.classifier, seed).samples.fd_cls;
  struct Entry {
    std::string label, key;
    const TrainedRun* run;
    std::string sampler;
    std::vector<int64_t> nfe;
  };
  const std::vector<Entry> entries = {{"teacher · edm (Heun)", "teacher_edm", &teacher.run, "edm", {10, 20, 35}},
                                      {"teacher · dpm-solver++ (2M)", "teacher_dpm2m", &teacher.run, "dpm-solver++", {4, 10, 20}},
                                      {"consistency model", "consistency", &cm, "consistency", {1, 2, 4}}};
  nlohmann::json metrics;
  std::vector<std::vector<std::string>> rows;
  std::map<std::string, std::map<int64_t, ImagePoint>> points;
  for (const Entry& e : entries)
    for (int64_t nfe : e.nfe) {
      ImagePoint point = image_point(*e.run, e.sampler, nfe, teacher.classifier);
      const double ms_per_image = 1e3 * point.seconds / static_cast<double>(point.samples.size(0));
      metrics[e.key][std::to_string(nfe)] = {{"fd_cls", point.fd_cls},
                                             {"confident_fraction", point.confident},
                                             {"nfe_spent", point.nfe},
                                             {"ms_per_image", ms_per_image}};
      rows.push_back({e.label, std::to_string(point.nfe), num(point.fd_cls), num(point.fd_cls / floor),
                      num(point.confident), num(ms_per_image)});
      points[e.key][nfe] = std::move(point);
    }
  metrics["fd_cls_floor"] = floor;
  const double teacher_fd = points["teacher_edm"][35].fd_cls;
  const double ratio = points["consistency"][2].fd_cls / teacher_fd;
  metrics["consistency_2_nfe_over_teacher_35"] = ratio;
  save_image_grid(ctx.out / "consistency-1.png", dataset, points["consistency"][1].samples.slice(0, 0, 64), 8);
  save_image_grid(ctx.out / "consistency-2.png", dataset, points["consistency"][2].samples.slice(0, 0, 64), 8);
  save_image_grid(ctx.out / "teacher-35.png", dataset, points["teacher_edm"][35].samples.slice(0, 0, 64), 8);

  Checks checks;
  checks.at_most("consistency_2_nfe_fd_cls_over_teacher_35_nfe", ratio, 1.5);
  Report report("Few-step sampling on MNIST: a consistency model against its teacher (issue 25)");
  report.paragraph(fmt::format(
      "The teacher is the mnist preset ({} steps, {} s); the consistency model is distilled from its EMA weights ({} "
      "steps, {} s; N = {}, μ = {}, {} distance, lr {}). FD-cls of {} samples by the MNIST classifier against its "
      "training images; {} held-out images give the floor, {}. No sampler takes a final Tweedie step.",
      teacher.run.steps, num(teacher.run.seconds), cm.steps, num(cm.seconds), cm.config.objective.consistency_steps,
      num(cm.config.objective.target_decay), cm.config.objective.metric, num(cm.config.train.lr),
      teacher.run.config.sample.n, floor_n, num(floor)));
  report.table({"model · sampler", "NFE", "FD-cls", "FD-cls / floor", "confident fraction", "ms per image"}, rows);
  report.paragraph(fmt::format("The consistency model at 2 NFE against the teacher at 35: {}× its FD-cls.", num(ratio)));
  report.image("teacher-35.png", "the teacher, edm at 35 NFE");
  report.image("consistency-1.png", "the consistency model, 1 NFE");
  report.image("consistency-2.png", "the consistency model, 2 NFE");
  report.heading("Acceptance");
  checks.add_to(report);
  return finish_experiment(report, checks, metrics, ctx);
}

}  // namespace scorediff
