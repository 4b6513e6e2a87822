#include "scorediff/core/error.hpp"

#include <vector>

namespace scorediff {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace scorediff
