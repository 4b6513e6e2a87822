#include "test_util.hpp"

#include <sys/wait.h>

#include <algorithm>
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

void expect_bad_input(const std::string& args, const std::filesystem::path& cwd, const std::string& fragment) {
  CliResult r = run_cli(args, cwd);
  EXPECT_EQ(r.status, 2) << args << "\nstderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\nstderr: " << r.err;
  EXPECT_EQ(r.err.rfind("scorediff: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << args << "\nstderr: " << r.err;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(cwd))
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << "partial file " << entry.path();
}

}  // namespace scorediff
