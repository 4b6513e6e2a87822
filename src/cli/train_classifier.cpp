// scorediff train-classifier: trains the image classifier whose features measure sample quality
// (fd_cls, kid_cls) on a labelled image dataset and writes it as safetensors.
#include <fmt/core.h>

#include <chrono>

#include "cli/common.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/data/images.hpp"
#include "scorediff/io/files.hpp"
#include "scorediff/metrics/classifier.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"

namespace scorediff::cli {

void add_train_classifier_command(CLI::App& app) {
  struct Args {
    std::string data, path, out;
    int64_t image_size = 0, epochs = 0, shift = ClassifierOptions{}.shift, seed = 0, threads = 2;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("train-classifier",
                                     "Train the image classifier used for fd_cls / kid_cls on a labelled image dataset");
  cmd->add_option("--data", args->data, "dataset: fashion-mnist, mnist (png-folder has no labels)")->required();
  cmd->add_option("--path", args->path, "dataset location (default: the installed copy)");
  cmd->add_option("--image-size", args->image_size, "resize images to S x S (0 = as stored)")->capture_default_str();
  CLI::Option* epochs = cmd->add_option(
      "--epochs", args->epochs,
      fmt::format("passes over the training split (default: enough for {} images, at least 4)", ClassifierOptions{}.min_images));
  cmd->add_option("--shift", args->shift, "augmentation: random shifts by up to +-S pixels (0 = none)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "seed of the initialisation, batches, shifts and dropout")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", args->threads, "threads")->capture_default_str();
  cmd->add_option("-o,--out", args->out, "output .safetensors (default runs/classifier-<data>[-<size>].safetensors)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress output");
  cmd->callback([args, epochs] {
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
    ImageData data = load_image_data(args->data, args->path, args->image_size);
    ClassifierOptions options;
    options.epochs = args->epochs;  // 0 when not given: automatic
    options.shift = args->shift;
    TrainedClassifier trained = train_classifier(data, options, static_cast<uint64_t>(args->seed), args->quiet);
    save_classifier(out, trained.classifier, data.name, trained.test_accuracy);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!args->quiet)
      fmt::print(stderr, "test accuracy {:.2f}% on {} held-out {} images\n", 100 * trained.test_accuracy,
                 data.test.size(), data.name);
    fmt::print("{}\n", nlohmann::json({{"path", out}, {"test_accuracy", trained.test_accuracy}, {"seconds", seconds}}).dump());
  });
}

}  // namespace scorediff::cli
