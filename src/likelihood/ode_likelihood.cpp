#include "scorediff/likelihood/ode_likelihood.hpp"

#include <torch/torch.h>

#include <cmath>

#include "scorediff/core/error.hpp"
#include "scorediff/process/divergence.hpp"
#include "scorediff/process/ode_solver.hpp"

namespace scorediff {
namespace {

LikelihoodResult solve_batch(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x0,
                             const LikelihoodOptions& o, at::Generator& gen) {
  const int64_t n = x0.size(0);
  const int64_t d = x0[0].numel();
  const bool exact = o.divergence == "exact";
  torch::Tensor probes;
  if (!exact) probes = projection_vectors(o.probe, {o.probes, n, d}, gen, x0.options());
  // The state is flat [n, d + 1]; the score sees points in their own shape (images stay [n, C, H, W]).
  torch::Tensor t = torch::empty({n}, x0.options());
  OdeFn f = [&](const torch::Tensor& y, double time) {
    t.fill_(time);
    torch::AutoGradMode grad(true);
    torch::Tensor x = y.narrow(1, 0, d).detach().requires_grad_(true);
    torch::Tensor v = probability_flow_drift(score, process, x.reshape(x0.sizes()), t).reshape({n, d});
    torch::Tensor div;
    if (exact) {
      div = jacobian_trace(v, x, false);
    } else {
      div = torch::zeros({n}, x.options());
      for (int64_t k = 0; k < o.probes; ++k)
        div = div + projected_jacobian(v, x, probes[k], /*create_graph=*/false) / static_cast<double>(o.probes);
    }
    return torch::cat({v.detach(), div.detach().unsqueeze(1)}, 1);
  };
  Rk45Options ro;
  ro.rtol = o.rtol;
  ro.atol = o.atol;
  ro.per_row = true;
  const double t0 = o.t_start > 0 ? o.t_start : process.t_min();
  torch::Tensor y0 = torch::cat({x0.reshape({n, d}), torch::zeros({n, 1}, x0.options())}, 1);
  Rk45Result r = integrate_rk45(f, y0, t0, process.t_max(), ro);
  LikelihoodResult out;
  torch::Tensor x_end = r.y.narrow(1, 0, d).reshape(x0.sizes());
  out.prior_logp = process.prior_logp(x_end).to(torch::kFloat64);
  out.divergence = r.y.select(1, d).to(torch::kFloat64);
  out.log_prob = out.prior_logp + out.divergence;
  out.endpoint = x_end;
  out.nfe = r.nfe;
  return out;
}

}  // namespace

LikelihoodResult ode_log_likelihood(const ScoreFn& score, const NoiseProcess& process, const torch::Tensor& x,
                                    const LikelihoodOptions& o, at::Generator& gen,
                                    const std::function<void(int64_t, int64_t)>& progress) {
  require(o.divergence == "exact" || o.divergence == "hutchinson",
          "unknown divergence '{}'; valid: exact, hutchinson", o.divergence);
  require(o.probes >= 1, "hutchinson probes must be >= 1, got {}", o.probes);
  require(o.batch >= 1, "likelihood batch must be >= 1, got {}", o.batch);
  if (o.t_start > 0) process.check_time(o.t_start, "the data's time t_start");
  require(x.dim() >= 2 && x.size(0) >= 1, "likelihood needs points [N, D]");
  require(torch::isfinite(x).all().item<bool>(), "the points contain NaN or Inf");
  LikelihoodResult all;
  std::vector<torch::Tensor> logp, prior, div, end;
  const int64_t n = x.size(0);
  for (int64_t start = 0; start < n; start += o.batch) {
    LikelihoodResult b = solve_batch(score, process, x.narrow(0, start, std::min(o.batch, n - start)), o, gen);
    logp.push_back(b.log_prob);
    prior.push_back(b.prior_logp);
    div.push_back(b.divergence);
    end.push_back(b.endpoint);
    all.nfe += b.nfe;
    if (progress) progress(std::min(n, start + o.batch), n);
  }
  all.log_prob = torch::cat(logp);
  all.prior_logp = torch::cat(prior);
  all.divergence = torch::cat(div);
  all.endpoint = torch::cat(end);
  return all;
}

torch::Tensor bits_per_dim(const torch::Tensor& nll_nats, int64_t dim, double scale) {
  require(dim >= 1 && scale > 0, "bits per dimension needs dim >= 1 and scale > 0");
  return (nll_nats.to(torch::kFloat64) / static_cast<double>(dim) - std::log(scale)) / std::log(2.0) + 8.0;
}

torch::Tensor dequantize(const torch::Tensor& levels, double scale, double offset, at::Generator& gen) {
  torch::Tensor k = levels.to(torch::kFloat64);
  require(k.min().item<double>() >= 0 && k.max().item<double>() <= 255 && torch::equal(k, k.round()),
          "dequantisation needs integer levels in [0, 255]");
  return scale * (k + torch::rand(k.sizes(), gen, torch::kFloat64)) / 256.0 + offset;
}

MeanSe mean_se(const torch::Tensor& values) {
  torch::Tensor v = values.to(torch::kFloat64);
  double se = v.numel() > 1 ? v.std().item<double>() / std::sqrt(static_cast<double>(v.numel())) : 0.0;
  return {v.mean().item<double>(), se};
}

}  // namespace scorediff
