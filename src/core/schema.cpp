#include "scorediff/core/schema.hpp"

#include <fmt/format.h>

#include <cmath>
#include <toml++/toml.h>

#include "scorediff/core/error.hpp"

namespace scorediff {
namespace {

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string text = fmt::format("{}", v);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string node_kind(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "a list";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

double as_number(const toml::node& node, const std::string& key) {
  if (auto v = node.value<int64_t>(); v && node.is_integer()) return static_cast<double>(*v);
  if (node.is_floating_point()) return *node.value<double>();
  fail("config key '{}' expects a number, got {}", key, node_kind(node));
}

std::vector<double> as_list(const toml::node& node, const std::string& key) {
  if (!node.is_array()) return {as_number(node, key)};
  std::vector<double> out;
  for (const auto& item : *node.as_array()) out.push_back(as_number(item, key));
  return out;
}

// A matrix accepts a number (one 1x1 row), a list of numbers (one element per row), or a list of lists.
Matrix as_matrix(const toml::node& node, const std::string& key) {
  if (!node.is_array()) return {{as_number(node, key)}};
  Matrix out;
  for (const auto& row : *node.as_array()) out.push_back(as_list(row, key));
  return out;
}

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

Field::Field(std::string key, Target target, std::string help)
    : key_(std::move(key)), target_(target), help_(std::move(help)) {}

Field& Field::positive() {
  low_ = 0.0;
  low_open_ = true;
  return *this;
}
Field& Field::non_negative() { return at_least(0.0); }
Field& Field::at_least(double low) {
  low_ = low;
  low_open_ = false;
  return *this;
}
Field& Field::in_range(double low, double high) {
  low_ = low;
  low_open_ = false;
  high_ = high;
  return *this;
}
Field& Field::at_most(double high) {
  high_ = high;
  high_open_ = false;
  return *this;
}
Field& Field::below(double high) {
  high_ = high;
  high_open_ = true;
  return *this;
}
Field& Field::one_of(std::vector<std::string> choices) {
  choices_ = std::move(choices);
  return *this;
}

Field& Field::or_auto(bool* is_auto) {
  require(std::holds_alternative<double*>(target_) || std::holds_alternative<int64_t*>(target_),
          "config key '{}': only numbers may be auto", key_);
  is_auto_ = is_auto;
  return *this;
}

std::string Field::type_name() const {
  if (is_auto_ != nullptr) return std::holds_alternative<int64_t*>(target_) ? "int|auto" : "num|auto";
  return std::visit(Overloaded{[](int64_t*) { return "integer"; }, [](double*) { return "number"; },
                               [](bool*) { return "boolean"; }, [](std::string*) { return "string"; },
                               [](std::vector<double>*) { return "list"; }, [](Matrix*) { return "list of lists"; }},
                    target_);
}

std::string Field::value_text() const {
  if (is_auto_ != nullptr && *is_auto_) return quote("auto");
  auto list_text = [](const std::vector<double>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + format_double(v[i]);
    return out + "]";
  };
  return std::visit(Overloaded{[](int64_t* v) { return std::to_string(*v); },
                               [](double* v) { return format_double(*v); },
                               [](bool* v) { return std::string(*v ? "true" : "false"); },
                               [](std::string* v) { return quote(*v); },
                               [&](std::vector<double>* v) { return list_text(*v); },
                               [&](Matrix* m) {
                                 std::string out = "[";
                                 for (size_t i = 0; i < m->size(); ++i) out += (i ? ", " : "") + list_text((*m)[i]);
                                 return out + "]";
                               }},
                    target_);
}

std::string Field::constraint_text() const {
  auto bound = [this](double v) {
    return std::holds_alternative<int64_t*>(target_) ? std::to_string(static_cast<int64_t>(v)) : format_double(v);
  };
  if (!choices_.empty()) return "one of: " + join_names(choices_);
  if (low_ && high_)
    return fmt::format("in {}{}, {}{}", low_open_ ? "(" : "[", bound(*low_), bound(*high_), high_open_ ? ")" : "]");
  if (low_) return fmt::format("{} {}", low_open_ ? ">" : ">=", bound(*low_));
  if (high_) return fmt::format("{} {}", high_open_ ? "<" : "<=", bound(*high_));
  return {};
}

void Field::assign(const toml::node& node) const {
  if (is_auto_ != nullptr) {
    *is_auto_ = node.is_string() && *node.value<std::string>() == "auto";
    if (*is_auto_) return;
    if (node.is_string())
      fail("config key '{}' expects a number or \"auto\", got '{}'", key_, *node.value<std::string>());
  }
  std::visit(Overloaded{[&](int64_t* v) {
                          if (!node.is_integer()) fail("config key '{}' expects an integer, got {}", key_, node_kind(node));
                          *v = *node.value<int64_t>();
                        },
                        [&](double* v) { *v = as_number(node, key_); },
                        [&](bool* v) {
                          if (!node.is_boolean()) fail("config key '{}' expects true or false, got {}", key_, node_kind(node));
                          *v = *node.value<bool>();
                        },
                        [&](std::string* v) {
                          if (!node.is_string()) fail("config key '{}' expects a string, got {}", key_, node_kind(node));
                          *v = *node.value<std::string>();
                        },
                        [&](std::vector<double>* v) { *v = as_list(node, key_); },
                        [&](Matrix* m) { *m = as_matrix(node, key_); }},
             target_);
}

void Field::assign_text(const std::string& text) const {
  if (std::holds_alternative<std::string*>(target_)) {
    std::string value = text;
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    *std::get<std::string*>(target_) = value;
    return;
  }
  if (is_auto_ != nullptr && (text == "auto" || text == "\"auto\"" || text == "'auto'")) {
    *is_auto_ = true;
    return;
  }
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + text);
  } catch (const toml::parse_error&) {
    fail("--set {}={}: '{}' is not a valid {}", key_, text, text, type_name());
  }
  assign(*parsed.get("value"));
}

void Field::check_number(double value) const {
  if (std::isnan(value)) fail("config key '{}' is NaN", key_);
  if (!std::isfinite(value)) fail("config key '{}' = {} is not finite", key_, value > 0 ? "inf" : "-inf");
  bool below = low_ && (low_open_ ? !(value > *low_) : !(value >= *low_));
  bool above = high_ && (high_open_ ? !(value < *high_) : !(value <= *high_));
  if (below || above) {
    bool integer = std::holds_alternative<int64_t*>(target_);
    fail("config key '{}' = {} is out of range; must be {}", key_,
         integer ? std::to_string(static_cast<int64_t>(value)) : format_double(value), constraint_text());
  }
}

void Field::check() const {
  if (is_auto_ != nullptr && *is_auto_) return;
  std::visit(Overloaded{[&](int64_t* v) { check_number(static_cast<double>(*v)); }, [&](double* v) { check_number(*v); },
                        [](bool*) {},
                        [&](std::string* v) {
                          if (!choices_.empty() && std::find(choices_.begin(), choices_.end(), *v) == choices_.end())
                            fail("unknown {} '{}' for config key '{}'; valid: {}", key_.substr(key_.rfind('.') + 1), *v,
                                 key_, join_names(choices_));
                        },
                        [&](std::vector<double>* v) {
                          for (double x : *v) check_number(x);
                        },
                        [&](Matrix* m) {
                          for (const auto& row : *m)
                            for (double x : row) check_number(x);
                        }},
             target_);
}

Field& Schema::add(std::string key, Field::Target target, std::string help) {
  require(key.find('.') != std::string::npos, "config key '{}' needs a section", key);
  require(find(key) == nullptr, "config key '{}' bound twice", key);
  fields_.emplace_back(std::move(key), target, std::move(help));
  return fields_.back();
}

const Field* Schema::find(const std::string& key) const {
  for (const auto& f : fields_)
    if (f.key() == key) return &f;
  return nullptr;
}

std::vector<std::string> Schema::sections() const {
  std::vector<std::string> out;
  for (const auto& f : fields_) {
    std::string section = f.key().substr(0, f.key().find('.'));
    if (std::find(out.begin(), out.end(), section) == out.end()) out.push_back(section);
  }
  return out;
}

std::vector<std::string> Schema::keys_in(const std::string& section) const {
  std::vector<std::string> out;
  for (const auto& f : fields_)
    if (f.key().compare(0, section.size() + 1, section + ".") == 0) out.push_back(f.key().substr(section.size() + 1));
  return out;
}

void Schema::load_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("config file '{}' not found", path.string());
  toml::table root;
  try {
    root = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: malformed TOML: {}", path.string(), e.source().begin.line, e.source().begin.column,
         e.description());
  }
  apply(root, path.string());
}

void Schema::load_string(const std::string& text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: malformed TOML: {}", origin, e.source().begin.line, e.source().begin.column, e.description());
  }
  apply(root, origin);
}

void Schema::apply(const toml::table& root, const std::string& origin) {
  auto all_sections = sections();
  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    if (std::find(all_sections.begin(), all_sections.end(), section) == all_sections.end())
      fail("{}: unknown config section [{}]; valid: {}", origin, section, join_names(all_sections));
    if (!section_node.is_table()) fail("{}: '{}' must be a section [{}]", origin, section, section);
    for (const auto& [key, node] : *section_node.as_table()) {
      std::string full = section + "." + std::string(key.str());
      const Field* field = find(full);
      if (field == nullptr)
        fail("{}: unknown config key '{}'; valid keys in [{}]: {}", origin, full, section, join_names(keys_in(section)));
      try {
        field->assign(node);
      } catch (const Error& e) {
        fail("{}: {}", origin, e.what());
      }
      mark_assigned(full);
    }
  }
}

void Schema::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail("--set expects section.key=value, got '{}'", assignment);
  std::string key = assignment.substr(0, eq);
  const Field* field = find(key);
  if (field == nullptr) {
    std::string section = key.substr(0, key.find('.'));
    auto keys = keys_in(section);
    if (keys.empty()) fail("--set: unknown config section '{}'; valid: {}", section, join_names(sections()));
    fail("--set: unknown config key '{}'; valid keys in [{}]: {}", key, section, join_names(keys));
  }
  field->assign_text(assignment.substr(eq + 1));
  mark_assigned(key);
}

void Schema::mark_assigned(const std::string& key) {
  if (std::find(assigned_.begin(), assigned_.end(), key) == assigned_.end()) assigned_.push_back(key);
}

void Schema::check() const {
  for (const auto& f : fields_) f.check();
}

std::string Schema::to_toml() const {
  std::string out;
  for (const auto& section : sections()) {
    out += fmt::format("{}[{}]\n", out.empty() ? "" : "\n", section);
    for (const auto& f : fields_)
      if (f.key().compare(0, section.size() + 1, section + ".") == 0)
        out += fmt::format("{} = {}\n", f.key().substr(section.size() + 1), f.value_text());
  }
  return out;
}

std::string Schema::describe() const {
  std::string out;
  for (const auto& f : fields_) {
    std::string constraint = f.constraint_text();
    out += fmt::format("  {:<28} {:<8} = {:<14} {}{}\n", f.key(), f.type_name(), f.value_text(), f.help(),
                       constraint.empty() ? "" : " (" + constraint + ")");
  }
  return out;
}

}  // namespace scorediff
