// Contrastive divergence with short-run Langevin and a replay buffer (see objectives/contrastive.hpp).
#include "scorediff/objectives/contrastive.hpp"

#include <torch/torch.h>

#include <cmath>

namespace scorediff {

ContrastiveDivergence::ContrastiveDivergence(const ObjectiveOptions& options) : state_(std::make_shared<State>()) {
  state_->options = options;
}

LossTerms ContrastiveDivergence::operator()(const ScoreFn&, const NoiseProcess&, const torch::Tensor&,
                                            at::Generator&) const {
  fail("objective.name = 'cd' needs the model's energy; it trains through Trainer, not as a score objective");
}

torch::Tensor ContrastiveDivergence::energy(const ModelEnergy& model, const NoiseProcess& process,
                                            const torch::Tensor& x) const {
  return model(x, torch::full({x.size(0)}, process.t_at_sigma(options().sigma), x.options()));
}

torch::Tensor ContrastiveDivergence::restart(int64_t rows, const torch::Tensor& like, at::Generator& gen) const {
  torch::Tensor u = torch::rand({rows, like.size(1)}, gen, like.options());
  return state_->low + (state_->high - state_->low) * u;
}

void ContrastiveDivergence::set_box(double low, double high) {
  require(std::isfinite(low) && std::isfinite(high) && low < high, "cd: the restart box [{}, {}] is not an interval",
          low, high);
  state_->low = low;
  state_->high = high;
}

void ContrastiveDivergence::move(const EnergyFn& energy, torch::Tensor& x, at::Generator& gen) const {
  const ObjectiveOptions& o = options();
  const int64_t rows = x.size(0);
  if (o.global_moves > 0) {
    torch::NoGradGuard no_grad;
    torch::Tensor u_x = energy(x);
    for (int64_t j = 0; j < o.global_moves; ++j) {
      torch::Tensor y = restart(rows, x, gen);
      torch::Tensor u_y = energy(y);
      // Independence proposal q uniform on the box: acceptance exp(U(x) − U(y)), q cancelling.
      torch::Tensor accept = torch::log(torch::rand({rows}, gen, x.options())) < (u_x - u_y);
      x = torch::where(accept.unsqueeze(1), y, x);
      u_x = torch::where(accept, u_y, u_x);
    }
  }
  const double noise = o.sgld_noise_auto ? std::sqrt(2.0 * o.sgld_step) : o.sgld_noise;
  for (int64_t k = 0; k < o.sgld_steps; ++k) {
    torch::Tensor input = x.detach().requires_grad_(true);
    torch::Tensor u = energy(input).sum();
    torch::Tensor grad = torch::autograd::grad({u}, {input})[0];
    torch::NoGradGuard no_grad;
    torch::Tensor z = torch::randn(x.sizes(), gen, x.options());
    x = (x.detach() - o.sgld_step * grad + noise * z).clamp(state_->low, state_->high);
  }
  x = x.detach();
}

LossTerms ContrastiveDivergence::loss(const ModelEnergy& model, const NoiseProcess& process, const torch::Tensor& x0,
                                      at::Generator& gen) {
  const ObjectiveOptions& o = options();
  const int64_t batch = x0.size(0);
  require(batch <= o.buffer, "objective.buffer = {} is smaller than the batch of {}", o.buffer, batch);
  State& s = *state_;
  if (!s.buffer.defined()) {
    if (!(s.low < s.high)) {  // the restart box: the first batch's range, widened by a tenth on each side
      const double lo = x0.min().item<double>(), hi = x0.max().item<double>();
      const double margin = 0.1 * std::max(hi - lo, 1e-6);
      set_box(lo - margin, hi + margin);
    }
    s.buffer = restart(o.buffer, x0.reshape({batch, -1}), gen);
  }
  if (s.buffer.device() != x0.device()) s.buffer = s.buffer.to(x0.device());  // restored on the CPU
  torch::Tensor flat = x0.reshape({batch, -1});
  require(flat.size(1) == s.buffer.size(1), "cd: data of dimension {} do not match the buffer's {}", flat.size(1),
          s.buffer.size(1));
  torch::Tensor index = torch::randperm(o.buffer, gen, torch::TensorOptions().dtype(torch::kInt64).device(x0.device()))
                            .slice(0, 0, batch);
  torch::Tensor chains = s.buffer.index_select(0, index);
  torch::Tensor fresh = torch::rand({batch}, gen, flat.options()) < o.reinit;
  chains = torch::where(fresh.unsqueeze(1), restart(batch, flat, gen), chains);
  const torch::IntArrayRef shape = x0.sizes();
  move([&](const torch::Tensor& x) { return energy(model, process, x.reshape(shape)); }, chains, gen);
  s.buffer.index_copy_(0, index, chains);

  // Positives: data noised at σ, the density U(·, σ) describes.
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor sigma = torch::full({batch}, o.sigma, f64);
  torch::Tensor t = process.t_of_sigma(sigma);
  torch::Tensor m = process.mean_coef(t).to(flat.dtype()), sd = process.std(t).to(flat.dtype());
  torch::Tensor positive = per_sample(m, flat) * flat + per_sample(sd, flat) * torch::randn(flat.sizes(), gen, flat.options());
  torch::Tensor u_pos = energy(model, process, positive.reshape(x0.sizes()));
  torch::Tensor u_neg = energy(model, process, chains.reshape(x0.sizes()));
  LossTerms terms;
  terms.loss = u_pos - u_neg + o.energy_reg * (u_pos * u_pos + u_neg * u_neg);
  terms.sigma = sigma;
  terms.level = torch::zeros({batch}, torch::kInt64);
  return terms;
}

void ContrastiveDivergence::save(TensorFile& file) const {
  if (!state_->buffer.defined()) return;
  file.tensors.emplace_back("objective.buffer", state_->buffer);
  file.tensors.emplace_back("objective.box", torch::tensor({state_->low, state_->high}, torch::kFloat64));
}

void ContrastiveDivergence::restore(const TensorFile& file, const std::string& origin) {
  if (!file.contains("objective.buffer")) {
    state_->buffer = torch::Tensor();  // saved before the first step
    return;
  }
  const torch::Tensor& buffer = file.at("objective.buffer");
  require(buffer.dim() == 2 && buffer.size(0) == options().buffer,
          "{}: tensor 'objective.buffer' has shape [{}], expected {} chains (objective.buffer)", origin,
          fmt::join(buffer.sizes(), ", "), options().buffer);
  require(file.contains("objective.box") && file.at("objective.box").numel() == 2,
          "{}: tensor 'objective.box' is missing or not of 2 values", origin);
  torch::Tensor box = file.at("objective.box").to(torch::kCPU, torch::kFloat64).contiguous();
  state_->low = box.data_ptr<double>()[0];
  state_->high = box.data_ptr<double>()[1];
  require(std::isfinite(state_->low) && std::isfinite(state_->high) && state_->low < state_->high,
          "{}: tensor 'objective.box' is not an interval", origin);
  state_->buffer = buffer.clone();
}

Objective make_contrastive(const ObjectiveOptions& options, const ScoreFn*) { return ContrastiveDivergence(options); }

}  // namespace scorediff
