// NoiseProcess: the forward corruption x_t = m(t)·x₀ + s(t)·ε shared by objectives, samplers and
// likelihoods (DESIGN §2). Every method takes one time per sample: t is [B].
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "scorediff/core/registry.hpp"
#include "scorediff/core/schema.hpp"

namespace scorediff {

class NoiseProcess {
 public:
  virtual ~NoiseProcess() = default;
  virtual std::string name() const = 0;

  virtual torch::Tensor mean_coef(const torch::Tensor& t) const = 0;  // m(t)
  virtual torch::Tensor std(const torch::Tensor& t) const = 0;        // s(t)
  // Noise-to-signal ratio s/m: the quantity every process shares and networks are conditioned on.
  virtual torch::Tensor sigma(const torch::Tensor& t) const { return std(t) / mean_coef(t); }
  virtual torch::Tensor t_of_sigma(const torch::Tensor& sigma) const = 0;
  // Forward SDE dx = f(x, t) dt + g(t) dw.
  virtual torch::Tensor drift(const torch::Tensor& x, const torch::Tensor& t) const = 0;  // [B, D]
  virtual torch::Tensor diffusion(const torch::Tensor& t) const = 0;                      // [B]

  virtual torch::Tensor prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                                     const torch::TensorOptions& options = {}) const = 0;  // [n, D]
  virtual torch::Tensor prior_logp(const torch::Tensor& x) const = 0;                    // [B]

  virtual double t_min() const = 0;
  virtual double t_max() const = 0;
  // Discrete noise levels σ_1 > … > σ_L for processes that have them (the NCSN ladder); empty otherwise.
  virtual std::vector<double> levels() const { return {}; }

  // Throws a one-line error unless t_min <= t <= t_max (what: how the caller names the time).
  void check_time(double t, const std::string& what = "t") const;

  // Scalar conveniences for schedules.
  double sigma_at(double t) const;
  double t_at_sigma(double sigma) const;
  double sigma_min() const { return sigma_at(t_min()); }
  double sigma_max() const { return sigma_at(t_max()); }
};

// Variance exploding: σ(t) = σ_min (σ_max/σ_min)^t on t ∈ [0, 1], m = 1, f = 0,
// g = σ(t) √(2 ln(σ_max/σ_min)) (score_sde conventions; seed 003 §SDE).
class VEProcess : public NoiseProcess {
 public:
  VEProcess(double sigma_min, double sigma_max, double t_min = 1e-5);
  std::string name() const override { return "ve"; }
  torch::Tensor mean_coef(const torch::Tensor& t) const override;
  torch::Tensor std(const torch::Tensor& t) const override;
  torch::Tensor sigma(const torch::Tensor& t) const override { return std(t); }
  torch::Tensor t_of_sigma(const torch::Tensor& sigma) const override;
  torch::Tensor drift(const torch::Tensor& x, const torch::Tensor& t) const override;
  torch::Tensor diffusion(const torch::Tensor& t) const override;
  torch::Tensor prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                             const torch::TensorOptions& options = {}) const override;
  torch::Tensor prior_logp(const torch::Tensor& x) const override;
  double t_min() const override { return t_min_; }
  double t_max() const override { return 1.0; }

 protected:
  double sigma_min_, sigma_max_;
  double t_min_ = 1e-5;  // score_sde's sampling eps for VE
};

// NCSN's σ-ladder: L geometric levels σ_max = σ_1 > … > σ_L = σ_min (seed 001 §4.3), i.e. VE restricted
// to t_i = 1 − i/(L−1).
class SigmaLadder : public VEProcess {
 public:
  SigmaLadder(double sigma_min, double sigma_max, int64_t levels);
  std::string name() const override { return "ladder"; }
  std::vector<double> levels() const override;

 private:
  int64_t levels_;
};

// Variance preserving (DDPM as an SDE): β(t) = β_min + t(β_max − β_min),
// m = exp(−¼t²(β_max − β_min) − ½tβ_min), std = √(1 − m²), f = −½β x, g = √β, prior N(0, I).
// sub-VP (Song et al. 2021 §3.4) keeps m and f but has std = 1 − m² and g = √(β(1 − m⁴)).
class VPProcess : public NoiseProcess {
 public:
  VPProcess(double beta_min, double beta_max, double t_min, bool sub = false);
  std::string name() const override { return sub_ ? "subvp" : "vp"; }
  torch::Tensor beta(const torch::Tensor& t) const;
  torch::Tensor mean_coef(const torch::Tensor& t) const override;
  torch::Tensor std(const torch::Tensor& t) const override;
  torch::Tensor t_of_sigma(const torch::Tensor& sigma) const override;
  torch::Tensor drift(const torch::Tensor& x, const torch::Tensor& t) const override;
  torch::Tensor diffusion(const torch::Tensor& t) const override;
  torch::Tensor prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                             const torch::TensorOptions& options = {}) const override;
  torch::Tensor prior_logp(const torch::Tensor& x) const override;
  double t_min() const override { return t_min_; }
  double t_max() const override { return 1.0; }

 private:
  torch::Tensor log_mean_coef(const torch::Tensor& t) const;
  double beta_min_, beta_max_, t_min_;
  bool sub_;
};

// EDM (Karras et al. 2022): σ(t) = t, m = 1, f = 0, g = √(2t), t ∈ [σ_min, σ_max], prior N(0, σ_max² I).
class EDMProcess : public NoiseProcess {
 public:
  EDMProcess(double sigma_min, double sigma_max);
  std::string name() const override { return "edm"; }
  torch::Tensor mean_coef(const torch::Tensor& t) const override { return torch::ones_like(t); }
  torch::Tensor std(const torch::Tensor& t) const override { return t.clone(); }
  torch::Tensor sigma(const torch::Tensor& t) const override { return t.clone(); }
  torch::Tensor t_of_sigma(const torch::Tensor& sigma) const override { return sigma.clone(); }
  torch::Tensor drift(const torch::Tensor& x, const torch::Tensor& t) const override;
  torch::Tensor diffusion(const torch::Tensor& t) const override;
  torch::Tensor prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                             const torch::TensorOptions& options = {}) const override;
  torch::Tensor prior_logp(const torch::Tensor& x) const override;
  double t_min() const override { return sigma_min_; }
  double t_max() const override { return sigma_max_; }

 private:
  double sigma_min_, sigma_max_;
};

// Flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2023): x_t = (1 − t) x₀ + t ε, i.e. m = 1 − t,
// s = t, σ = t/(1 − t), f = −x/(1 − t), g² = 2t/(1 − t), on t ∈ [t_min, t_max] with t_max < 1 (σ is infinite at
// t = 1); prior N(0, t_max² I). Its probability-flow drift is the velocity E[ε − x₀ | x_t].
class FlowProcess : public NoiseProcess {
 public:
  FlowProcess(double t_min, double t_max);
  std::string name() const override { return "flow"; }
  torch::Tensor mean_coef(const torch::Tensor& t) const override { return 1 - t; }
  torch::Tensor std(const torch::Tensor& t) const override { return t.clone(); }
  torch::Tensor sigma(const torch::Tensor& t) const override { return t / (1 - t); }
  torch::Tensor t_of_sigma(const torch::Tensor& sigma) const override { return sigma / (1 + sigma); }
  torch::Tensor drift(const torch::Tensor& x, const torch::Tensor& t) const override;
  torch::Tensor diffusion(const torch::Tensor& t) const override;
  torch::Tensor prior_sample(int64_t n, int64_t dim, at::Generator& gen,
                             const torch::TensorOptions& options = {}) const override;
  torch::Tensor prior_logp(const torch::Tensor& x) const override;
  double t_min() const override { return t_min_; }
  double t_max() const override { return t_max_; }

 private:
  double t_min_, t_max_;
};

// Reshape a per-sample [B] tensor to broadcast against x [B, ...].
torch::Tensor per_sample(const torch::Tensor& v, const torch::Tensor& x);

// The probability-flow ODE's drift f − ½ g² s at times t [B] (Song et al. 2021, eq. 13), x like the score's input.
torch::Tensor probability_flow_drift(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& score,
                                     const NoiseProcess& process, const torch::Tensor& x, const torch::Tensor& t);

// log N(x; 0, scale² I) per sample.
torch::Tensor isotropic_normal_logp(const torch::Tensor& x, double scale);

struct ProcessOptions {
  std::string name = "ladder";
  double sigma_min = 0.01;  // ladder, ve, edm
  double sigma_max = 5.0;   // ladder, ve, edm
  int64_t levels = 10;      // ladder
  double beta_min = 0.1;    // vp, subvp
  double beta_max = 20.0;   // vp, subvp
  double t_min = 0.0;       // ve, vp, subvp, flow: smallest time; 0 = the process' default (ve 1e-5, vp, flow 1e-3)
  double t_max = 0.0;       // flow: largest time, < 1; 0 = 0.99 (σ = 99)
  // "auto": derived from the training data when the run is prepared (process/auto_noise.hpp).
  bool sigma_min_auto = false, sigma_max_auto = false, levels_auto = false;
};

using ProcessFactory = std::function<std::shared_ptr<const NoiseProcess>(const ProcessOptions&)>;
void register_builtins(Registry<ProcessFactory>& registry);
const Registry<ProcessFactory>& processes();
void bind(Schema& schema, ProcessOptions& options);
void validate(const ProcessOptions& options);
std::shared_ptr<const NoiseProcess> make_process(const ProcessOptions& options);

}  // namespace scorediff
