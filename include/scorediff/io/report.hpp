// report.md: a short Markdown page that links a run's figures next to the numbers they show.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace scorediff {

class Report {
 public:
  explicit Report(const std::string& title);
  Report& heading(const std::string& text);
  Report& paragraph(const std::string& text);
  Report& table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
  Report& image(const std::string& file, const std::string& caption);
  Report& code(const std::string& text);
  void save(const std::filesystem::path& path) const;  // atomic
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Numbers in reports and tables: 4 significant digits.
std::string num(double value);

}  // namespace scorediff
