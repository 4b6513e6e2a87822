// The Fashion-MNIST coverage figures shared by fashion-coverage and the selection of its guidance
// (fashion-guidance). Internal to src/experiments.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "scorediff/experiments/checks.hpp"
#include "scorediff/pipeline/image_evaluation.hpp"

namespace scorediff {

// The Fashion-MNIST labels 0 … 9, in order.
inline const std::vector<std::string>& fashion_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

struct Coverage {
  double smallest = 0, largest = 0;  // the smallest and largest share of one predicted class
  double confident_ratio = 0;        // confidently classified samples / the same for held-out images
  void add_checks(Checks& checks) const {
    checks.at_least("smallest_class_share", smallest, 0.05)
        .at_most("largest_class_share", largest, 0.20)
        .at_least("confident_fraction_over_held_out", confident_ratio, 0.8);
  }
  bool holds() const {
    Checks c;
    add_checks(c);
    return c.all_hold();
  }
};

inline Coverage coverage_of(const ImageEvaluation& e) {
  const auto& shares = e.samples.class_fractions;
  return {*std::min_element(shares.begin(), shares.end()), *std::max_element(shares.begin(), shares.end()),
          e.samples.confident_fraction / std::max(e.real.confident_fraction, 1e-12)};
}

}  // namespace scorediff
