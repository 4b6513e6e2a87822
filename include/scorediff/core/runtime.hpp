// Process-wide settings fixed once at start-up: intra-op threads and the compute device.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace scorediff {

// threads >= 1. Small models are fastest on one thread (FACTS: oversubscription on 2 cores halves speed).
void set_threads(int threads);

// "cpu", "cuda", "cuda:1"; fails with one line if CUDA is asked for but absent.
c10::Device parse_device(const std::string& name);

}  // namespace scorediff
