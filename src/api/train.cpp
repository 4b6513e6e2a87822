// The public train() (scorediff/scorediff.hpp): `scorediff train --no-sample` with a progress callback that can
// cancel the run after any step, its checkpoint written as Ctrl-C would.
#include <torch/torch.h>

#include <exception>

#include "api/arrays.hpp"
#include "scorediff/core/interrupt.hpp"
#include "scorediff/pipeline/training.hpp"
#include "scorediff/scorediff.hpp"

namespace scorediff {

TrainResult train(const std::string& config_name, const TrainRequest& request) {
  // An exception thrown by the callback stops the run like a cancellation (the checkpoint of that step is
  // written) and then leaves train() as it was thrown.
  std::exception_ptr raised;
  TrainResult result = api::guarded([&] {
    Config config = load_config(config_name, request.sets);
    const std::filesystem::path out =
        request.out.empty() ? std::filesystem::path("runs") / config.run.name : std::filesystem::path(request.out);
    TrainRunOptions options(request.resume, request.quiet);
    TrainResult r;
    r.run_dir = out.string();
    r.checkpoint = (out / "last.safetensors").string();
    if (request.progress) {
      options.stop_request = [&](const StepEvent& event) {
        TrainProgress progress;
        progress.step = event.step;
        progress.steps = event.last_step;
        progress.loss = event.stats != nullptr ? event.stats->loss : 0.0;
        progress.seconds = event.train_seconds;
        r.steps = event.step;
        r.seconds = event.train_seconds;
        r.final_loss = progress.loss;
        try {
          return !request.progress(progress);
        } catch (...) {
          raised = std::current_exception();
          return true;
        }
      };
    }
    try {
      const TrainedRun run = train_run(config, out, options);
      r.steps = run.steps;
      r.seconds = run.seconds;
      if (!run.log.empty()) r.final_loss = run.log.back().value("loss", 0.0);
    } catch (const Interrupted&) {
      // Cancelled (or Ctrl-C where the program installed the handlers): the checkpoint of the last step is
      // written and `resume` continues it.
      r.cancelled = true;
    }
    return r;
  });
  if (raised) std::rethrow_exception(raised);
  return result;
}

}  // namespace scorediff
