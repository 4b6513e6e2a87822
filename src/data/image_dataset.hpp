// The image datasets' entries in the dataset registry (fashion-mnist, mnist, png-folder); called by
// register_builtins in toy.cpp.
#pragma once
#include "scorediff/data/toy.hpp"

namespace scorediff {

void register_image_datasets(Registry<DatasetFactory>& registry);

}  // namespace scorediff
