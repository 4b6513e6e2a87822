// Registry<T>: name -> value (usually a factory), filled by an explicit register_builtins() call.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "scorediff/core/error.hpp"

namespace scorediff {

template <class T>
class Registry {
 public:
  // family names the kind of thing in error messages: "unknown sampler 'x'; valid: ...".
  explicit Registry(std::string family) : family_(std::move(family)) {}

  void add(const std::string& name, T value, std::string help = {}) {
    require(entries_.count(name) == 0, "{} '{}' registered twice", family_, name);
    entries_.emplace(name, Entry{std::move(value), std::move(help)});
  }

  const T& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) fail("unknown {} '{}'; valid: {}", family_, name, join_names(names()));
    return it->second.value;
  }

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  const std::string& help(const std::string& name) const {
    get(name);
    return entries_.at(name).help;
  }
  const std::string& family() const { return family_; }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_) out.push_back(name);
    return out;
  }

 private:
  struct Entry {
    T value;
    std::string help;
  };
  std::string family_;
  std::map<std::string, Entry> entries_;
};

// The registry of a family, built once, on first use, by the family's register_builtins(Registry<T>&)
// (found by argument-dependent lookup) and immutable afterwards. Each family has its own T.
template <class T>
const Registry<T>& builtin_registry(const char* family) {
  static const Registry<T> registry = [family] {
    Registry<T> r(family);
    register_builtins(r);
    return r;
  }();
  return registry;
}

}  // namespace scorediff
