#include "scorediff/samplers/sample_options.hpp"

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
  s.add("sample.init", &o.init, "initial state").one_of({"prior", "uniform"});
  s.add("sample.init_low", &o.init_low, "uniform init: lower bound");
  s.add("sample.init_high", &o.init_high, "uniform init: upper bound");
}

}  // namespace scorediff
