// scorediff: one program, sub-commands in cli/*.cpp; this file only dispatches and turns errors
// into one line and exit status 2 (3: a data-parallel worker was lost; 130: interrupted).
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <cstdio>
#include <iostream>

#include "cli/common.hpp"
#include "scorediff/core/error.hpp"
#include "scorediff/core/interrupt.hpp"
#include "scorediff/core/runtime.hpp"
#include "scorediff/train/data_parallel.hpp"

using scorediff::first_line;

int main(int argc, char** argv) {
  scorediff::configure_allocator();
  scorediff::install_interrupt_handlers();
  scorediff::cli::remember_command_line(argc, argv);
  CLI::App app{"scorediff: learn scores, sample, measure and show them (score-based generative models)"};
  app.require_subcommand(1, 1);
  app.set_version_flag("--version", std::string("scorediff ") + SCOREDIFF_VERSION);
  app.fallthrough(false);
  scorediff::cli::add_train_command(app);
  scorediff::cli::add_train_classifier_command(app);
  scorediff::cli::add_sample_command(app);
  scorediff::cli::add_encode_command(app);
  scorediff::cli::add_distill_command(app);
  scorediff::cli::add_reflow_command(app);
  scorediff::cli::add_posthoc_command(app);
  scorediff::cli::add_eval_command(app);
  scorediff::cli::add_denoise_command(app);
  scorediff::cli::add_inpaint_command(app);
  scorediff::cli::add_density_command(app);
  scorediff::cli::add_likelihood_command(app);
  scorediff::cli::add_plot_command(app);
  scorediff::cli::add_experiment_command(app);
  scorediff::cli::add_demo_command(app);
  scorediff::cli::add_bench_command(app);
  if (argc >= 2 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      std::cerr << "scorediff: error: unknown command '" << argv[1] << "'; valid: " << scorediff::join_names(names) << "\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "scorediff: error: " << first_line(e.what()) << " (see --help)\n";
    return 2;
  } catch (const scorediff::cli::ExitStatus& e) {
    return e.status;
  } catch (const scorediff::Interrupted& e) {
    std::cerr << "scorediff: interrupted: " << first_line(e.what()) << "\n";
    return 130;
  } catch (const scorediff::WorkerLost& e) {
    std::cerr << "scorediff: error: " << first_line(e.what()) << "\n";
    return 3;
  } catch (const scorediff::Error& e) {
    std::cerr << "scorediff: error: " << first_line(e.what()) << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "scorediff: error: " << first_line(e.what_without_backtrace()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "scorediff: error: " << first_line(e.what()) << "\n";
    return 2;
  }
  return 0;
}
