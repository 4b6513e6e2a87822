#include "test_util.hpp"

#include <sys/wait.h>

#include <fstream>
#include <sstream>

namespace scorediff {

CliResult run_cli(const std::string& args, const std::filesystem::path& cwd) {
  return run_command(SCOREDIFF_BINARY + std::string(" ") + args, cwd);
}

CliResult run_command(const std::string& command_line, const std::filesystem::path& cwd) {
  TempDir capture;
  std::string command = "cd '" + cwd.string() + "' && " + command_line + " > '" + (capture / "out").string() + "' 2> '" +
                        (capture / "err").string() + "'";
  int raw = std::system(command.c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  r.out = slurp(capture / "out");
  r.err = slurp(capture / "err");
  return r;
}

}  // namespace scorediff
