// The sampler specs tell the truth: every key a spec lists is a sample.* key, a key it does not list
// leaves its samples unchanged (so the unread-key warning never hides a key that matters), its NFE
// accounting matches the evaluations it makes, and deterministic kinds draw no noise.
#include <gtest/gtest.h>

#include "scorediff/core/rng.hpp"
#include "scorediff/models/analytic.hpp"
#include "scorediff/samplers/registry.hpp"
#include "test_util.hpp"

using namespace scorediff;

namespace {

std::shared_ptr<const NoiseProcess> process_named(const std::string& name) {
  ProcessOptions o;
  o.name = name;
  o.sigma_min = 0.01;
  o.sigma_max = 10.0;
  o.levels = 5;
  return make_process(o);
}

std::shared_ptr<const GaussianMixture> two_modes() {
  return std::make_shared<GaussianMixture>(torch::tensor({0.3, 0.7}, torch::kFloat64),
                                           torch::tensor({{2.0, 0.0}, {-2.0, 1.0}}, torch::kFloat64),
                                           torch::full({2, 2}, 0.5, torch::kFloat64));
}

// A small, cheap run of `o` (n = 64, few steps) with a fixed seed; counts score evaluations.
struct SmallRun {
  torch::Tensor samples;
  int64_t nfe = 0, calls = 0;
};
SmallRun small_run(SampleOptions o, const std::shared_ptr<const NoiseProcess>& process, uint64_t seed = 3) {
  o.n = 64;
  ScoreFn exact = mixture_score_fn(two_modes(), process);
  auto calls = std::make_shared<int64_t>(0);
  ScoreFn counted = [exact, calls](const torch::Tensor& x, const torch::Tensor& t) {
    ++*calls;
    return exact(x, t);
  };
  at::Generator gen = make_generator(seed);
  SampleResult r = run_sampler(o, counted, *process, 2, gen, /*quiet=*/true);
  return {r.samples, r.nfe, *calls};
}

// Small budgets so every sampler runs in milliseconds.
SampleOptions small_sample_options(const std::string& sampler) {
  SampleOptions o;
  o.sampler = sampler;
  o.nfe = 13;
  o.steps = 10;
  o.steps_per_level = 3;
  o.rtol = o.atol = 1e-2;
  return o;
}

// A different, valid value for every sample.* key that a sampler might read.
std::vector<std::string> perturbations() {
  return {"sample.eps=3e-5",        "sample.steps_per_level=4", "sample.step_size=0.02", "sample.steps=11",
          "sample.nfe=17",          "sample.grid=karras",       "sample.rho=3",          "sample.t_end=0.01",
          "sample.predictor=em",    "sample.corrector=none",    "sample.snr=0.3",        "sample.corrector_steps=2",
          "sample.eta=0.5",         "sample.s_churn=5",         "sample.s_tmin=0.05",    "sample.s_tmax=5",
          "sample.s_noise=1.01",    "sample.rtol=1e-3",         "sample.atol=1e-3",      "sample.order=2"};
}

// ald needs a ladder; every other sampler runs on vp.
std::shared_ptr<const NoiseProcess> process_for(const SamplerSpec& spec) {
  return process_named(spec.fits && !spec.fits(*process_named("vp")) ? "ladder" : "vp");
}

}  // namespace

TEST(SamplerRegistry, EveryListedKeyIsASampleKey) {
  SampleOptions options;
  Schema schema;
  bind(schema, options);
  const auto bound = schema.keys_in("sample");
  for (const auto& name : samplers().names()) {
    const SamplerSpec& spec = samplers().get(name);
    EXPECT_EQ(spec.name, name);
    EXPECT_TRUE(static_cast<bool>(spec.run)) << name;
    for (const auto& key : spec.keys) {
      EXPECT_NE(std::find(bound.begin(), bound.end(), key), bound.end()) << name << " lists unknown key " << key;
      const auto& common = common_sample_keys();
      EXPECT_EQ(std::find(common.begin(), common.end(), key), common.end()) << name << " lists common key " << key;
    }
  }
  // Every bound key is read by the pipeline or listed by some sampler.
  for (const auto& key : bound) {
    bool read = std::find(common_sample_keys().begin(), common_sample_keys().end(), key) != common_sample_keys().end();
    for (const auto& name : samplers().names()) {
      const auto& keys = samplers().get(name).keys;
      read = read || std::find(keys.begin(), keys.end(), key) != keys.end();
    }
    EXPECT_TRUE(read) << "sample." << key << " is read by no sampler";
  }
}

TEST(SamplerRegistry, KeysASpecDoesNotListDoNotChangeItsSamples) {
  for (const auto& name : samplers().names()) {
    const SamplerSpec& spec = samplers().get(name);
    auto process = process_for(spec);
    const SampleOptions base = small_sample_options(name);
    const SmallRun reference = small_run(base, process);
    int listed_changes = 0;
    for (const auto& assignment : perturbations()) {
      const std::string key = assignment.substr(7, assignment.find('=') - 7);
      SampleOptions changed = base;
      Schema schema;
      bind(schema, changed);
      schema.set(assignment);
      const bool listed = std::find(spec.keys.begin(), spec.keys.end(), key) != spec.keys.end();
      if (!listed) {
        const SmallRun other = small_run(changed, process);
        EXPECT_TRUE(torch::equal(other.samples, reference.samples)) << name << ": unlisted " << assignment << " changed the samples";
        EXPECT_EQ(unread_sample_keys(changed, {"sample." + key}).size(), 1u) << name << " " << key;
      } else {
        EXPECT_TRUE(unread_sample_keys(changed, {"sample." + key}).empty()) << name << " " << key;
        try {
          check_sampler(changed, *process);
          listed_changes += !torch::equal(small_run(changed, process).samples, reference.samples);
        } catch (const Error&) {
          ++listed_changes;  // a listed key that the sampler checks is read
        }
      }
    }
    if (!spec.keys.empty()) {
      EXPECT_GT(listed_changes, 0) << name << ": none of its keys changed anything";
    }
  }
}

TEST(SamplerRegistry, NfeAccountingMatchesTheScoreCalls) {
  for (const auto& name : samplers_for(*process_named("vp"))) {
    const SamplerSpec& spec = samplers().get(name);
    SampleOptions o = small_sample_options(name);
    SmallRun r = small_run(o, process_named("vp"));
    EXPECT_EQ(r.nfe, r.calls) << name;
    if (spec.kind == SamplerKind::ReverseSde || spec.kind == SamplerKind::Ode) {
      GridOptions grid = grid_options(o, *process_named("vp"));
      const int64_t per_step = spec.nfe_per_step ? spec.nfe_per_step(o) : 1;
      EXPECT_EQ(r.nfe, grid.steps * per_step + (spec.final_denoise ? 1 : 0)) << name;  // + the final Tweedie step
      EXPECT_LE(r.nfe, o.nfe) << name;
    }
  }
}

TEST(SamplerRegistry, DeterministicKindsDrawNoNoise) {
  for (const auto& name : samplers_for(*process_named("vp"))) {
    const SamplerSpec& spec = samplers().get(name);
    if (spec.kind != SamplerKind::Ode && spec.kind != SamplerKind::Adaptive) continue;
    SampleOptions o = small_sample_options(name);
    auto process = process_named("vp");
    // They are run with no generator at all (a draw would throw or crash) and give the same samples twice.
    ScoreFn exact = mixture_score_fn(two_modes(), process);
    at::Generator gen = make_generator(5);
    torch::Tensor x = initial_state(o, *process, 32, 2, gen);
    SamplerCall call;
    call.grid = grid_options(o, *process);
    EXPECT_EQ(call.gen, nullptr);
    torch::Tensor first = spec.run(exact, *process, x, o, call).samples;
    torch::Tensor second = spec.run(exact, *process, x, o, call).samples;
    EXPECT_TRUE(torch::equal(first, second)) << name;
  }
}

TEST(SamplerRegistry, UnreadKeysAreNamedWithTheKeysTheSamplerReads) {
  SampleOptions o;
  o.sampler = "em";
  std::string warning = unread_keys_warning(o, {"sample.s_churn", "sample.nfe", "sample.n", "train.lr"});
  EXPECT_NE(warning.find("sampler 'em' does not read sample.s_churn"), std::string::npos) << warning;
  EXPECT_NE(warning.find("it reads sample.nfe, sample.grid, sample.rho, sample.t_end"), std::string::npos) << warning;
  EXPECT_EQ(warning.find("sample.n,"), std::string::npos) << warning;
  o.sampler = "edm";
  EXPECT_EQ(unread_keys_warning(o, {"sample.s_churn"}), "");
  std::string table = describe_samplers();
  for (const auto& name : samplers().names()) EXPECT_NE(table.find(name + " "), std::string::npos) << name;
}

TEST(SamplerRegistry, InitialStateIsOnTheGeneratorsDevice) {
  SampleOptions o;
  at::Generator gen = make_generator(1);
  auto process = process_named("vp");
  EXPECT_EQ(initial_state(o, *process, 4, 3, gen).device(), gen.device());
  o.init = "uniform";
  EXPECT_EQ(initial_state(o, *process, 4, 3, gen).device(), gen.device());
}
