// scorediff::Array (the public API's NumPy-like array) to and from tensors, with one-line errors for bad shapes
// and values. Internal to the library.
#pragma once
#include <torch/types.h>

#include <c10/util/Exception.h>

#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "scorediff/core/error.hpp"
#include "scorediff/scorediff.hpp"

namespace scorediff::api {

// A float32 CPU copy of t, reshaped to `shape` when given (same number of elements).
Array to_array(const torch::Tensor& t, const std::vector<int64_t>& shape = {});

// Points [N, dim] (float32) from x of shape [N, dim] or [N, d1, d2, ...] with d1·d2·… = dim, N >= 1, every value
// finite; `what` names x in the error line.
torch::Tensor to_points(const Array& x, int64_t dim, const std::string& what);

// Every public call runs under this lock: LibTorch's thread count is process-wide and a Model's state is shared
// by its copies, so the library computes one call at a time (recursive: a training callback may sample).
std::recursive_mutex& call_lock();

// Runs f under call_lock() and turns every exception into scorediff::Error with the line the command-line
// program would print (LibTorch's without its backtrace); scorediff::Error and its kinds pass unchanged.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  std::lock_guard<std::recursive_mutex> lock(call_lock());
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error(first_line(e.what()));
  }
}

}  // namespace scorediff::api
