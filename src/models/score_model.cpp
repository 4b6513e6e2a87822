#include "scorediff/models/score_model.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "scorediff/models/energy.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/models/unet.hpp"

namespace scorediff {

Parametrisation parse_parametrisation(const std::string& name) {
  if (name == "score") return Parametrisation::Score;
  if (name == "eps") return Parametrisation::Eps;
  if (name == "raw") return Parametrisation::Raw;
  if (name == "denoiser") return Parametrisation::Denoiser;
  if (name == "velocity") return Parametrisation::Velocity;
  if (name == "consistency") return Parametrisation::Consistency;
  fail("unknown parametrisation '{}'; valid: consistency, denoiser, eps, raw, score, velocity", name);
}

torch::Tensor ScoreNetworkImpl::energy(const torch::Tensor&, const torch::Tensor&) {
  fail("this model has no energy: only energy models (model.name = 'energy-mlp' or 'energy-cnn') define one");
}

ScoreModelImpl::ScoreModelImpl(std::shared_ptr<ScoreNetworkImpl> network, Parametrisation param,
                               double input_sigma_data, bool condition_on_time)
    : network_(register_module("net", std::move(network))),
      param_(param),
      input_sigma_data_(input_sigma_data),
      condition_on_time_(condition_on_time) {}

void ScoreModelImpl::add_loss_uncertainty(at::Generator& gen) {
  require(!has_loss_uncertainty(), "the model already has a loss-uncertainty head");
  // 64 frequencies of std 1 on c = ln(σ)/4 (c spans about [−1.6, 1.1] for σ in [0.002, 80]): smooth in ln σ.
  FourierFeatures features(64, 1.0, gen);
  torch::nn::Linear linear(features->out_features(), 1);
  torch::NoGradGuard no_grad;
  linear->weight.zero_();
  linear->bias.zero_();
  uncertainty_ = register_module("uncertainty", torch::nn::Sequential(features, linear));
  uncertainty_->to(parameters().front().device());
}

torch::Tensor ScoreModelImpl::log_variance(const torch::Tensor& sigma) {
  require(has_loss_uncertainty(), "this model has no loss-uncertainty head (model.loss_uncertainty = false)");
  const torch::TensorOptions like = uncertainty_->parameters().front().options();
  return uncertainty_->forward(torch::log(sigma.to(like)) / 4).reshape({-1});
}

torch::Tensor ScoreModelImpl::condition(const torch::Tensor& sigma, const torch::Tensor& time,
                                        const torch::Tensor& like) const {
  if (!condition_on_time_) return torch::log(sigma);
  require(time.defined(), "this model is conditioned on time (model.condition = 'time'): the caller must pass t");
  return time.to(like.dtype());
}

namespace {

// Whether m(t) is exactly one everywhere (VE processes, the σ-ladder, EDM), checked in one pass on the CPU:
// the two divisions by it are then skipped, two ATen operations per evaluation of a toy model.
bool all_ones_on_cpu(const torch::Tensor& m) {
  if (!m.device().is_cpu() || !m.is_contiguous() || m.requires_grad()) return false;
  auto check = [&](const auto* p) { return std::all_of(p, p + m.numel(), [](auto v) { return v == 1; }); };
  if (m.scalar_type() == torch::kFloat32) return check(m.data_ptr<float>());
  if (m.scalar_type() == torch::kFloat64) return check(m.data_ptr<double>());
  return false;
}

}  // namespace

torch::Tensor ScoreModelImpl::score(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std,
                                    const torch::Tensor& time, const torch::Tensor& labels) {
  torch::Tensor m = mean_coef.to(x.dtype()), s = std.to(x.dtype());
  const bool unit_mean = all_ones_on_cpu(m);
  torch::Tensor sigma = unit_mean ? s : s / m;
  torch::Tensor x_hat = unit_mean ? x : x / per_sample(m, x);
  if (input_sigma_data_ > 0) x_hat = x_hat * per_sample(torch::rsqrt(sigma * sigma + input_sigma_data_ * input_sigma_data_), x);
  torch::Tensor out = network_->forward(x_hat, condition(sigma, time, x), labels);
  switch (param_) {
    case Parametrisation::Score: return out / per_sample(s, x);
    case Parametrisation::Eps: return -out / per_sample(s, x);
    case Parametrisation::Raw: return out;
    case Parametrisation::Denoiser:
    case Parametrisation::Consistency: {
      const double d2 = input_sigma_data_ * input_sigma_data_;
      torch::Tensor sig2 = sigma * sigma;
      // The consistency form shifts σ by σ_min in c_skip and c_out (σ_min = 0 gives the denoiser's).
      torch::Tensor shifted = param_ == Parametrisation::Consistency ? sigma - boundary_sigma_ : sigma;
      torch::Tensor c_skip = d2 / (shifted * shifted + d2), c_out = shifted * input_sigma_data_ * torch::rsqrt(sig2 + d2);
      torch::Tensor x_scaled = x / per_sample(m, x);
      torch::Tensor denoised = per_sample(c_skip, x) * x_scaled + per_sample(c_out, x) * out;
      return (denoised - x_scaled) / per_sample(m * sig2, x);
    }
    case Parametrisation::Velocity: return -(x + per_sample(m, x) * out) / per_sample(s * (m + s), x);
  }
  return out;
}

torch::Tensor ScoreModelImpl::energy(const torch::Tensor& x, const torch::Tensor& mean_coef, const torch::Tensor& std,
                                     const torch::Tensor& time) {
  torch::Tensor m = mean_coef.to(x.dtype()), s = std.to(x.dtype());
  torch::Tensor sigma = s / m;
  torch::Tensor c_in = input_sigma_data_ > 0 ? torch::rsqrt(sigma * sigma + input_sigma_data_ * input_sigma_data_)
                                             : torch::ones_like(sigma);
  torch::Tensor e = network_->energy(x / per_sample(m, x) * per_sample(c_in, x), condition(sigma, time, x));
  // score = −∇ₓU: the network's F = −∇_x̂E is scaled by c_in/m through x̂ and by the parametrisation.
  switch (param_) {
    case Parametrisation::Score: return e * m / (c_in * s);
    case Parametrisation::Eps: return -e * m / (c_in * s);
    case Parametrisation::Raw: return e * m / c_in;
    case Parametrisation::Denoiser:
    case Parametrisation::Consistency:
    case Parametrisation::Velocity: fail("energy models support model.param = 'score', 'eps' or 'raw' only");
  }
  return e;
}

void register_builtins(Registry<ModelFactory>& r) {
  r.add("mlp", [](const ModelOptions& o, int64_t dim, at::Generator& gen) -> std::shared_ptr<ScoreNetworkImpl> {
    return std::make_shared<MlpNetworkImpl>(o, dim, gen);
  }, "multi-layer perceptron on flat inputs");
  r.add("energy-mlp", [](const ModelOptions& o, int64_t dim, at::Generator& gen) -> std::shared_ptr<ScoreNetworkImpl> {
    return std::make_shared<EnergyMlpImpl>(o, dim, gen);
  }, "energy-based model: an MLP energy E(x, σ), score −∇ₓE by autograd");
  r.add("energy-cnn", [](const ModelOptions& o, int64_t dim, at::Generator& gen) -> std::shared_ptr<ScoreNetworkImpl> {
    return std::make_shared<EnergyCnnImpl>(o, dim, gen);
  }, "energy-based model for images: a convolutional energy E(x, σ), score −∇ₓE by autograd");
  r.add("unet", [](const ModelOptions& o, int64_t dim, at::Generator& gen) -> std::shared_ptr<ScoreNetworkImpl> {
    return std::make_shared<UnetImpl>(o, dim, gen);
  }, "U-Net for images: residual blocks, GroupNorm, Fourier noise embedding, self-attention");
}

const Registry<ModelFactory>& models() { return builtin_registry<ModelFactory>("model"); }

void bind(Schema& s, ModelOptions& o) {
  s.add("model.name", &o.name, "network").one_of(models().names());
  s.add("model.width", &o.width, "hidden width").at_least(1);
  s.add("model.depth", &o.depth, "hidden layers").at_least(1);
  s.add("model.activation", &o.activation, "activation").one_of({"gelu", "relu", "silu", "softplus", "tanh"});
  s.add("model.param", &o.param, "output parametrisation").one_of({"consistency", "denoiser", "eps", "raw", "score", "velocity"});
  s.add("model.sigma_min", &o.sigma_min, "param = consistency: the sigma where f(x, sigma) = x (scorediff distill sets it)")
      .non_negative();
  s.add("model.embedding", &o.embedding, "noise-level conditioning").one_of({"fourier", "log-sigma"});
  s.add("model.condition", &o.condition, "what the network is conditioned on: log sigma or the process' time t")
      .one_of({"log-sigma", "time"});
  s.add("model.classes", &o.classes,
        "class-conditional network with this many classes (plus a null class); 0 = unconditional")
      .in_range(0, 100000);
  s.add("model.fourier_features", &o.fourier_features, "Fourier frequencies (2x features)").at_least(1);
  s.add("model.fourier_scale", &o.fourier_scale, "std of the Fourier frequencies").positive();
  s.add("model.input_scaling", &o.input_scaling, "scale inputs by 1/sqrt(sigma_data^2 + sigma^2)");
  s.add("model.sigma_data", &o.sigma_data, "data std for input scaling; 0 = estimate from data").non_negative();
  s.add("model.channels", &o.channels, "U-Net base channels").at_least(1);
  s.add("model.channel_mult", &o.channel_mult, "U-Net channel multiplier per resolution level").at_least(1);
  s.add("model.res_blocks", &o.res_blocks, "U-Net residual blocks per level").at_least(1);
  s.add("model.attention", &o.attention, "U-Net resolutions with self-attention").at_least(1);
  s.add("model.dropout", &o.dropout, "U-Net dropout in residual blocks").in_range(0, 0.99);
  s.add("model.conv_precision", &o.conv_precision,
        "U-Net convolutions' arithmetic; bfloat16 keeps parameters, gradients and all else in float32 (mixed precision)")
      .one_of({"bfloat16", "float32"});
  s.add("model.channels_last", &o.channels_last, "U-Net feature maps in channels-last (NHWC) memory layout");
  s.add("model.loss_uncertainty", &o.loss_uncertainty,
        "learn u(sigma) and train on L/exp(u) + D u per sample (EDM2's loss weighting by uncertainty)");
}

ScoreModel make_model(const ModelOptions& o, int64_t dim, at::Generator& gen) {
  require(!o.input_scaling || o.sigma_data > 0, "model.sigma_data must be > 0 when model.input_scaling is on");
  require((o.param != "denoiser" && o.param != "consistency") || o.input_scaling,
          "model.param = '{}' is EDM's preconditioning: it needs model.input_scaling = true", o.param);
  require(o.sigma_min == 0 || o.param == "consistency", "model.sigma_min applies to model.param = 'consistency' only");
  require((o.param != "denoiser" && o.param != "velocity" && o.param != "consistency") || o.name.rfind("energy-", 0) != 0,
          "energy models do not support model.param = '{}'", o.param);
  require(o.classes == 0 || o.name.rfind("energy-", 0) != 0,
          "energy models have no class conditioning: model.classes must be 0 for '{}'", o.name);
  auto network = models().get(o.name)(o, dim, gen);
  ScoreModel model(network, parse_parametrisation(o.param), o.input_scaling ? o.sigma_data : 0.0,
                   o.condition == "time");
  model->set_classes(o.classes);
  model->set_boundary_sigma(o.sigma_min);
  if (o.loss_uncertainty) model->add_loss_uncertainty(gen);
  return model;
}

namespace {
// Outside autograd on the CPU, batches are evaluated this many input elements at a time (41 images of
// 28 x 28): the U-Net's activations for a few dozen images stay in cache, where a 512-image batch runs
// 1.8 times slower per image (measured on the Fashion-MNIST U-Net, 1 thread: 3.1 ms per image at 16-64
// images, 5.6 ms at 512). Rows are independent, so the split changes nothing beyond rounding.
constexpr int64_t kCpuChunkElements = 1 << 15;
}  // namespace

Workload workload_of(const ModelOptions& options) {
  return options.name == "unet" || options.name == "energy-cnn" ? Workload::Convolution : Workload::Dense;
}

ScoreFn model_score_fn(ScoreModel model, std::shared_ptr<const NoiseProcess> process, torch::Tensor labels) {
  const torch::TensorOptions options = model->parameters().front().options();
  require(!labels.defined() || model->classes() > 0, "labels given to a model without classes (model.classes = 0)");
  if (labels.defined()) labels = labels.reshape({-1}).to(options.device(), torch::kInt64);
  // Rows [start, start + n) of x carry labels [start, start + n).
  auto evaluate = [model, process, labels](const torch::Tensor& x, const torch::Tensor& t, int64_t start) mutable {
    const torch::Tensor own = labels.defined() ? labels.narrow(0, start, x.size(0)) : labels;
    return model->score(x, process->mean_coef(t), process->std(t), t, own);
  };
  return [evaluate, options, labels](const torch::Tensor& x, const torch::Tensor& t) mutable {
    require(!labels.defined() || x.size(0) == labels.size(0),
            "the score is bound to {} labels, but is evaluated on {} rows", labels.size(0), x.size(0));
    // Callers in another dtype or device (the float64 density grid, say) get their own back.
    const bool native = x.dtype() == options.dtype() && x.device() == options.device();
    torch::Tensor x_model = native ? x : x.to(options), t_model = native ? t : t.to(options);
    const int64_t rows = x_model.size(0), per_row = std::max<int64_t>(1, x_model.numel() / std::max<int64_t>(rows, 1));
    const int64_t chunk = std::max<int64_t>(1, kCpuChunkElements / per_row);
    torch::Tensor out;
    if (x_model.is_cpu() && !torch::GradMode::is_enabled() && rows > chunk) {
      std::vector<torch::Tensor> parts;
      for (int64_t start = 0; start < rows; start += chunk) {
        const int64_t n = std::min(chunk, rows - start);
        parts.push_back(evaluate(x_model.narrow(0, start, n), t_model.narrow(0, start, n), start));
      }
      out = torch::cat(parts);
    } else {
      out = evaluate(x_model, t_model, 0);
    }
    return native ? out : out.to(x.options());
  };
}

torch::Tensor energy_at_sigma(ScoreModel& model, const NoiseProcess& process, const torch::Tensor& points, double sigma) {
  torch::NoGradGuard no_grad;
  auto device = model->parameters().front().device();
  torch::Tensor x = points.to(device, torch::kFloat32);
  torch::Tensor t = torch::full({x.size(0)}, process.t_at_sigma(sigma), x.options());
  return model->energy(x, process.mean_coef(t), process.std(t), t).to(torch::kCPU, torch::kFloat64);
}

}  // namespace scorediff
