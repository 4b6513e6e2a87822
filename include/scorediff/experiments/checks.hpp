// An experiment's acceptance verdicts: each a measured value against a bound. They go into metrics.json as
// "checks": {name: {"value": v, "bound": b, "relation": "<=", "holds": bool}} and into report.md as one table,
// from the same numbers, so a reader of either sees the same verdicts.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scorediff/io/report.hpp"

namespace scorediff {

struct ExperimentContext;

class Checks {
 public:
  // value ≤ bound, value < bound, value ≥ bound, value > bound, value == bound.
  Checks& at_most(const std::string& name, double value, double bound);
  Checks& below(const std::string& name, double value, double bound);
  Checks& at_least(const std::string& name, double value, double bound);
  Checks& above(const std::string& name, double value, double bound);
  Checks& equal(const std::string& name, double value, double bound);
  bool all_hold() const;
  nlohmann::json to_json() const;
  // A "check | value | bound | holds" table (nothing when there are no checks).
  void add_to(Report& report) const;

 private:
  struct Item {
    std::string name, relation;
    double value, bound;
    bool holds;
  };
  Checks& add(const std::string& name, const char* relation, double value, double bound, bool holds);
  std::vector<Item> items_;
};

// An experiment's ending: report.md saved into the context's directory, the checks put into the metrics
// as "checks", metrics.json written; returns the metrics.
nlohmann::json finish_experiment(const Report& report, const Checks& checks, nlohmann::json metrics,
                                 const ExperimentContext& context);

}  // namespace scorediff
