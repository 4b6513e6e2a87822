// Schema: typed configuration fields bound to struct members.
//
// Every option of a run is a member of a plain options struct; a module binds its struct's members
// to keys ("data.name") with help text and constraints. The one Schema then reads TOML presets,
// applies `--set key=value` overrides, validates ranges and choices, and prints the resolved
// configuration, so unknown keys and out-of-range values are caught in one place.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
class node;
}  // namespace v3
}  // namespace toml

namespace scorediff {

using Matrix = std::vector<std::vector<double>>;

class Field {
 public:
  using Target = std::variant<int64_t*, double*, bool*, std::string*, std::vector<double>*, Matrix*>;

  Field(std::string key, Target target, std::string help);

  // Constraints, checked by Schema::check(); numbers apply to every element of a list. Every number must
  // also be finite (no NaN, no ±inf).
  Field& positive();
  Field& non_negative();
  Field& at_least(double low);
  Field& in_range(double low, double high);
  Field& at_most(double high);
  Field& below(double high);  // < high
  Field& one_of(std::vector<std::string> choices);
  // A number that may also be the string "auto": sets *is_auto (and leaves the number) for "auto",
  // clears it for a number. Whoever owns the options replaces auto by a derived number later.
  Field& or_auto(bool* is_auto);

  const std::string& key() const { return key_; }
  const std::string& help() const { return help_; }
  std::string type_name() const;
  std::string value_text() const;  // the current value as TOML
  std::string constraint_text() const;

  void assign(const toml::node& node) const;
  void assign_text(const std::string& text) const;  // a --set value
  void check() const;

 private:
  void check_number(double value) const;
  std::string key_;
  Target target_;
  std::string help_;
  std::optional<double> low_, high_;
  bool low_open_ = false, high_open_ = false;
  std::vector<std::string> choices_;
  bool* is_auto_ = nullptr;
};

class Schema {
 public:
  Field& add(std::string key, Field::Target target, std::string help);

  void load_file(const std::filesystem::path& path);
  void load_string(const std::string& text, const std::string& origin);
  void apply(const toml::table& root, const std::string& origin);
  // "section.key=value"; value is TOML (numbers, [lists], true/false) or a bare string.
  void set(const std::string& assignment);
  void check() const;

  std::string to_toml() const;     // resolved configuration, sections in binding order
  std::string describe() const;    // one line per key: type, current value, constraint, help
  const Field* find(const std::string& key) const;
  std::vector<std::string> keys_in(const std::string& section) const;
  std::vector<std::string> sections() const;
  // Keys given a value by apply/load_*/set, in order (a key assigned twice appears once).
  const std::vector<std::string>& assigned() const { return assigned_; }

 private:
  void mark_assigned(const std::string& key);
  std::vector<Field> fields_;
  std::vector<std::string> assigned_;
};

}  // namespace scorediff
