// fail() and require(): scorediff::Error (scorediff/error.hpp) with a formatted message. The CLI turns it into
// one line + exit 2.
#pragma once
#include <fmt/format.h>

#include <string>
#include <vector>

#include "scorediff/error.hpp"

namespace scorediff {

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
