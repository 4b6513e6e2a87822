// Probability-flow ODE samplers on the grid (Heun) and adaptive (Dormand–Prince 5(4)).
#include "scorediff/samplers/ode.hpp"

#include <torch/torch.h>

#include <cmath>

#include "samplers/grid_run.hpp"
#include "scorediff/process/ode_solver.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {

SampleResult sample_ode_heun(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                             const StepCallback& callback) {
  torch::InferenceMode guard;
  grid::GridRun run(process, x, o, callback);
  torch::Tensor t_next = run.t.clone();
  for (int64_t i = 0; i < run.steps(); ++i) {
    double t0 = run.time_at(i), t1 = run.time_at(i + 1);
    torch::Tensor d0 = probability_flow_drift(score, process, x, run.time(t0));
    torch::Tensor x_euler = x + (t1 - t0) * d0;
    t_next.fill_(t1);
    torch::Tensor d1 = probability_flow_drift(score, process, x_euler, t_next);
    x = x + (0.5 * (t1 - t0)) * (d0 + d1);
    run.result.nfe += 2;
    run.after_step(i, x);
  }
  return run.finish(score, x);
}

SampleResult sample_ode_rk45(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                             const Rk45SamplerOptions& o, const StepCallback& callback) {
  require(o.rtol > 0, "rtol must be > 0, got {}", o.rtol);
  require(o.atol > 0, "atol must be > 0, got {}", o.atol);
  torch::InferenceMode guard;
  GridOptions ends = o;
  ends.steps = 1;  // the grid gives the two ends; the solver picks its own steps
  grid::GridRun run(process, x, ends, {});
  const double t0 = run.grid.front(), t1 = run.grid.back();
  torch::Tensor t = run.t.clone();
  OdeFn f = [&](const torch::Tensor& y, double time) {
    t.fill_(time);
    return probability_flow_drift(score, process, y, t);
  };
  Rk45Options ro;
  ro.rtol = o.rtol;
  ro.atol = o.atol;
  // Progress in time, as a fraction in thousandths.
  auto on_step = [&](double time) {
    if (callback) callback(static_cast<int64_t>(std::lround(1000 * (t0 - time) / (t0 - t1))), 1000);
  };
  Rk45Result r = integrate_rk45(f, x, t0, t1, ro, on_step);
  run.result.nfe = r.nfe;
  return run.finish(score, r.y);
}

SampleResult encode_ode_rk45(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                             const Rk45SamplerOptions& o, const StepCallback& callback) {
  require(o.rtol > 0 && o.atol > 0, "rtol and atol must be > 0, got {} and {}", o.rtol, o.atol);
  torch::InferenceMode guard;
  GridOptions ends = o;
  ends.steps = 1;
  grid::GridRun run(process, x, ends, {});
  const double t0 = run.grid.back(), t1 = run.grid.front();  // forwards: data to noise
  torch::Tensor t = run.t.clone();
  OdeFn f = [&](const torch::Tensor& y, double time) {
    t.fill_(time);
    return probability_flow_drift(score, process, y, t);
  };
  Rk45Options ro;
  ro.rtol = o.rtol;
  ro.atol = o.atol;
  auto on_step = [&](double time) {
    if (callback) callback(static_cast<int64_t>(std::lround(1000 * (time - t0) / (t1 - t0))), 1000);
  };
  Rk45Result r = integrate_rk45(f, x, t0, t1, ro, on_step);
  SampleResult out;
  out.samples = r.y;
  out.nfe = r.nfe;
  return out;
}

SamplerSpec ode_heun_spec() {
  SamplerSpec s = ode_grid_spec("ode-heun", "probability-flow ODE, Heun (2nd order)", sample_ode_heun, 201);
  s.nfe_per_step = [](const SampleOptions&) { return int64_t{2}; };
  return s;
}

SamplerSpec ode_rk45_spec() {
  SamplerSpec s;
  s.name = "ode-rk45";
  s.help = "probability-flow ODE, adaptive Dormand-Prince (sample.rtol, atol)";
  s.kind = SamplerKind::Adaptive;
  s.keys = {"t_end", "rtol", "atol"};
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) {
    Rk45SamplerOptions r;
    static_cast<GridOptions&>(r) = call.grid;
    r.rtol = o.rtol;
    r.atol = o.atol;
    return sample_ode_rk45(score, process, std::move(x), r, call.callback);
  };
  return s;
}

}  // namespace scorediff
