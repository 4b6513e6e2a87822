// scorediff::Error: the one exception type a user sees. The CLI turns it into one line + exit 2.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace scorediff {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
void require(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// "a, b, c" — used by every "unknown X 'y'; valid: ..." message.
std::string join_names(const std::vector<std::string>& names);

// The text up to its first newline: error lines from LibTorch and Gloo carry backtraces after it.
std::string first_line(const std::string& text);

}  // namespace scorediff
