#include "scorediff/experiments/checks.hpp"

#include <cmath>

#include "scorediff/experiments/experiment.hpp"

namespace scorediff {

Checks& Checks::add(const std::string& name, const char* relation, double value, double bound, bool holds) {
  items_.push_back({name, relation, value, bound, holds && std::isfinite(value)});
  return *this;
}

Checks& Checks::at_most(const std::string& name, double value, double bound) {
  return add(name, "<=", value, bound, value <= bound);
}
Checks& Checks::below(const std::string& name, double value, double bound) {
  return add(name, "<", value, bound, value < bound);
}
Checks& Checks::at_least(const std::string& name, double value, double bound) {
  return add(name, ">=", value, bound, value >= bound);
}
Checks& Checks::above(const std::string& name, double value, double bound) {
  return add(name, ">", value, bound, value > bound);
}
Checks& Checks::equal(const std::string& name, double value, double bound) {
  return add(name, "==", value, bound, value == bound);
}

bool Checks::all_hold() const {
  for (const auto& item : items_)
    if (!item.holds) return false;
  return true;
}

nlohmann::json Checks::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& item : items_)
    out[item.name] = {{"value", item.value}, {"bound", item.bound}, {"relation", item.relation}, {"holds", item.holds}};
  return out;
}

void Checks::add_to(Report& report) const {
  if (items_.empty()) return;
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : items_) {
    const std::string relation = item.relation == "<=" ? "≤" : item.relation == ">=" ? "≥" : item.relation;
    rows.push_back({item.name, num(item.value), relation + " " + num(item.bound), item.holds ? "yes" : "no"});
  }
  report.table({"check", "value", "bound", "holds"}, rows);
}

nlohmann::json finish_experiment(const Report& report, const Checks& checks, nlohmann::json metrics,
                                 const ExperimentContext& context) {
  report.save(context.out / "report.md");
  metrics["checks"] = checks.to_json();
  write_metrics(context, metrics);
  return metrics;
}

}  // namespace scorediff
