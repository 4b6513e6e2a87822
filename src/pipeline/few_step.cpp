#include "scorediff/pipeline/few_step.hpp"

#include <torch/torch.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/io/safetensors.hpp"
#include "scorediff/objectives/consistency.hpp"
#include "scorediff/objectives/flow_matching.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

// Every parameter and buffer of a module under its name, to load into a module of the same architecture.
TensorFile module_tensors(torch::nn::Module& module) {
  TensorFile file;
  for (const auto& item : module.named_parameters()) file.tensors.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) file.tensors.emplace_back(item.key(), item.value());
  return file;
}

class EmaTarget : public ConsistencyTarget {
 public:
  EmaTarget(ScoreModel student, ScoreModel target, std::shared_ptr<const NoiseProcess> process)
      : student_(std::move(student)), target_(std::move(target)), process_(std::move(process)) {
    load_module(*target_, module_tensors(*student_), "", "consistency: the student (as the target network)");
    target_->eval();
  }
  ScoreFn score() override { return model_score_fn(target_, process_); }
  void update(double mu) override {
    torch::NoGradGuard no_grad;
    auto student = student_->named_parameters();
    for (auto& item : target_->named_parameters()) {
      if (mu == 0) item.value().copy_(student[item.key()]);
      else item.value().mul_(mu).add_(student[item.key()].detach(), 1 - mu);
    }
  }
  void save(TensorFile& file) const override {
    for (const auto& item : target_->named_parameters())
      file.tensors.emplace_back("consistency_target." + item.key(), item.value());
  }
  void restore(const TensorFile& file, const std::string& origin) override {
    torch::NoGradGuard no_grad;
    for (auto& item : target_->named_parameters()) {
      const std::string name = "consistency_target." + item.key();
      if (!file.contains(name)) fail("{} has no tensor '{}'", origin, name);
      const torch::Tensor& source = file.at(name);
      if (source.sizes() != item.value().sizes())
        fail("{}: tensor '{}' has shape [{}], expected [{}]", origin, name, fmt::join(source.sizes(), ", "),
             fmt::join(item.value().sizes(), ", "));
      item.value().copy_(source);
    }
  }

 private:
  ScoreModel student_, target_;
  std::shared_ptr<const NoiseProcess> process_;
};

std::function<void(ScoreModel&)> start_from(ScoreModel source, const std::string& what) {
  if (!source) return {};
  return [source, what](ScoreModel& model) mutable { load_module(*model, module_tensors(*source), "", what); };
}

}  // namespace

std::shared_ptr<ConsistencyTarget> ema_target(ScoreModel student, ScoreModel target,
                                              std::shared_ptr<const NoiseProcess> process) {
  return std::make_shared<EmaTarget>(std::move(student), std::move(target), std::move(process));
}

const std::vector<std::string>& consistency_sets() {
  // sample.rho = 15 puts the 2-step sampler's second level lower than EDM's ρ = 7 does (0.40 instead of 0.82 for σ
  // from 0.002 to 20): on selection seed 7 of the Swiss roll, SWD over the floor at 2 NFE was 1.46 (ρ 7), 1.22
  // (15), 1.83 (30), 1.32 (60); docs/few-step.md.
  static const std::vector<std::string> sets = {"model.param=consistency", "objective.name=consistency",
                                                "objective.weighting=uniform", "sample.sampler=consistency",
                                                "sample.nfe=2", "sample.rho=15"};
  return sets;
}

std::vector<std::string> reflow_sets(const NoiseProcess& process, bool one_step) {
  std::vector<std::string> sets = {"objective.name=cfm-coupled"};
  if (one_step)
    sets.insert(sets.end(), {"objective.sigma_sampling=single", fmt::format("objective.sigma={:.17g}", process.sigma_max()),
                             "sample.sampler=ode-euler", "sample.nfe=1", "sample.denoise=false"});
  return sets;
}

void fill_consistency_boundary(Config& config) {
  if (config.model.sigma_min == 0) config.model.sigma_min = make_process(config.process)->sigma_min();
}

TrainedRun distill_run(Config config, ScoreModel teacher, const std::filesystem::path& out_dir, TrainRunOptions options) {
  fill_consistency_boundary(config);
  auto process = make_process(config.process);
  ScoreFn teacher_score;
  if (teacher) {
    teacher->eval();
    teacher_score = model_score_fn(teacher, process);
    options.initialise = start_from(teacher, "the teacher");
  }
  options.objective = [teacher_score](ScoreModel student, const Prepared& p, const Config& c) -> Objective {
    at::Generator unused = make_generator(0);
    ScoreModel target = make_model(c.model, p.train_data.size(1), unused);
    target->to(p.train_data.device());
    return ConsistencyObjective(c.objective, teacher_score, ema_target(student, target, p.process), p.process);
  };
  return train_run(config, out_dir, options);
}

ReflowPairs reflow_pairs(const Config& config, ScoreModel flow, std::shared_ptr<const NoiseProcess> shared, int64_t dim,
                         int64_t n, bool quiet) {
  const NoiseProcess& process = *shared;
  require(process.name() == "flow", "reflow needs a flow model (process.name = 'flow'), not '{}'", process.name());
  const torch::Tensor weight = flow->parameters().front();
  const auto options = torch::TensorOptions().dtype(weight.dtype()).device(weight.device());
  at::Generator gen = make_generator(derive_seed(static_cast<uint64_t>(config.run.seed), "reflow-pairs"), options.device());
  torch::Tensor z = process.prior_sample(n, dim, gen, options);
  SampleOptions ode = config.sample;
  ode.sampler = "ode-rk45";
  ode.n = n;
  ode.t_start = ode.sigma_start = 0;
  flow->eval();
  ReflowPairs pairs;
  pairs.x0 = run_sampler(ode, model_score_fn(flow, shared), process, dim, gen, quiet, false, z).samples;
  const torch::Tensor t_max = torch::tensor({process.t_max()}, torch::kFloat64);
  const double m = process.mean_coef(t_max).item<double>(), s = process.std(t_max).item<double>();
  pairs.eps = (z - m * pairs.x0) / s;
  return pairs;
}

void save_pairs(const ReflowPairs& pairs, const std::filesystem::path& path) {
  ensure_output_dir(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
  TensorFile file;
  file.tensors = {{"x0", pairs.x0.to(torch::kCPU).contiguous()}, {"eps", pairs.eps.to(torch::kCPU).contiguous()}};
  write_safetensors(path, file);
}

ReflowPairs load_pairs(const std::filesystem::path& path, int64_t dim) {
  TensorFile stored = read_safetensors(path);
  require(stored.contains("x0") && stored.contains("eps") && stored.at("x0").sizes() == stored.at("eps").sizes() &&
              stored.at("x0").dim() == 2 && stored.at("x0").size(1) == dim,
          "'{}' does not hold reflow pairs x0, eps of dimension {}", path.string(), dim);
  return {stored.at("x0"), stored.at("eps")};
}

TrainedRun reflow_run(const Config& config, ScoreModel flow, const ReflowPairs& pairs, const std::filesystem::path& out_dir,
                      TrainRunOptions options) {
  options.train_rows = torch::cat({pairs.x0, pairs.eps}, 1);
  options.model_dim = pairs.x0.size(1);
  options.initialise = start_from(flow, "the flow model");
  options.objective = [](ScoreModel, const Prepared&, const Config& c) { return make_coupled_cfm(c.objective); };
  return train_run(config, out_dir, options);
}

}  // namespace scorediff
