#include "scorediff/samplers/sample_options.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "scorediff/samplers/registry.hpp"

namespace scorediff {

void bind(Schema& s, SampleOptions& o) {
  s.add("sample.sampler", &o.sampler, "sampler").one_of(samplers().names());
  s.add("sample.n", &o.n, "number of samples").at_least(1);
  s.add("sample.eps", &o.eps, "ald: step size at the smallest level; auto = from the ladder and the data's scales (docs/sde.md)")
      .positive()
      .or_auto(&o.eps_auto);
  s.add("sample.steps_per_level", &o.steps_per_level, "ald: steps per noise level").at_least(1);
  s.add("sample.step_size", &o.step_size, "langevin: step size").positive();
  s.add("sample.steps", &o.steps, "langevin: steps").at_least(1);
  s.add("sample.nfe", &o.nfe, "reverse-time samplers: score evaluations (0 = the sampler's default)").at_least(0);
  s.add("sample.grid", &o.grid, "reverse-time samplers: time grid").one_of({"default", "karras", "log-snr", "uniform"});
  s.add("sample.rho", &o.rho, "karras grid: rho").positive();
  s.add("sample.t_end", &o.t_end, "reverse-time samplers: last grid time (0 = the process' t_min)").non_negative();
  s.add("sample.predictor", &o.predictor, "pc: predictor")
      .one_of({"ancestral", "ddim", "em", "none", "ode-euler", "reverse-diffusion"});
  s.add("sample.corrector", &o.corrector, "pc: corrector").one_of({"langevin", "none"});
  s.add("sample.snr", &o.snr, "Langevin corrector: signal-to-noise ratio").non_negative();
  s.add("sample.corrector_steps", &o.corrector_steps, "Langevin corrector: steps per grid time").at_least(1);
  s.add("sample.order", &o.order, "unipc: order of the multistep predictor (the corrector adds one)").in_range(1, 3);
  s.add("sample.eta", &o.eta, "ddim: stochasticity (0 deterministic, 1 DDPM)").in_range(0, 1);
  s.add("sample.s_churn", &o.s_churn, "edm: churn").non_negative();
  s.add("sample.s_tmin", &o.s_tmin, "edm: smallest sigma with churn").non_negative();
  s.add("sample.s_tmax", &o.s_tmax, "edm: largest sigma with churn").non_negative();
  s.add("sample.s_noise", &o.s_noise, "edm: noise inflation").positive();
  s.add("sample.rtol", &o.rtol, "ode-rk45: relative tolerance").positive().below(1.0);
  s.add("sample.atol", &o.atol, "ode-rk45: absolute tolerance").positive().below(1.0);
  s.add("sample.denoise", &o.denoise, "finish with a Tweedie denoising step");
  s.add("sample.use_ema", &o.use_ema, "sample with the EMA weights");
  s.add("sample.guide", &o.guide,
        "autoguidance: a weaker checkpoint of the same process (\"step-N\" of the run, or a path); \"\" = none");
  s.add("sample.guidance", &o.guidance, "autoguidance weight w: s_guide + w (s_model - s_guide)").non_negative();
  s.add("sample.precision", &o.precision,
        "MLP hidden-layer products while sampling: bfloat16 is 2-4x faster on CPUs with AVX-512 BF16 or AMX, "
        "scores within about 1e-2 relative")
      .one_of({"bfloat16", "float32"});
  s.add("sample.class", &o.label,
        "class-conditional models: auto, all (an equal share of each class), none (unconditional), k or k1,k2,...");
  s.add("sample.cfg", &o.cfg, "classifier-free guidance weight w: s(x|y) + w (s(x|y) - s(x|null)); 0 = none")
      .non_negative()
      .at_most(100.0);
  s.add("sample.classifier", &o.classifier,
        "classifier guidance: a noise-conditional classifier (train-classifier --noisy) of this run; \"\" = none");
  s.add("sample.classifier_scale", &o.classifier_scale, "classifier guidance scale s: s(x) + s grad log p(y|x, sigma)")
      .non_negative()
      .at_most(1000.0);
  s.add("sample.t_start", &o.t_start, "editing (SDEdit): noise the given points to this time and sample from there; 0 = off")
      .non_negative();
  s.add("sample.sigma_start", &o.sigma_start, "editing (SDEdit): the same by noise level sigma; 0 = off").non_negative();
  s.add("sample.init", &o.init, "initial state").one_of({"prior", "uniform"});
  s.add("sample.init_low", &o.init_low, "uniform init: lower bound");
  s.add("sample.init_high", &o.init_high, "uniform init: upper bound");
}

torch::Tensor sample_labels(const std::string& spec, int64_t classes, int64_t n) {
  if (classes == 0) {
    require(spec == "auto" || spec == "none",
            "sample.class = '{}' needs a class-conditional model (model.classes > 0); this one has no classes", spec);
    return {};
  }
  const auto int64 = torch::TensorOptions().dtype(torch::kInt64);
  if (spec == "none") return torch::full({n}, classes, int64);
  std::vector<int64_t> wanted;
  if (spec == "auto" || spec == "all") {
    for (int64_t k = 0; k < classes; ++k) wanted.push_back(k);
  } else {
    for (size_t begin = 0; begin <= spec.size();) {
      const size_t end = std::min(spec.find(',', begin), spec.size());
      const std::string item = spec.substr(begin, end - begin);
      begin = end + 1;
      size_t used = 0;
      int64_t k = -1;
      try {
        k = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      require(used > 0 && used == item.size(),
              "sample.class = '{}': expected auto, all, none, a class or a comma-separated list of classes", spec);
      require(k >= 0 && k < classes, "sample.class: class {} is outside [0, {}) of this model", k, classes);
      wanted.push_back(k);
    }
    require(!wanted.empty(), "sample.class is empty: expected auto, all, none, a class or a list of classes");
  }
  // Sample i gets wanted[⌊i m / n⌋]: blocks of equal size (to one sample), in the order given.
  const int64_t m = static_cast<int64_t>(wanted.size());
  torch::Tensor out = torch::empty({n}, int64);
  int64_t* p = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = wanted[static_cast<size_t>(i * m / n)];
  return out;
}

}  // namespace scorediff
