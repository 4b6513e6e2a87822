// The TOML presets of configs/, embedded in the binary at build time so `scorediff` runs from anywhere.
#pragma once
#include <string>
#include <vector>

namespace scorediff {

struct Preset {
  std::string name;
  std::string text;
};
const std::vector<Preset>& embedded_presets();

}  // namespace scorediff
