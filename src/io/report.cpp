#include "scorediff/io/report.hpp"

#include <fmt/format.h>

#include "scorediff/io/files.hpp"

namespace scorediff {

std::string num(double value) { return fmt::format("{:.4g}", value); }

Report::Report(const std::string& title) { text_ = "# " + title + "\n\n"; }

Report& Report::heading(const std::string& text) {
  text_ += "## " + text + "\n\n";
  return *this;
}

Report& Report::paragraph(const std::string& text) {
  text_ += text + "\n\n";
  return *this;
}

Report& Report::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (const auto& c : cells) out += " " + c + " |";
    return out + "\n";
  };
  text_ += line(header);
  text_ += line(std::vector<std::string>(header.size(), "---"));
  for (const auto& r : rows) text_ += line(r);
  text_ += "\n";
  return *this;
}

Report& Report::image(const std::string& file, const std::string& caption) {
  text_ += fmt::format("![{}]({})\n\n*{}*\n\n", caption, file, caption);
  return *this;
}

Report& Report::code(const std::string& text) {
  text_ += "```\n" + text + (text.empty() || text.back() == '\n' ? "" : "\n") + "```\n\n";
  return *this;
}

void Report::save(const std::filesystem::path& path) const { write_file_atomic(path, text_); }

}  // namespace scorediff
