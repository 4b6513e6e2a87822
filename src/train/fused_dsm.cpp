#include "scorediff/train/fused_dsm.hpp"

#include <torch/torch.h>

#include <cmath>

#include "scorediff/kernels/mlp.hpp"
#include "scorediff/models/mlp.hpp"

namespace scorediff {
namespace {

bool cpu_float(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
}

}  // namespace

const DsmObjective* fused_dsm_objective(ScoreModel& model, const Objective& objective, const torch::Tensor& data) {
  const auto* dsm = objective.target<DsmObjective>();
  if (dsm == nullptr || dsm->options.kernel != "gaussian") return nullptr;
  // Its residual is a F + b ε per row: the denoiser and velocity forms add x terms.
  const Parametrisation param = model->parametrisation();
  if (param == Parametrisation::Denoiser || param == Parametrisation::Velocity || param == Parametrisation::Consistency)
    return nullptr;
  auto* net = dynamic_cast<MlpNetworkImpl*>(&model->network());
  if (net == nullptr || net->activation() != Activation::SiLU || !net->fused_training()) return nullptr;
  if (data.dim() != 2 || !data.device().is_cpu() || data.scalar_type() != torch::kFloat32) return nullptr;
  // The layers' weights and biases must be the model's only parameters (Fourier frequencies are a buffer), and
  // all trainable: the step writes exactly their gradients.
  if (model->parameters().size() != 2 * net->layers().size()) return nullptr;
  for (const auto& layer : net->layers())
    if (!cpu_float(layer->weight) || !cpu_float(layer->bias) || !layer->weight.requires_grad() ||
        !layer->bias.requires_grad())
      return nullptr;
  return dsm;
}

LossTerms fused_dsm_step(ScoreModel& model, const NoiseProcess& process, const ObjectiveOptions& o,
                         const torch::Tensor& x0_in, at::Generator& gen, const torch::Tensor& labels) {
  auto& net = dynamic_cast<MlpNetworkImpl&>(model->network());
  const torch::Tensor x0 = x0_in.contiguous();
  const int64_t rows = x0.size(0), d = x0.size(1);
  auto f32 = x0.options();
  // noise_batch's draws in its order (σ, then ε) and its quantities, the tensors' arithmetic written per row.
  LossTerms out;
  torch::Tensor importance;
  const bool importance_sampling = o.sigma_sampling == "importance";
  sample_sigmas(o, process, rows, gen, out.sigma, out.level, importance_sampling ? &importance : nullptr);
  const torch::Tensor t = process.t_of_sigma(out.sigma);
  const torch::Tensor m = process.mean_coef(t).contiguous(), s = process.std(t).contiguous();
  const torch::Tensor eps = torch::randn(x0.sizes(), gen, f32);
  const bool sigma2 = o.weighting == "sigma2" && !importance_sampling;
  torch::Tensor weight;
  if (!sigma2) {
    weight = loss_weight(o, process, t, s.to(torch::kFloat32));
    if (importance_sampling) weight = weight * importance.to(torch::kFloat32);
    weight = weight.to(torch::kFloat32).contiguous();
  }
  const torch::Tensor time = model->conditioned_on_time() ? t.to(torch::kFloat32).contiguous() : torch::Tensor();
  const float* tp = time.defined() ? time.data_ptr<float>() : nullptr;
  const float* lambda = sigma2 ? nullptr : weight.data_ptr<float>();

  torch::Tensor x_hat = torch::empty({rows, d}, f32), cond = torch::empty({rows}, f32);
  DsmRowCoefficients k{torch::empty({rows}, f32), torch::empty({rows}, f32), torch::empty({rows}, f32)};
  const float *xp = x0.data_ptr<float>(), *ep = eps.data_ptr<float>();
  const double *mp = m.data_ptr<double>(), *sp = s.data_ptr<double>();
  float *hp = x_hat.data_ptr<float>(), *cp = cond.data_ptr<float>(), *ap = k.alpha.data_ptr<float>(),
        *bp = k.beta.data_ptr<float>(), *wp = k.omega.data_ptr<float>();
  const double sigma_data = model->input_sigma_data();
  const Parametrisation param = model->parametrisation();
  for (int64_t i = 0; i < rows; ++i) {
    // x̃ = m x₀ + s ε in float32, as noise_batch; then ScoreModelImpl::score: σ = s/m, x̂ = x̃/m (÷ √(σ² + σ_d²)
    // with input scaling), the network conditioned on log σ or t, score = a F.
    const float mf = static_cast<float>(mp[i]), sf = static_cast<float>(sp[i]);
    const double sigma = sp[i] / mp[i];
    double scale = 1.0 / mp[i];
    if (sigma_data > 0) scale /= std::sqrt(sigma * sigma + sigma_data * sigma_data);
    for (int64_t j = 0; j < d; ++j) {
      const float noisy = mf * xp[i * d + j] + sf * ep[i * d + j];
      hp[i * d + j] = static_cast<float>(noisy * scale);
    }
    cp[i] = tp != nullptr ? tp[i] : static_cast<float>(std::log(sigma));
    const double a = param == Parametrisation::Raw ? 1.0 : (param == Parametrisation::Eps ? -1.0 : 1.0) / sf;
    // The DSM objective's loss: σ² weighting ½‖s a F + ε‖², any other λ ½‖a F + ε/s‖².
    ap[i] = static_cast<float>(sigma2 ? sf * a : a);
    bp[i] = sigma2 ? 1.0f : 1.0f / sf;
    wp[i] = sigma2 ? 1.0f : lambda[i];
  }
  std::vector<torch::Tensor> grads;
  for (const auto& layer : net.layers()) {
    grads.push_back(layer->weight.grad());
    grads.push_back(layer->bias.grad());
  }
  mlp_silu_dsm_gradients(net.fused_input(x_hat, cond, labels), net.weights(), net.biases(), eps, k, out.loss, grads);
  size_t g = 0;
  for (auto& layer : net.layers()) {
    if (!layer->weight.grad().is_same(grads[g])) layer->weight.mutable_grad() = grads[g];
    if (!layer->bias.grad().is_same(grads[g + 1])) layer->bias.mutable_grad() = grads[g + 1];
    g += 2;
  }
  return out;
}

}  // namespace scorediff
