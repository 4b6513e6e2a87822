// cli: every kind of bad input gives one line on stderr, exit status 2, and leaves no partial file.
#include <gtest/gtest.h>

#include <fstream>

#include "scorediff/io/files.hpp"
#include "scorediff/io/npy.hpp"
#include "scorediff/io/png.hpp"
#include "test_util.hpp"

using namespace scorediff;
namespace fs = std::filesystem;

namespace {

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    CliResult r = run_cli("train -q --out run --set train.steps=20 --set data.n_train=200 --set model.width=16 "
                          "--set sample.n=50 --set sample.steps_per_level=2",
                          dir_->path());
    ASSERT_EQ(r.status, 0) << r.err;
    checkpoint_ = std::string(read_file(dir_->path() / "run" / "last.safetensors"));
  }
  static void TearDownTestSuite() { delete dir_; }

  static void expect_bad_input(const std::string& args, const std::string& fragment) {
    scorediff::expect_bad_input(args, dir_->path(), fragment);
  }
  static fs::path path(const std::string& name) { return dir_->path() / name; }

  static TempDir* dir_;
  static std::string checkpoint_;
};

TempDir* Cli::dir_ = nullptr;
std::string Cli::checkpoint_;

}  // namespace

TEST_F(Cli, HelpAndDryRunSucceed) {
  CliResult help = run_cli("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("experiment"), std::string::npos);
  for (const char* cmd : {"train", "sample", "eval", "plot", "experiment", "demo", "bench", "density", "denoise"}) {
    CliResult r = run_cli(std::string(cmd) + " --help");
    EXPECT_EQ(r.status, 0) << cmd;
  }
  CliResult dry = run_cli("train --config mog2 --set 'data.weights=[0.3,0.7]' --dry-run");
  EXPECT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("weights = [0.3, 0.7]"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("means = [[5.0, 5.0], [-5.0, -5.0]]"), std::string::npos) << dry.out;
}

TEST_F(Cli, UnknownNamesListTheValidOnes) {
  expect_bad_input("train --dry-run --set data.name=moons", "valid: 8gaussians, checkerboard, circle");
  expect_bad_input("train --dry-run --set sample.sampler=pcc", "unknown sampler 'pcc'");
  expect_bad_input("train --dry-run --set train.stpes=5", "unknown config key 'train.stpes'; valid keys in [train]: steps");
  expect_bad_input("train --dry-run --set trian.steps=5", "unknown config section 'trian'");
  expect_bad_input("sample --ckpt run/last.safetensors --sampler pcc", "unknown sampler 'pcc' for config key 'sample.sampler'; valid: ald, ancestral, consistency, ddim, dpm-solver++, dpm-solver++2m-sde, dpm-solver++3m, edm, em, ");
  expect_bad_input("experiment nope", "unknown experiment 'nope'; valid: auto-noise, circle, conditional-2d, conditional-fashion, conditional-mnist, cost-vs-dim, ebm, ebm-cd, ebm-mnist, eps-t-sweep, fashion-ablation, fashion-collapse, fashion-coverage, fashion-guidance, few-step, few-step-mnist, inpainting, lambda-t, likelihood, memorisation, mnist-ema, mnist-mlp, mog-mixing, ncsn-ddpm, ncsn-ddpm-mnist, noise-levels, objectives, samplers, sdedit, sdedit-fashion, swiss-roll, tables, weighting");
  expect_bad_input("frobnicate", "unknown command 'frobnicate'; valid: train, train-classifier, sample");
  expect_bad_input("train --dry-run --config nosuchpreset", "unknown preset 'nosuchpreset'");
}

TEST_F(Cli, MissingOrMalformedToml) {
  expect_bad_input("train --config missing/x.toml", "config file 'missing/x.toml' not found");
  write_file_atomic(path("bad.toml"), "[train]\nsteps = = 3\n");
  expect_bad_input("train --config bad.toml", "bad.toml:2:");
  write_file_atomic(path("badkey.toml"), "[train]\nspets = 3\n");
  expect_bad_input("train --config badkey.toml", "unknown config key 'train.spets'");
  write_file_atomic(path("badtype.toml"), "[train]\nsteps = \"many\"\n");
  expect_bad_input("train --config badtype.toml", "expects an integer");
}

TEST_F(Cli, OutOfRangeValues) {
  expect_bad_input("train --dry-run --set process.sigma_min=10", "process.sigma_min (10) must be smaller than process.sigma_max");
  expect_bad_input("train --dry-run --set process.sigma_min=5", "must be smaller");
  expect_bad_input("train --dry-run --set process.sigma_min=0", "'process.sigma_min' = 0.0 is out of range; must be > 0.0");
  expect_bad_input("train --dry-run --set process.sigma_min=-1", "out of range");
  expect_bad_input("train --dry-run --set train.steps=-5", "'train.steps' = -5 is out of range; must be >= 1");
  expect_bad_input("train --dry-run --set train.steps=0", "'train.steps' = 0 is out of range; must be >= 1");
  expect_bad_input("train --dry-run --set train.lr=nan", "is NaN");
  expect_bad_input("train --dry-run --set train.lr=inf", "'train.lr' = inf is not finite");
  expect_bad_input("train --dry-run --set train.lr=100", "'train.lr' = 100.0 is out of range; must be in (0.0, 10.0]");
  expect_bad_input("train --dry-run --set train.beta2=1", "must be in [0.0, 1.0)");
  expect_bad_input("train --dry-run --set train.weight_decay=0.5 --set train.lr=4", "must be < 1");
  expect_bad_input("train --dry-run --set process.sigma_max=inf", "'process.sigma_max' = inf is not finite");
  expect_bad_input("train --dry-run --set 'data.means=[[0,-inf],[1,1]]' --config mog2", "is not finite");
  expect_bad_input("train --dry-run --set sample.rtol=2", "'sample.rtol' = 2.0 is out of range");
  expect_bad_input("train --dry-run --set sample.s_tmin=5 --set sample.s_tmax=1", "sample.s_tmin (5) must not exceed");
  expect_bad_input("train --dry-run --set process.levels=1000000", "'process.levels' = 1000000 is out of range");
  // --seeds: only for experiments that repeat their settings over seeds, and at least 2 (a standard error).
  expect_bad_input("experiment swiss-roll --seeds 3", "experiment swiss-roll runs one seed (--seed); --seeds N is for auto-noise");
  expect_bad_input("experiment auto-noise --seeds 1", "--seeds: Value 1 not in range 2 to 1000");
  expect_bad_input("experiment swiss-roll --variants a", "experiment swiss-roll has no named variants (--variants)");
  expect_bad_input("experiment fashion-ablation --variants preset,nope",
                   "fashion-ablation: unknown variant 'nope'; valid: preset, steps-1.5x, steps-1.5x-dropout-0, "
                   "steps-1.5x-cosine-lr, steps-1.5x-ema-0.9995, steps-1.375x-lr-2e-3, steps-1.375x-cosine, "
                   "steps-1.25x-cosine, preset-posthoc, steps-1.5x-posthoc");
  expect_bad_input("posthoc-ema --run nowhere --sigma-rel 0.1 -o x.safetensors", "has no post-hoc EMA snapshots");
  expect_bad_input("posthoc-ema --run run --sigma-rel 0.5 -o x.safetensors", "sigma_rel = 0.5 is outside (0, 0.2887]");
  expect_bad_input("posthoc-ema --run run --sigma-rel nan -o x.safetensors", "not a finite number");
  expect_bad_input("train --dry-run --set 'train.posthoc_sigma_rels=[0.05, 0.5]'", "train.posthoc_sigma_rels");
  expect_bad_input("demo --seeds 3", "demo runs each experiment on one seed");
  expect_bad_input("eval --samples s.npy --data two-moons --reference-sets 0", "--reference-sets: Value 0 not in range 1 to 10000");
  expect_bad_input("train --dry-run --seed -3", "--seed");
  expect_bad_input("train --dry-run --threads -1", "--threads");
  expect_bad_input("sample --ckpt run/last.safetensors -n -5", "-n");
  expect_bad_input("sample --ckpt run/last.safetensors -n 0", "-n");
  expect_bad_input("sample --ckpt run/last.safetensors --sampler ''", "unknown sampler ''");
  expect_bad_input("sample --ckpt run/last.safetensors --seed -1", "--seed");
  expect_bad_input("density --analytic mog2 --sigma nan", "not a finite number");
  expect_bad_input("density --analytic mog2 --sigma 1e9", "outside the model's noise range");
  expect_bad_input("density --analytic mog2 --range -9 inf -9 9", "not a finite number");
  expect_bad_input("denoise --analytic mog2 -i x.npy --sigma inf", "not a finite number");
  expect_bad_input("likelihood --analytic mog2 --offset nan", "not a finite number");
  expect_bad_input("train --timeout nan --dry-run", "not a finite number");
  expect_bad_input("eval --samples x.npy --data mog2 --seed -2", "--seed");
  expect_bad_input("bench --plot p.png", "--plot needs --roofline or --scaling");
  expect_bad_input("bench --roofline --plot nodir/p.png", "nodir");
  expect_bad_input("train --dry-run --set data.n_train=1.5", "expects an integer");
  expect_bad_input("train --dry-run --set 'data.weights=[1,2]'", "apply only to mixture datasets");
  expect_bad_input("train --dry-run --config mog2 --set 'data.weights=[1,2,3]'", "data.weights has 3 entries but data.means has 2 rows");
  expect_bad_input("train --dry-run --set run.threads=0", "run.threads");
  expect_bad_input("train --dry-run --device tpu", "unknown device 'tpu'");
}

TEST_F(Cli, BadObjectiveOptions) {
  expect_bad_input("train --dry-run --set objective.name=score", "unknown name 'score' for config key 'objective.name'; valid: cd, cfm, cfm-coupled, consistency, dsm, esm, gsm");
  expect_bad_input("train --dry-run --set objective.kernel=cauchy", "unknown kernel 'cauchy'");
  expect_bad_input("train --dry-run --set objective.weighting=snr2", "unknown weighting 'snr2'");
  expect_bad_input("train --dry-run --set objective.nu=0", "'objective.nu' = 0.0 is out of range; must be > 0.0");
  expect_bad_input("train --dry-run --set objective.nu=-2", "'objective.nu' = -2.0 is out of range");
  expect_bad_input("train --dry-run --set objective.laplace_b=0", "'objective.laplace_b' = 0.0 is out of range");
  expect_bad_input("train --dry-run --set objective.laplace_b=-1", "'objective.laplace_b' = -1.0 is out of range");
  expect_bad_input("train --dry-run --set objective.projections=0", "'objective.projections' = 0 is out of range");
  expect_bad_input("train --dry-run --set objective.projection=uniform", "unknown projection 'uniform'");
  expect_bad_input("train --dry-run --set objective.name=gsm --set objective.operator=laplacian",
                   "unknown operator 'laplacian'");
  expect_bad_input("train --dry-run --set objective.operator=tweedie", "objective.operator = 'tweedie' applies to gsm only");
  expect_bad_input("train --out esm --set data.name=two-moons --set model.name=energy-mlp --set objective.name=esm "
                   "--set train.steps=1",
                   "objective 'esm' needs the true score of the data, and this dataset has none");
  EXPECT_FALSE(fs::exists(path("esm") / "last.safetensors"));
}

TEST_F(Cli, DensityAndDenoiseFromTheExactScore) {
  // mog2 at σ = 0.5: the grid density from the line integral equals the true one (TV printed).
  CliResult d = run_cli("density --analytic mog2 --sigma 0.5 --grid 60 --nodes 4 --range -9 9 -9 9 --out dens", dir_->path());
  ASSERT_EQ(d.status, 0) << d.err;
  auto result = nlohmann::json::parse(d.out);
  EXPECT_LT(result["total_variation"].get<double>(), 0.01);
  torch::Tensor density = read_npy(path("dens") / "density.npy");
  EXPECT_EQ(density.sizes(), (std::vector<int64_t>{60, 60}));
  EXPECT_NEAR(density.sum().item<double>() * (18.0 / 59) * (18.0 / 59), 1.0, 1e-6);
  EXPECT_TRUE(fs::exists(path("dens") / "density.png"));
  // Tweedie on mog2 (unit components) at σ = 1: far from the other mode the posterior mean is
  // (x̃ + μ)/2 and the posterior covariance ½ I.
  torch::Tensor noisy = torch::tensor({{-5.0, -4.0}, {6.0, 5.5}}, torch::kFloat32);
  write_npy(path("noisy.npy"), noisy);
  CliResult t = run_cli("denoise --analytic mog2 -i noisy.npy --sigma 1 -o den.npy --covariance cov.npy", dir_->path());
  ASSERT_EQ(t.status, 0) << t.err;
  torch::Tensor expected = (noisy.to(torch::kFloat64) + torch::tensor({{-5.0, -5.0}, {5.0, 5.0}}, torch::kFloat64)) / 2;
  EXPECT_TRUE(torch::allclose(read_npy(path("den.npy")).to(torch::kFloat64), expected, 1e-4, 1e-4));
  torch::Tensor cov = read_npy(path("cov.npy")).to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(cov, 0.5 * torch::eye(2, torch::kFloat64).expand({2, 2, 2}), 1e-4, 1e-4));
  expect_bad_input("denoise --analytic mog2 -i absent.npy --sigma 1", "not found");
  expect_bad_input("density --analytic swiss-roll --set data.name=two-moons", "needs a dataset with a known density");
}

TEST_F(Cli, BadSampleFiles) {
  write_npy(path("rank3.npy"), torch::zeros({3, 2, 2}));
  expect_bad_input("eval --samples rank3.npy --data swiss-roll", "expected points of shape [N, D]");
  write_npy(path("dim3.npy"), torch::zeros({3, 3}));
  expect_bad_input("eval --samples dim3.npy --data swiss-roll", "dimension 3; expected 2");
  torch::Tensor nan = torch::zeros({5, 2});
  nan[4][0] = NAN;
  write_npy(path("nan.npy"), nan);
  expect_bad_input("eval --samples nan.npy --data swiss-roll", "NaN or Inf");
  write_npy(path("bool.npy"), torch::zeros({5, 2}, torch::kBool));
  expect_bad_input("eval --samples bool.npy --data swiss-roll", "booleans");
  std::string text = read_file(path("dim3.npy"));
  text.replace(text.find("<f4"), 3, "<c8");
  write_file_atomic(path("complex.npy"), text);
  expect_bad_input("eval --samples complex.npy --data swiss-roll", "unsupported dtype '<c8'");
  expect_bad_input("eval --samples absent.npy --data swiss-roll", "not found");
  expect_bad_input("eval --samples dim3.npy", "needs --data");
}

TEST_F(Cli, CorruptCheckpoints) {
  write_file_atomic(path("cut.safetensors"), checkpoint_.substr(0, checkpoint_.size() / 2));
  expect_bad_input("sample --ckpt cut.safetensors", "truncated");
  std::string flipped = checkpoint_;
  flipped[flipped.size() - 100] = static_cast<char>(flipped[flipped.size() - 100] ^ 0x10);
  write_file_atomic(path("flip.safetensors"), flipped);
  expect_bad_input("sample --ckpt flip.safetensors", "checksum mismatch");
  std::string header_flip = checkpoint_;
  header_flip[40] = static_cast<char>(header_flip[40] ^ 0x01);
  write_file_atomic(path("hflip.safetensors"), header_flip);
  expect_bad_input("sample --ckpt hflip.safetensors", "corrupt");
  write_file_atomic(path("empty.safetensors"), "");
  expect_bad_input("sample --ckpt empty.safetensors", "truncated");
  expect_bad_input("sample --ckpt nothere.safetensors", "not found");
  expect_bad_input("eval --ckpt nan.npy", "checkpoint 'nan.npy'");
}

TEST_F(Cli, UnwritableOutputsLeaveNothingBehind) {
  expect_bad_input("sample --ckpt run/last.safetensors --out nodir/s.npy", "directory 'nodir' does not exist");
  fs::create_directories(path("adir"));
  expect_bad_input("sample --ckpt run/last.safetensors --out adir -n 5", "cannot write 'adir'");
  write_file_atomic(path("afile"), "x");
  expect_bad_input("train --out afile/run --set train.steps=1", "cannot create output directory 'afile/run");
  expect_bad_input("experiment circle --out afile/x", "cannot create output directory");
  expect_bad_input("plot samples --samples dim3.npy --out nodir/x.png", "nodir");
  EXPECT_EQ(read_file(path("afile")), "x");
}

TEST_F(Cli, SampleAndEvalWork) {
  CliResult r = run_cli("sample -q --ckpt run/last.safetensors --out s.npy -n 64", dir_->path());
  ASSERT_EQ(r.status, 0) << r.err;
  auto result = nlohmann::json::parse(r.out);
  EXPECT_EQ(result["nfe"], 10 * 2 + 1);
  EXPECT_EQ(read_npy(path("s.npy")).sizes(), (std::vector<int64_t>{64, 2}));
  CliResult e = run_cli("eval --samples s.npy --data swiss-roll", dir_->path());
  ASSERT_EQ(e.status, 0) << e.err;
  auto metrics = nlohmann::json::parse(e.out);
  EXPECT_EQ(metrics["n"], 64);
  EXPECT_GT(metrics["swd_data_vs_data"].get<double>(), 0.0);
  // The exact mog2 score through annealed Langevin, then eval: the (5,5) mode holds its true weight 0.2
  // (± 0.05: 1 000 chains, the multinomial spread is 0.013).
  CliResult a = run_cli("sample -q --analytic mog2 --out m.npy -n 1000 --set sample.steps_per_level=20", dir_->path());
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(nlohmann::json::parse(a.out)["score"], "analytic");
  CliResult weights = run_cli("eval --samples m.npy --data mog2", dir_->path());
  ASSERT_EQ(weights.status, 0) << weights.err;
  const auto w = nlohmann::json::parse(weights.out)["mode_weights"].get<std::vector<double>>();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NEAR(w[0], 0.2, 0.05);
  expect_bad_input("sample --analytic swiss-roll --set data.name=two-moons -n 5", "needs a dataset with a known density");
}

TEST_F(Cli, BadScoreSdeOptions) {
  const std::string vp = "sample --analytic swiss-roll-vp -n 10 -q ";
  expect_bad_input(vp + "--sampler ancestral --set process.name=ve",
                   "sample.sampler = 'ancestral' does not fit process 've'; samplers for 've': ");
  expect_bad_input(vp + "--sampler ald", "sample.sampler = 'ald' does not fit process 'vp'");
  expect_bad_input(vp + "--sampler ode-rk45 --set sample.rtol=0", "'sample.rtol' = 0.0 is out of range; must be in (0.0, 1.0)");
  expect_bad_input(vp + "--sampler ode-rk45 --set sample.atol=-1", "'sample.atol' = -1.0 is out of range");
  expect_bad_input(vp + "--sampler pc --set sample.snr=-0.1", "'sample.snr' = -0.1 is out of range; must be >= 0.0");
  expect_bad_input(vp + "--sampler em --nfe 0", "--nfe must be >= 1, got 0");
  expect_bad_input(vp + "--sampler edm --nfe 2", "sample.nfe = 2 is too small for sampler 'edm': it needs at least 3");
  expect_bad_input(vp + "--sampler em --set sample.t_end=1.5", "sample.t_end = 1.5 is outside [t_min, t_max]");
  expect_bad_input(vp + "--sampler em --set process.t_min=1.5", "'process.t_min' = 1.5 is out of range");
  expect_bad_input(vp + "--sampler em --set sample.grid=cosine", "unknown grid 'cosine'");
  const std::string lik = "likelihood --analytic swiss-roll-vp -n 10 -q ";
  expect_bad_input(lik + "--t-start 2", "--t-start = 2 is outside [t_min, t_max] = [0.001, 1] of process 'vp'");
  expect_bad_input(lik + "--rtol 0", "--rtol must be in (0, 1), got 0");
  expect_bad_input(lik + "--divergence trace", "--divergence");
  expect_bad_input(lik + "--data missing.npy", "missing.npy");
}

TEST_F(Cli, SdeSamplingAndLikelihoodFromTheExactScore) {
  CliResult s = run_cli("sample --analytic swiss-roll-vp --set data.name=8gaussians --sampler dpm-solver++ -n 2000 -q "
                        "--out s.npy",
                        dir_->path());
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_EQ(nlohmann::json::parse(s.out)["nfe"].get<int64_t>(), 20);
  CliResult e = run_cli("eval --samples s.npy --data 8gaussians", dir_->path());
  ASSERT_EQ(e.status, 0) << e.err;
  auto m = nlohmann::json::parse(e.out);
  EXPECT_LT(m["swd"].get<double>(), 1.5 * m["swd_data_vs_data"].get<double>());
  CliResult l = run_cli("likelihood --analytic swiss-roll-vp --set data.name=mog2 -n 200 -q --out nll.npy", dir_->path());
  ASSERT_EQ(l.status, 0) << l.err;
  auto r = nlohmann::json::parse(l.out);
  EXPECT_NEAR(r["nll"].get<double>(), r["closed_form_nll"].get<double>(), 0.02);
  EXPECT_EQ(read_npy(path("nll.npy")).size(0), 200);
}

TEST_F(Cli, BadImageInputs) {
  // A dataset that is not where it is looked for.
  expect_bad_input("train --config fashion-mnist --out img1 --set data.path=nowhere --set train.steps=1", "nowhere");
  expect_bad_input("train --config mnist --out img2 --set data.path=nowhere --set train.steps=1", "nowhere");
  expect_bad_input("train --config fashion-mnist --out img3 --set data.name=png-folder --set data.path=noimages "
                   "--set train.steps=1",
                   "png folder 'noimages' not found");
  // A PNG folder whose images differ in size.
  fs::create_directories(path("mixed"));
  write_png(path("mixed") / "a.png", torch::zeros({1, 8, 8}));
  write_png(path("mixed") / "b.png", torch::zeros({1, 6, 8}));
  expect_bad_input("train --config fashion-mnist --out img4 --set data.name=png-folder --set data.path=mixed "
                   "--set train.steps=1",
                   "png folder 'mixed': 'b.png' is 8x6x1 but 'a.png' is 8x8x1");
  // An image size the U-Net's two halvings cannot divide (channel_mult [1, 2, 2]: a multiple of 4).
  fs::create_directories(path("six"));
  for (const char* name : {"a.png", "b.png"}) write_png(path("six") / name, torch::rand({1, 6, 6}));
  expect_bad_input("train --config fashion-mnist --out img5 --set data.name=png-folder --set data.path=six "
                   "--set model.attention=[3] --set train.steps=1",
                   "image size 6x6 is not divisible by 4");
  expect_bad_input("train --config mnist --out img6 --set data.image_size=10 --set train.steps=1",
                   "image size 10x10 is not divisible by 4");
  EXPECT_FALSE(fs::exists(path("img5") / "last.safetensors"));
  // A classifier of another dataset (MNIST at 7x7) asked to measure Fashion-MNIST samples of that size.
  CliResult c = run_cli("train-classifier -q --data mnist --image-size 7 --epochs 1 -o mnist7.safetensors", dir_->path());
  ASSERT_EQ(c.status, 0) << c.err;
  write_npy(path("fashion7.npy"), torch::zeros({4, 49}));
  expect_bad_input("eval --samples fashion7.npy --data fashion-mnist --set data.image_size=7 --classifier mnist7.safetensors",
                   "classifier 'mnist7.safetensors' was trained on mnist 1x7x7, not fashion-mnist 1x7x7");
  write_npy(path("mnist14.npy"), torch::zeros({4, 196}));
  expect_bad_input("eval --samples mnist14.npy --data mnist --set data.image_size=14 --classifier mnist7.safetensors",
                   "was trained on mnist 1x7x7, not mnist 1x14x14");
}

TEST_F(Cli, SampleKeysTheSamplerDoesNotReadGetAWarning) {
  // The swiss-roll preset samples with ald, which has no churn: one warning line naming what ald reads.
  CliResult r = run_cli("train --dry-run --config swiss-roll --set sample.s_churn=1");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("scorediff: warning: sampler 'ald' does not read sample.s_churn (set but ignored); it reads "
                       "sample.eps, sample.steps_per_level"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // A key the sampler reads, or one read for every sampler, gives none; nor does a checkpoint's stored config.
  CliResult quiet = run_cli("train --dry-run --config swiss-roll --set sample.eps=1e-5 --set sample.n=10");
  EXPECT_TRUE(quiet.err.empty()) << quiet.err;
  CliResult from_ckpt = run_cli("sample -q --ckpt run/last.safetensors -n 5 --out w.npy", dir_->path());
  EXPECT_EQ(from_ckpt.status, 0) << from_ckpt.err;
  EXPECT_TRUE(from_ckpt.err.empty()) << from_ckpt.err;
  CliResult with_set = run_cli("sample -q --ckpt run/last.safetensors -n 5 --out w.npy --set sample.eta=0.5", dir_->path());
  EXPECT_NE(with_set.err.find("does not read sample.eta"), std::string::npos) << with_set.err;
}

TEST_F(Cli, BadTableFiles) {
  write_file_atomic(path("word.csv"), "1,2\n3,x\n4,5\n");
  expect_bad_input("train --config table --set data.path=word.csv --set train.steps=1", "line 2, column 2: 'x' is not a number");
  expect_bad_input("train --config table --set data.path=missing.csv --set train.steps=1", "table 'missing.csv' not found");
  expect_bad_input("train --config table --set data.path=word.csv --set data.label_column=1 --set data.labels=y.npy",
                   "not both");
}
