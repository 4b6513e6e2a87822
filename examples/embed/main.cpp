// An application embedding scorediff: load a checkpoint of a 2-D model, draw samples, check them against the
// dataset, evaluate the score, and show that bad input is one scorediff::Error. Uses the public header only.
//   embed CHECKPOINT DATASET [N]     exit status 0 when every check holds
#include <scorediff/scorediff.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int failed(const std::string& what) {
  std::fprintf(stderr, "embed: FAILED: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: embed CHECKPOINT DATASET [N]\n");
    return 2;
  }
  const std::string checkpoint = argv[1], dataset = argv[2];
  const int64_t n = argc > 3 ? std::atoll(argv[3]) : 2000;
  try {
    const scorediff::Model model = scorediff::Model::load(checkpoint);
    scorediff::SampleRequest request;
    request.n = n;
    request.seed = 7;
    const scorediff::Array samples = model.sample(request);
    if (samples.shape.size() != 2 || samples.shape[0] != n || samples.shape[1] != model.sample_shape()[0])
      return failed("samples have the wrong shape");
    for (float v : samples.data)
      if (!std::isfinite(v)) return failed("a sample is not finite");

    // The same seed draws the same samples.
    if (model.sample(request).data != samples.data) return failed("the same seed gave other samples");

    const auto metrics = scorediff::evaluate(samples, dataset, 0);
    const double swd = metrics.at("swd"), floor = metrics.at("swd_data_vs_data");
    std::printf("embed: %lld samples at step %lld, SWD %.4f against the data-vs-data floor %.4f\n",
                static_cast<long long>(n), static_cast<long long>(model.step()), swd, floor);
    if (!(swd < 5 * floor)) return failed("SWD is not within 5x the data-vs-data floor");

    // The score at a small noise level: shaped like the samples, finite.
    const scorediff::Array score = model.score(samples, {0.05});
    if (score.shape != samples.shape) return failed("the score has the wrong shape");
    for (float v : score.data)
      if (!std::isfinite(v)) return failed("a score value is not finite");
  } catch (const scorediff::Error& e) {
    return failed(std::string("unexpected scorediff::Error: ") + e.what());
  }

  // Bad input: one scorediff::Error with the command-line program's line.
  try {
    scorediff::Model::load(checkpoint + ".missing");
    return failed("loading a missing file did not throw");
  } catch (const scorediff::Error& e) {
    std::printf("embed: a missing checkpoint: %s\n", e.what());
  }
  try {
    const scorediff::Model model = scorediff::Model::load(checkpoint);
    scorediff::SampleRequest request;
    request.sampler = "no-such-sampler";
    model.sample(request);
    return failed("an unknown sampler did not throw");
  } catch (const scorediff::Error& e) {
    std::printf("embed: an unknown sampler: %s\n", e.what());
  }
  std::printf("embed: OK\n");
  return 0;
}
