#include "scorediff/samplers/multistep.hpp"

#include <torch/torch.h>

#include <cmath>
#include <deque>

#include "samplers/grid_run.hpp"
#include "scorediff/samplers/registry.hpp"

namespace scorediff {
namespace {

// J_k(H) = ∫₀ᴴ e^{w−H} w^k dw. Small H: the series k! H^{k+1} Σₙ (−H)ⁿ/(n+k+1)!, free of the cancellation
// in the recurrence; otherwise J_0 = 1 − e^{−H}, J_k = H^k − k J_{k−1} (integration by parts).
double exp_moment(int k, double big_h) {
  if (big_h < 1) {
    double term = std::pow(big_h, k + 1) / (k + 1), sum = term;
    for (int n = 1; n < 200 && std::abs(term) > 1e-18 * std::abs(sum); ++n) {
      term *= -big_h / (n + k + 1);
      sum += term;
    }
    return sum;
  }
  double j = -std::expm1(-big_h);
  for (int i = 1; i <= k; ++i) j = std::pow(big_h, i) - i * j;
  return j;
}

// Solves a x = b (n ≤ 4) by Gaussian elimination with partial pivoting.
std::vector<double> solve_small(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    require(std::abs(a[pivot][c]) > 1e-300, "exponential_weights: two interpolation nodes coincide");
    std::swap(a[c], a[pivot]);
    std::swap(b[c], b[pivot]);
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (size_t r = n; r-- > 0;) {
    double v = b[r];
    for (size_t k = r + 1; k < n; ++k) v -= a[r][k] * x[k];
    x[r] = v / a[r][r];
  }
  return x;
}

// The denoiser values of the latest grid points, newest first, with their λ.
struct History {
  std::deque<torch::Tensor> d;
  std::deque<double> lambda;
  void push(torch::Tensor value, double at, size_t keep) {
    d.push_front(std::move(value));
    lambda.push_front(at);
    if (d.size() > keep) {
      d.pop_back();
      lambda.pop_back();
    }
  }
  // λ offsets from λ of the newest `count` points, and their values.
  std::vector<double> nodes(size_t count, double from) const {
    std::vector<double> out;
    for (size_t j = 0; j < count; ++j) out.push_back(lambda[j] - from);
    return out;
  }
  std::vector<torch::Tensor> values(size_t count) const { return {d.begin(), d.begin() + static_cast<std::ptrdiff_t>(count)}; }
};

// decay x̂ + Σ w_j d_j.
torch::Tensor combine(const torch::Tensor& x_hat, double decay, const std::vector<double>& w,
                      const std::vector<torch::Tensor>& d) {
  torch::Tensor out = decay * x_hat;
  for (size_t j = 0; j < w.size(); ++j) out = out + w[j] * d[j];
  return out;
}

// The order of step i of `steps` for a method of order p: rising from 1 as values accumulate and, under 15
// steps, falling to 1 on the last step (Lu et al.'s lower-order final steps).
size_t step_order(int64_t i, int64_t steps, int64_t p) {
  int64_t order = std::min<int64_t>(p, i + 1);
  if (steps < 15) order = std::min<int64_t>(order, steps - i);
  return static_cast<size_t>(std::max<int64_t>(order, 1));
}

struct Step {
  double sigma, sigma_next, lambda, h;
};

Step step_at(const NoiseProcess& process, const grid::GridRun& run, int64_t i) {
  const double sigma = process.sigma_at(run.time_at(i)), sigma_next = process.sigma_at(run.time_at(i + 1));
  return {sigma, sigma_next, -std::log(sigma), std::log(sigma / sigma_next)};
}

// The multistep ODE (rate 1) or SDE (rate 2, gen given) solver of order p.
SampleResult multistep(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                       int64_t p, double rate, at::Generator* gen, const StepCallback& callback) {
  torch::InferenceMode guard;
  grid::GridRun run(process, x, o, callback);
  torch::Tensor x_hat = x / grid::at(process, run.grid.front()).m;
  History history;
  for (int64_t i = 0; i < run.steps(); ++i) {
    const Step s = step_at(process, run, i);
    history.push(grid::denoise_scaled(score, process, x_hat, s.sigma, run.t), s.lambda, static_cast<size_t>(p));
    run.result.nfe += 1;
    const size_t k = std::min(step_order(i, run.steps(), p), history.d.size());
    const std::vector<double> w = exponential_weights(s.h, history.nodes(k, s.lambda), rate);
    x_hat = combine(x_hat, std::exp(-rate * s.h), w, history.values(k));
    if (gen != nullptr)
      x_hat = x_hat + s.sigma_next * std::sqrt(-std::expm1(-2 * s.h)) * grid::noise_like(x_hat, gen, "dpm-solver++2m-sde");
    run.after_step(i, x_hat * grid::at(process, run.time_at(i + 1)).m);
  }
  return run.finish(score, x_hat * grid::at(process, run.grid.back()).m);
}

}  // namespace

std::vector<double> exponential_weights(double h, const std::vector<double>& nodes, double rate) {
  require(h > 0 && std::isfinite(h), "exponential_weights: the step h must be positive and finite, got {}", h);
  require(!nodes.empty() && nodes.size() <= 4, "exponential_weights: 1 to 4 nodes, got {}", nodes.size());
  const size_t n = nodes.size();
  // Σ_j ρ_j^k w_j = J_k^{(r)}(h)/h^k with ρ_j = u_j/h and J_k^{(r)}(h) = r^{−k} J_k(r h).
  std::vector<std::vector<double>> a(n, std::vector<double>(n));
  std::vector<double> b(n);
  for (size_t k = 0; k < n; ++k) {
    for (size_t j = 0; j < n; ++j) a[k][j] = std::pow(nodes[j] / h, static_cast<double>(k));
    b[k] = exp_moment(static_cast<int>(k), rate * h) / std::pow(rate * h, static_cast<double>(k));
  }
  return solve_small(std::move(a), std::move(b));
}

SampleResult sample_dpm_solver_3m(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                                  const GridOptions& o, const StepCallback& callback) {
  return multistep(score, process, std::move(x), o, 3, 1.0, nullptr, callback);
}

SampleResult sample_dpm_solver_2m_sde(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x,
                                      const GridOptions& o, at::Generator& gen, const StepCallback& callback) {
  return multistep(score, process, std::move(x), o, 2, 2.0, &gen, callback);
}

SampleResult sample_unipc(const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const GridOptions& o,
                          int64_t order, const StepCallback& callback) {
  require(order >= 1 && order <= 3, "unipc: sample.order must be 1, 2 or 3, got {}", order);
  torch::InferenceMode guard;
  grid::GridRun run(process, x, o, callback);
  torch::Tensor x_hat = x / grid::at(process, run.grid.front()).m;
  History history;
  const size_t keep = static_cast<size_t>(order);
  history.push(grid::denoise_scaled(score, process, x_hat, process.sigma_at(run.time_at(0)), run.t),
               -std::log(process.sigma_at(run.time_at(0))), keep);
  run.result.nfe += 1;
  for (int64_t i = 0; i < run.steps(); ++i) {
    const Step s = step_at(process, run, i);
    const size_t k = std::min(step_order(i, run.steps(), order), history.d.size());
    std::vector<double> nodes = history.nodes(k, s.lambda);
    const double decay = std::exp(-s.h);
    std::vector<torch::Tensor> values = history.values(k);
    torch::Tensor predicted = combine(x_hat, decay, exponential_weights(s.h, nodes, 1.0), values);
    if (i + 1 == run.steps()) {
      x_hat = predicted;  // a corrector here would cost an evaluation that no later step reuses
    } else {
      // UniC: the same integral through the new point too; its denoiser value is the next step's.
      torch::Tensor d_new = grid::denoise_scaled(score, process, predicted, s.sigma_next, run.t);
      run.result.nfe += 1;
      nodes.push_back(s.h);
      values.push_back(d_new);
      x_hat = combine(x_hat, decay, exponential_weights(s.h, nodes, 1.0), values);
      history.push(d_new, s.lambda + s.h, keep);
    }
    run.after_step(i, x_hat * grid::at(process, run.time_at(i + 1)).m);
  }
  return run.finish(score, x_hat * grid::at(process, run.grid.back()).m);
}

SamplerSpec dpm_solver_3m_spec() {
  return ode_grid_spec("dpm-solver++3m", "DPM-Solver++(3M), exact exponential integrals, log-SNR grid",
                       sample_dpm_solver_3m, 20, GridKind::LogSnr);
}

SamplerSpec dpm_solver_2m_sde_spec() {
  SamplerSpec s = sde_grid_spec("dpm-solver++2m-sde", "SDE-DPM-Solver++(2M): 2nd-order multistep reverse SDE",
                                sample_dpm_solver_2m_sde, 50);
  s.default_grid = GridKind::LogSnr;
  return s;
}

SamplerSpec unipc_spec() {
  SamplerSpec s = ode_grid_spec("unipc", "UniPC: multistep predictor + free corrector (sample.order), log-SNR grid",
                                nullptr, 20, GridKind::LogSnr);
  s.keys.push_back("order");
  s.run = [](const ScoreFn& score, const NoiseProcess& process, torch::Tensor x, const SampleOptions& o,
             const SamplerCall& call) { return sample_unipc(score, process, std::move(x), call.grid, o.order, call.callback); };
  return s;
}

}  // namespace scorediff
