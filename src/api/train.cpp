// The public train() (scorediff/scorediff.hpp): `scorediff train --no-sample` with a progress callback that can
// cancel the run after any step, its checkpoint written as Ctrl-C would.
#include <torch/torch.h>

#include "scorediff/core/interrupt.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/scorediff.hpp"

namespace scorediff {

TrainResult train(const std::string& config_name, const TrainRequest& request) {
  Config config = load_config(config_name, request.sets);
  const std::filesystem::path out =
      request.out.empty() ? std::filesystem::path("runs") / config.run.name : std::filesystem::path(request.out);
  TrainRunOptions options(request.resume, request.quiet);
  TrainResult result;
  result.run_dir = out.string();
  result.checkpoint = (out / "last.safetensors").string();
  if (request.progress) {
    options.stop_request = [&](const StepEvent& event) {
      TrainProgress progress;
      progress.step = event.step;
      progress.steps = event.last_step;
      progress.loss = event.stats != nullptr ? event.stats->loss : 0.0;
      progress.seconds = event.train_seconds;
      result.steps = event.step;
      result.seconds = event.train_seconds;
      return !request.progress(progress);
    };
  }
  try {
    const TrainedRun run = train_run(config, out, options);
    result.steps = run.steps;
    result.seconds = run.seconds;
    if (!run.log.empty()) result.final_loss = run.log.back().value("loss", 0.0);
  } catch (const Interrupted&) {
    // Cancelled by the callback (or Ctrl-C where the program installed the handlers): the checkpoint of the
    // last step is written and `resume` continues it.
    result.cancelled = true;
  }
  return result;
}

}  // namespace scorediff
