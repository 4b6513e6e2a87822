// The fused MLP node and DSM loss, and the MLP's inference and training paths: the same numbers as the ATen /
// autograd compositions. The kernels themselves: test_kernels.cpp.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/kernels/activations.hpp"
#include "scorediff/kernels/gemm.hpp"
#include "scorediff/kernels/mlp.hpp"
#include "scorediff/kernels/optimiser.hpp"
#include "scorediff/models/fused_mlp.hpp"
#include "scorediff/objectives/dsm_loss.hpp"
#include "scorediff/models/mlp.hpp"
#include "scorediff/models/score_model.hpp"
#include "scorediff/process/noise_process.hpp"
#include "scorediff/train/fused_dsm.hpp"
#include "scorediff/train/trainer.hpp"

using namespace scorediff;

TEST(Fused, BFloat16InferenceTracksFloat32) {
  ModelOptions o;
  o.width = 128;
  o.depth = 3;
  o.embedding = "log-sigma";
  auto gen = make_generator(4);
  MlpNetworkImpl net(o, 2, gen);
  net.eval();  // the inference path, where bfloat16 applies
  torch::Tensor x = 2 * torch::randn({1300, 2}, gen);
  torch::InferenceMode guard;
  for (const auto& log_sigma : {torch::full({1300}, std::log(0.3f)), torch::log(0.01 + 5 * torch::rand({1300}, gen))}) {
    torch::Tensor reference = net.forward(x, log_sigma), fast;
    EXPECT_FALSE(BFloat16Inference::active());
    {
      BFloat16Inference bf16;
      EXPECT_TRUE(BFloat16Inference::active());
      fast = net.forward(x, log_sigma);
    }
    EXPECT_FALSE(BFloat16Inference::active());
    const double scale = reference.abs().max().item<double>();
    const double error = (fast - reference).abs().max().item<double>();
    EXPECT_GT(error, 0.0);            // the bfloat16 path ran
    EXPECT_LT(error, 2e-2 * scale);   // and stays within bfloat16's precision
    EXPECT_EQ(fast.scalar_type(), torch::kFloat32);
  }
}

TEST(Fused, MlpInferencePathEqualsTheAutogradPath) {
  for (const std::string activation : {"silu", "relu", "gelu", "tanh", "softplus"}) {
    for (const std::string embedding : {"fourier", "log-sigma"}) {
      ModelOptions o;
      o.activation = activation;
      o.embedding = embedding;
      o.width = 64;
      o.depth = 3;
      auto gen = make_generator(3);
      MlpNetworkImpl net(o, 2, gen);
      torch::Tensor x = torch::randn({1300, 2}, gen);  // not a multiple of the chunk
      torch::Tensor shared = torch::full({1300}, std::log(0.3f));
      torch::Tensor varying = torch::log(0.01 + 5 * torch::rand({1300}, gen));
      // The path follows the module's mode and the inputs: training mode is the fused node; eval mode is the
      // inference path, unless the caller records a graph for the weights (grad mode on, trainable weights).
      EXPECT_EQ(net.path_for(x, shared), activation == "silu" && fused_mlp_available() ? MlpPath::Fused : MlpPath::Graph);
      net.eval();
      EXPECT_EQ(net.path_for(x, shared), MlpPath::Graph);
      {
        torch::NoGradGuard no_grad;
        EXPECT_EQ(net.path_for(x, shared), MlpPath::Inference);
        EXPECT_EQ(net.path_for(x.clone().requires_grad_(true), shared), MlpPath::Graph);
      }
      for (auto& w : net.parameters()) w.requires_grad_(false);
      EXPECT_EQ(net.path_for(x, shared), MlpPath::Inference);
      for (auto& w : net.parameters()) w.requires_grad_(true);
      for (const auto& log_sigma : {shared, varying}) {
        torch::Tensor reference = net.forward_autograd(x, log_sigma);
        torch::Tensor fast;
        {
          torch::InferenceMode guard;
          fast = net.forward(x, log_sigma);
        }
        EXPECT_TRUE(torch::allclose(fast, reference, 1e-5, 1e-5))
            << activation << " " << embedding << " max diff " << (fast - reference).abs().max().item<float>();
      }
    }
  }
}

TEST(Fused, MlpTrainingNodeEqualsTheAutogradPath) {
  if (!fused_mlp_available()) GTEST_SKIP() << "no libxsmm and no BLAS sgemm: the fused node cannot run here";
  // Output and every parameter gradient of the fused forward/backward node against ATen's autograd graph,
  // for one to three hidden layers, widths that are and are not multiples of the vector width, both
  // embeddings, and batch sizes of the peer (256) and of the roofline (4096).
  for (int64_t depth : {1, 3}) {
    for (int64_t width : {128, 37}) {
      for (const std::string embedding : {"fourier", "log-sigma"}) {
        for (int64_t batch : {256, 4096}) {
          ModelOptions o;
          o.embedding = embedding;
          o.width = width;
          o.depth = depth;
          auto gen = make_generator(21);
          MlpNetworkImpl net(o, 3, gen);
          torch::Tensor x = torch::randn({batch, 3}, gen), log_sigma = torch::log(0.01 + 5 * torch::rand({batch}, gen));
          torch::Tensor v = torch::randn({batch, 3}, gen);
          auto run = [&](bool fused) {
            net.set_fused_training(fused);
            EXPECT_EQ(net.path_for(x, log_sigma), fused ? MlpPath::Fused : MlpPath::Graph);
            for (auto& p : net.parameters()) p.mutable_grad() = torch::Tensor();
            torch::Tensor out = net.forward(x, log_sigma);
            const std::string node = out.grad_fn()->name();
            EXPECT_EQ(node.find("FusedMlp") != std::string::npos, fused) << node;
            (out * v).sum().backward();
            std::vector<torch::Tensor> result{out.detach()};
            for (auto& p : net.parameters()) result.push_back(p.grad().clone());
            return result;
          };
          auto reference = run(false), fast = run(true);
          ASSERT_EQ(reference.size(), fast.size());
          for (size_t i = 0; i < reference.size(); ++i) {
            const double scale = reference[i].abs().max().item<double>();
            const double err = (fast[i] - reference[i]).abs().max().item<double>() / scale;
            EXPECT_LT(err, 1e-5) << "tensor " << i << ", depth " << depth << ", width " << width << ", " << embedding
                                 << ", batch " << batch;
          }
        }
      }
    }
  }
}

TEST(Fused, InputsThatNeedTheirGradientKeepTheAtenGraph) {
  // Implicit and sliced score matching differentiate the score in x, then the loss again: the fused node
  // is not differentiable twice, so it must not be used when x requires grad.
  ModelOptions o;
  auto gen = make_generator(22);
  MlpNetworkImpl net(o, 2, gen);
  torch::Tensor x = torch::randn({16, 2}, gen).requires_grad_(true);
  torch::Tensor out = net.forward(x, torch::zeros({16}));
  EXPECT_EQ(std::string(out.grad_fn()->name()).find("FusedMlp"), std::string::npos);
  torch::Tensor jac = torch::autograd::grad({out.sum()}, {x}, {}, true, true)[0];
  jac.sum().backward();  // second order through the ATen graph
  EXPECT_TRUE(net.parameters()[0].grad().defined());
}

TEST(Fused, ChunkedScoreEvaluationEqualsOneBatch) {
  // model_score_fn evaluates large CPU batches a few rows at a time outside autograd: 100 rows of
  // 784 pixels go in chunks of 41. Rows are independent, so the result is the one-batch one.
  ModelOptions o;
  o.width = 64;
  o.depth = 2;
  o.sigma_data = 0.5;
  auto gen = make_generator(5);
  ScoreModel model = make_model(o, 784, gen);
  ProcessOptions po;
  po.name = "ve";
  auto process = make_process(po);
  ScoreFn score = model_score_fn(model, process);
  torch::Tensor x = torch::randn({100, 784}, gen);
  torch::Tensor per_row = 0.1 + 0.8 * torch::rand({100}, gen), same = torch::full({100}, 0.4);
  for (const auto& t : {per_row, same}) {  // a score takes one time per row
    // Autograd on: one batch.
    torch::Tensor whole = model->score(x, process->mean_coef(t), process->std(t), t).detach();
    torch::Tensor chunked;
    {
      torch::NoGradGuard no_grad;
      chunked = score(x, t);
    }
    ASSERT_EQ(chunked.sizes(), whole.sizes());
    EXPECT_TRUE(torch::allclose(chunked, whole, 1e-5, 1e-5)) << (chunked - whole).abs().max().item<float>();
  }
}

TEST(Fused, DsmSigma2LossNodeEqualsTheAtenComposition) {
  torch::manual_seed(5);
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{256, 2}, {7, 1, 4, 4}}) {
    torch::Tensor predicted = torch::randn(shape).requires_grad_(true), eps = torch::randn(shape);
    torch::Tensor std = torch::exp(torch::randn({shape[0]}));
    torch::Tensor weights = torch::rand({shape[0]});  // an upstream gradient that is not all ones
    torch::Tensor ours = dsm_sigma2_loss(predicted, std, eps);
    ASSERT_TRUE(ours.grad_fn() != nullptr);
    EXPECT_NE(ours.grad_fn()->name().find("DsmSigma2Loss"), std::string::npos) << ours.grad_fn()->name();
    torch::Tensor grad_ours = torch::autograd::grad({(ours * weights).sum()}, {predicted})[0];
    torch::Tensor reference = 0.5 * (per_sample(std, predicted) * predicted + eps).pow(2).flatten(1).sum(1);
    torch::Tensor grad_ref = torch::autograd::grad({(reference * weights).sum()}, {predicted})[0];
    EXPECT_TRUE(torch::allclose(ours, reference, 1e-5, 1e-6)) << (ours - reference).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(grad_ours, grad_ref, 1e-5, 1e-6)) << (grad_ours - grad_ref).abs().max().item<float>();
    EXPECT_EQ(grad_ours.sizes(), predicted.sizes());
    EXPECT_GT(grad_ours.abs().sum().item<double>(), 0.0);
  }
}

namespace {

struct DsmCase {
  std::string process, sampling, weighting, param, embedding, condition;
  bool input_scaling;
};

std::string describe(const DsmCase& c) {
  return c.process + " " + c.sampling + " " + c.weighting + " " + c.param + " " + c.embedding + " " + c.condition +
         (c.input_scaling ? " scaled" : "");
}

}  // namespace

TEST(Fused, DsmTrainerStepEqualsTheAutogradStep) {
  if (!fused_mlp_available()) GTEST_SKIP() << "no libxsmm and no BLAS sgemm: both sides would be the autograd step";
  // Two trainers from the same seed and initial weights, one taking the fused DSM step (train/fused_dsm.hpp),
  // one the objective + autograd path, two steps each: the same draws (equal generator states), level counts,
  // and losses, per-level sums and parameter gradients to 1e-5, over processes, σ sampling, weightings,
  // parametrisations, embeddings, conditioning and input scaling; one chunk (64 rows) and three (600 rows:
  // 256, 256, 88); widths that change from case to case (the step's per-thread buffers). The learning rate is
  // too small to move a float32 weight, so the second step starts from the same weights on both sides and checks
  // the gradients and buffers reused in place.
  const std::vector<DsmCase> cases{
      {"ladder", "log-uniform", "sigma2", "raw", "log-sigma", "log-sigma", false},  // the peer's
      {"ladder", "ladder", "sigma2", "score", "fourier", "log-sigma", true},
      {"ve", "time", "uniform", "score", "fourier", "log-sigma", true},
      {"ve", "importance", "sigma2", "raw", "log-sigma", "log-sigma", false},
      {"vp", "time", "sigma2", "eps", "fourier", "time", false},
      {"vp", "importance", "likelihood", "eps", "log-sigma", "log-sigma", true},
      {"vp", "single", "ddpm", "score", "fourier", "log-sigma", false},
      {"subvp", "log-normal", "snr", "raw", "fourier", "log-sigma", false},
      {"edm", "log-normal", "edm", "score", "log-sigma", "log-sigma", true},
  };
  const int64_t widths[] = {37, 64, 128};
  auto data_gen = make_generator(5);
  const torch::Tensor data = 2 * torch::randn({300, 3}, data_gen);
  for (size_t n = 0; n < cases.size(); ++n) {
    const DsmCase& c = cases[n];
    ProcessOptions po;
    po.name = c.process;
    auto process = make_process(po);
    ObjectiveOptions oo;
    oo.sigma_sampling = c.sampling;
    oo.weighting = c.weighting;
    validate(oo, *process);
    ModelOptions mo;
    mo.width = widths[n % 3];
    mo.depth = 2;
    mo.param = c.param;
    mo.embedding = c.embedding;
    mo.condition = c.condition;
    mo.input_scaling = c.input_scaling;
    mo.sigma_data = 0.7;
    for (int64_t batch : {64, 600}) {
      TrainOptions to;
      to.batch = batch;
      to.lr = 1e-30;
      to.warmup = 0;
      auto run = [&](bool fused) {
        auto init = make_generator(11);
        ScoreModel model = make_model(mo, 3, init);
        dynamic_cast<MlpNetworkImpl&>(model->network()).set_fused_training(fused);
        Objective objective = make_objective(oo);
        EXPECT_EQ(fused_dsm_objective(model, objective, data) != nullptr, fused) << describe(c);
        Trainer trainer(model, process, objective, level_count(oo, *process), data, to, 17);
        std::vector<torch::Tensor> out;
        for (int step = 0; step < 2; ++step) {
          StepStats stats = trainer.step();
          out.insert(out.end(), {stats.level_count.to(torch::kFloat64), trainer.state().at("rng.train").to(torch::kFloat64),
                                 torch::tensor({stats.loss}, torch::kFloat64), stats.level_loss_sum});
          for (const auto& p : model->parameters()) out.push_back(p.grad().clone());
        }
        return out;
      };
      const auto reference = run(false), fast = run(true);
      ASSERT_EQ(reference.size(), fast.size());
      const size_t per_step = reference.size() / 2;
      for (size_t i = 0; i < reference.size(); ++i) {
        const std::string where = "tensor " + std::to_string(i) + ", batch " + std::to_string(batch) + ", " + describe(c);
        if (i % per_step < 2) {  // level counts and generator state
          EXPECT_TRUE(torch::equal(reference[i], fast[i])) << where;
          continue;
        }
        const double scale = reference[i].abs().max().item<double>();
        const double err = (fast[i] - reference[i]).abs().max().item<double>() / scale;
        EXPECT_LT(err, 1e-5) << where;
      }
    }
  }
}

TEST(Fused, DsmStepAppliesOnlyWhereItComputesTheSameLoss) {
  if (!fused_mlp_available()) GTEST_SKIP() << "no libxsmm and no BLAS sgemm: the fused step never applies here";
  // The Trainer falls back to autograd for what the fused step does not cover.
  auto data_gen = make_generator(5);
  const torch::Tensor data = torch::randn({50, 2}, data_gen);
  auto applies = [&](ModelOptions mo, ObjectiveOptions oo, const torch::Tensor& d, bool fused_training = true) {
    auto init = make_generator(1);
    mo.sigma_data = 1.0;
    ScoreModel model = make_model(mo, d.size(1), init);
    if (auto* net = dynamic_cast<MlpNetworkImpl*>(&model->network())) net->set_fused_training(fused_training);
    return fused_dsm_objective(model, make_objective(oo), d) != nullptr;
  };
  const ModelOptions mlp;
  const ObjectiveOptions dsm;
  EXPECT_TRUE(applies(mlp, dsm, data));
  {
    auto init = make_generator(1);
    ModelOptions mo = mlp;
    mo.sigma_data = 1.0;
    ScoreModel frozen = make_model(mo, 2, init);  // a frozen layer gets no gradient on the autograd path
    dynamic_cast<MlpNetworkImpl&>(frozen->network()).layers()[0]->weight.requires_grad_(false);
    EXPECT_FALSE(fused_dsm_objective(frozen, make_objective(dsm), data) != nullptr);
  }
  auto model = [&](std::string ModelOptions::*field, const std::string& value) {
    ModelOptions m = mlp;
    m.*field = value;
    return m;
  };
  auto objective = [&](std::string ObjectiveOptions::*field, const std::string& value) {
    ObjectiveOptions o = dsm;
    o.*field = value;
    return o;
  };
  EXPECT_FALSE(applies(model(&ModelOptions::activation, "relu"), dsm, data));
  EXPECT_FALSE(applies(model(&ModelOptions::param, "denoiser"), dsm, data));
  EXPECT_FALSE(applies(model(&ModelOptions::name, "energy-mlp"), dsm, data));
  EXPECT_FALSE(applies(mlp, objective(&ObjectiveOptions::kernel, "laplace"), data));
  EXPECT_FALSE(applies(mlp, objective(&ObjectiveOptions::name, "ssm"), data));
  EXPECT_FALSE(applies(mlp, dsm, data.to(torch::kFloat64)));
  EXPECT_FALSE(applies(mlp, dsm, data, /*fused_training=*/false));
}
