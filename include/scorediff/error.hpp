// scorediff::Error, the one exception type a user of the library sees (public: the standard library only).
// Its message is the one line the command-line program prints before it exits with status 2.
#pragma once
#include <stdexcept>

namespace scorediff {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace scorediff
