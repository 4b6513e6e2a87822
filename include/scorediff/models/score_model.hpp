// Score models: a network F(x̂, log σ) plus a parametrisation that turns F into a score (DESIGN §2).
#pragma once
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>

#include "scorediff/core/registry.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/core/schema.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/process/score_fn.hpp"

namespace scorediff {

// How a network output F becomes a score, given the marginal std s(t):
//   score: s = F/std (NCSN), eps: s = −F/std (DDPM), raw: s = F (seed 001's ScoreNet, the Python peer's),
//   denoiser: EDM's preconditioning (Karras et al. 2022, Table 1) D = c_skip x̂ + c_out F(c_in x̂, log σ)
//   with c_skip = σ_d²/(σ² + σ_d²), c_out = σσ_d/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²), x̂ = x/m, and
//   s = (D − x̂)/(m σ²) by Tweedie;
//   velocity: F = v̂, the flow-matching velocity v = ε − x₀ (Lipman et al. 2023), for any process: from
//   x = m x₀ + s ε, ε = (x + m v)/(m + s) and s = −(x + m F)/(s (m + s)).
//   consistency: a consistency function (Song et al. 2023, "Consistency models", appendix C, after EDM)
//   f = c_skip x̂ + c_out F with c_skip = σ_d²/((σ − σ_min)² + σ_d²), c_out = σ_d (σ − σ_min)/√(σ² + σ_d²),
//   so that f(x, σ_min) = x exactly (the boundary condition), and s = (f − x̂)/(m σ²) as for the denoiser:
//   every sampler reads f as the Tweedie mean (the `consistency` sampler uses it as the ODE's end point).
enum class Parametrisation { Score, Eps, Raw, Denoiser, Velocity, Consistency };
Parametrisation parse_parametrisation(const std::string& name);

// A network conditioned on the noise level: x [B, ...] (already input-scaled), log_sigma [B] -> F like x.
// Class-conditional networks (model.classes = K > 0) also take labels [B] int64 in [0, K], K being the null
// class (unconditional; what label dropout trains); undefined labels mean the null class for every row.
// Networks without classes refuse defined labels.
class ScoreNetworkImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& log_sigma,
                                const torch::Tensor& labels = {}) = 0;
  // Energy networks (F = −∇ₓE) also give E itself [B]; others have no energy.
  virtual bool has_energy() const { return false; }
  virtual torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& log_sigma);
};

struct ModelOptions {
  std::string name = "mlp";
  int64_t width = 128;
  int64_t depth = 3;  // hidden layers
  std::string activation = "silu";
  std::string param = "score";
  std::string embedding = "fourier";  // fourier: Gaussian Fourier features of c; log-sigma: c/4 appended
  std::string condition = "log-sigma";  // c: log-sigma (log σ, any process) or time (the process' t)
  // Class conditioning: K classes plus a null class K (unconditional), a learned embedding added to the
  // noise embedding (MLP: its first layer; U-Net: every block). 0 = unconditional, the modules of before.
  int64_t classes = 0;
  int64_t fourier_features = 16;      // F frequencies -> 2F features
  double fourier_scale = 1.0;         // W ~ N(0, scale²)
  bool input_scaling = true;          // feed x̂ / √(σ_data² + σ²) so the input has unit scale at every σ
  double sigma_data = 0.0;            // 0: estimated from the training data when training starts
  double sigma_min = 0.0;             // param = consistency: σ_min of the boundary condition f(x, σ_min) = x
  // U-Net (model.name = unet)
  int64_t channels = 32;                        // base channels
  std::vector<double> channel_mult{1, 2, 2};    // per resolution level, halving the size between levels
  int64_t res_blocks = 1;                       // residual blocks per level (down path; up path has one more)
  std::vector<double> attention;                // resolutions with self-attention (the middle block always has it)
  double dropout = 0.0;
  // The U-Net's convolutions in "float32", or in "bfloat16" with everything else (parameters, gradients,
  // optimiser, normalisation, activations) in float32: mixed precision, about 1.6x faster per training step
  // on a CPU with native bfloat16 (AVX-512 BF16, AMX) and on GPUs. Under bfloat16 the attention's two batched
  // products run in bfloat16 too (its softmax in float32): LibTorch 1.13 gives them to oneDNN in one call.
  // In float32 it loops over the images (docs/performance.md, "attention's batched products").
  std::string conv_precision = "float32";
  // The U-Net's feature maps in channels-last (NHWC) memory layout instead of NCHW: oneDNN's convolutions are
  // faster there (docs/performance.md, "channels-last"); the parameters, checkpoints and results are the same up
  // to the order of rounding.
  bool channels_last = false;
  // EDM2's learned loss uncertainty (Karras et al. 2024, §5, after Kendall et al. 2018): a head u(σ), linear in
  // Fourier features of ln(σ)/4 and zero at the start, trained with the model; the trainer minimises
  // L/e^u(σ) + D u(σ) per sample (D: elements per sample), so e^u tracks the mean loss per element at each σ and
  // every noise level weighs the same in the gradient. Off: the objective's loss as it is.
  bool loss_uncertainty = false;
  std::vector<int64_t> image_shape;             // [C, H, W] of the data; filled from the dataset, not configured
};

class ScoreModelImpl : public torch::nn::Module {
 public:
  ScoreModelImpl(std::shared_ptr<ScoreNetworkImpl> network, Parametrisation param, double input_sigma_data,
                 bool condition_on_time = false);
  // x [B, ...]; mean_coef, std [B] are m(t), s(t) of the process at each sample's time; time [B] is t
  // itself, required by models conditioned on time.
  // labels [B] int64 in [0, classes()] for class-conditional models (classes(): the null class); undefined: the
  // null class.
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std,
                      const torch::Tensor& time = {}, const torch::Tensor& labels = {});
  // For energy networks: U(x) with score = −∇ₓU exactly, whatever the input scaling and
  // parametrisation (U = E(c_in x/m)/(c_in s) for `score`). [B]
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std,
                       const torch::Tensor& time = {});
  bool conditioned_on_time() const { return condition_on_time_; }
  // K of a class-conditional model (model.classes), 0 for an unconditional one.
  int64_t classes() const { return classes_; }
  void set_classes(int64_t classes) { classes_ = classes; }
  // param = consistency: the σ at which f(x, σ) = x.
  void set_boundary_sigma(double sigma_min) { boundary_sigma_ = sigma_min; }
  double boundary_sigma() const { return boundary_sigma_; }
  ScoreNetworkImpl& network() { return *network_; }
  Parametrisation parametrisation() const { return param_; }
  // σ_data of the input scaling x̂ ← x̂/√(σ² + σ_data²); 0 when it is off.
  double input_sigma_data() const { return input_sigma_data_; }
  // The loss-uncertainty head (ModelOptions::loss_uncertainty), its parameters drawn from `gen`.
  void add_loss_uncertainty(at::Generator& gen);
  bool has_loss_uncertainty() const { return !uncertainty_.is_empty(); }
  // u(σ) [B] for noise levels σ [B] (> 0), in the head's dtype; differentiable in the head's parameters.
  torch::Tensor log_variance(const torch::Tensor& sigma);

 private:
  std::shared_ptr<ScoreNetworkImpl> network_;
  Parametrisation param_;
  double input_sigma_data_;  // 0 disables input scaling
  bool condition_on_time_;
  int64_t classes_ = 0;
  double boundary_sigma_ = 0.0;
  torch::nn::Sequential uncertainty_{nullptr};
  // The network's conditioning input: log σ, or t.
  torch::Tensor condition(const torch::Tensor& sigma, const torch::Tensor& time, const torch::Tensor& like) const;
};
TORCH_MODULE(ScoreModel);

using ModelFactory =
    std::function<std::shared_ptr<ScoreNetworkImpl>(const ModelOptions&, int64_t dim, at::Generator& gen)>;
void register_builtins(Registry<ModelFactory>& registry);
const Registry<ModelFactory>& models();
void bind(Schema& schema, ModelOptions& options);

// Builds the model and initialises every parameter and buffer from `gen` (reproducible from --seed).
// Requires options.sigma_data > 0 when input_scaling is on.
ScoreModel make_model(const ModelOptions& options, int64_t dim, at::Generator& gen);

// Where the model's threads pay off: convolutions for the U-Net, matrix products otherwise.
Workload workload_of(const ModelOptions& options);

// The score of a model under a process, as the ScoreFn every sampler consumes. Differentiable. labels [B]
// (class-conditional models) are bound to the rows of every x the function receives, which must then have B
// rows; undefined: the null class.
ScoreFn model_score_fn(ScoreModel model, std::shared_ptr<const NoiseProcess> process, torch::Tensor labels = {});

// U(x, σ) of an energy model at points [N, D], evaluated on the model's device without a graph;
// float64 on the CPU (for grid normalisation and NLL).
torch::Tensor energy_at_sigma(ScoreModel& model, const NoiseProcess& process, const torch::Tensor& points, double sigma);


}  // namespace scorediff
