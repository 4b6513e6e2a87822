// scorediff train-classifier: trains the image classifier whose features measure sample quality
// (fd_cls, kid_cls) on a labelled image dataset and writes it as safetensors; with --noisy, the
// noise-conditional classifier of a run that guides its sampling (sample.classifier).
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/metrics/classifier.hpp"
#include "scorediff/pipeline/checkpoint.hpp"
#include "scorediff/pipeline/classifier_guidance.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"

namespace scorediff::cli {

void add_train_classifier_command(CLI::App& app) {
  struct Args {
    std::string data, path, out, ckpt;
    int64_t image_size = 0, epochs = 0, shift = ClassifierOptions{}.shift, seed = 0, threads = 2;
    bool quiet = false, noisy = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("train-classifier",
                                     "Train the image classifier used for fd_cls / kid_cls on a labelled image dataset");
  CLI::Option* data = cmd->add_option("--data", args->data, "dataset: fashion-mnist, mnist, or a png-folder of class sub-folders");
  cmd->add_flag("--noisy", args->noisy,
                "noise-conditional, for classifier guidance (sample.classifier) of the run of --ckpt: its data, pixel "
                "range and the noise levels of its process");
  CLI::Option* ckpt = cmd->add_option("--ckpt", args->ckpt, "--noisy: a checkpoint of the run to guide");
  cmd->add_option("--path", args->path, "dataset location (default: the installed copy)");
  cmd->add_option("--image-size", args->image_size, "resize images to S x S (0 = as stored)")->capture_default_str();
  CLI::Option* epochs = cmd->add_option(
      "--epochs", args->epochs,
      fmt::format("passes over the training split (default: enough for {} images, at least 4)", ClassifierOptions{}.min_images));
  cmd->add_option("--shift", args->shift, "augmentation: random shifts by up to +-S pixels (0 = none)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "seed of the initialisation, batches, shifts and dropout")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", args->threads, "threads")->capture_default_str();
  cmd->add_option("-o,--out", args->out,
                  "output .safetensors (default runs/classifier-<data>[-<size>].safetensors; --noisy: "
                  "noisy-classifier.safetensors in the run's folder)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->callback([args, epochs, data, ckpt] {
    require(args->noisy == (ckpt->count() > 0), args->noisy ? "--noisy needs --ckpt, a checkpoint of the run to guide"
                                                           : "--ckpt is for --noisy classifiers");
    require(args->noisy || data->count() > 0, "train-classifier needs --data (or --noisy --ckpt RUN)");
    ClassifierOptions options;
    std::string process;
    if (args->noisy) {  // the run's dataset, pixel range and noise levels
      require(data->count() == 0 && args->path.empty() && args->image_size == 0,
              "--noisy takes the data of the run of --ckpt: leave out --data, --path and --image-size");
      const LoadedModel run = load_trained(args->ckpt);
      args->data = run.config.data.name;
      args->path = run.config.data.path;
      args->image_size = run.config.data.image_size;
      options = noisy_classifier_options(run.config, *run.prepared.process, options);
      process = classifier_process_text(run.config);
      if (args->out.empty()) args->out = (run_dir_of(args->ckpt) / "noisy-classifier.safetensors").string();
    }
    require(epochs->count() == 0 || args->epochs >= 1, "--epochs must be >= 1, got {}", args->epochs);
    require(args->shift >= 0, "--shift must be >= 0, got {}", args->shift);
    require(args->image_size >= 0, "--image-size must be >= 0, got {}", args->image_size);
    require(args->threads >= 1, "--threads must be >= 1, got {}", args->threads);
    std::string out = args->out;
    if (out.empty()) {
      DataOptions data_options;
      data_options.name = args->data;
      data_options.image_size = args->image_size;
      const std::filesystem::path path = default_classifier_path(data_options);
      ensure_output_dir(path.parent_path());
      out = path.string();
    }
    check_output_file(out);
    set_threads(static_cast<int>(args->threads), Workload::Convolution);

    auto start = std::chrono::steady_clock::now();
    ImageData images = load_image_data(args->data, args->path, args->image_size);
    options.epochs = args->epochs;  // 0 when not given: automatic
    options.shift = args->shift;
    TrainedClassifier trained = train_classifier(images, options, static_cast<uint64_t>(args->seed), args->quiet);
    save_classifier(out, trained.classifier, images.name, trained.test_accuracy, process);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!args->quiet)
      fmt::print(stderr, "test accuracy {:.2f}% on {} held-out {} images\n", 100 * trained.test_accuracy,
                 images.test.size(), images.name);
    fmt::print("{}\n", nlohmann::json({{"path", out}, {"test_accuracy", trained.test_accuracy}, {"seconds", seconds}}).dump());
  });
}

}  // namespace scorediff::cli
