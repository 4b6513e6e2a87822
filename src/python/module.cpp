// The Python module `scorediff` (pybind11) over the public C++ API (scorediff/scorediff.hpp): NumPy arrays in
// and out, scorediff.Error for every error, the GIL released while C++ computes. docs/library.md.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "scorediff/scorediff.hpp"

namespace py = pybind11;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A NumPy array (any real dtype, any layout) as a float32 scorediff::Array; copied, with the GIL held.
scorediff::Array from_numpy(const py::handle& object) {
  const FloatArray a = FloatArray::ensure(object);
  if (!a) throw scorediff::Error("x must be an array of numbers");
  scorediff::Array out;
  out.shape.assign(a.shape(), a.shape() + a.ndim());
  out.data.assign(a.data(), a.data() + a.size());
  return out;
}

py::array_t<float> to_numpy(scorediff::Array&& a) {
  py::array_t<float> out(a.shape);
  std::copy(a.data.begin(), a.data.end(), out.mutable_data());
  return out;
}

// sigma as a number (Python's or NumPy's) or a 1-D sequence / array of numbers.
std::vector<double> sigmas(const py::handle& sigma) {
  const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(sigma);
  if (!a || a.ndim() > 1) throw scorediff::Error("sigma must be a number or a 1-D sequence of numbers");
  return {a.data(), a.data() + a.size()};
}

// Model::score or Model::denoise as a method taking NumPy x and sigma, the GIL released for the computation.
auto at_sigma(scorediff::Array (scorediff::Model::*method)(const scorediff::Array&, const std::vector<double>&) const) {
  return [method](const scorediff::Model& model, const py::handle& x, const py::handle& sigma) {
    const scorediff::Array in = from_numpy(x);
    const std::vector<double> s = sigmas(sigma);
    scorediff::Array out;
    {
      py::gil_scoped_release release;
      out = (model.*method)(in, s);
    }
    return to_numpy(std::move(out));
  };
}

py::dict to_dict(const std::map<std::string, double>& values) {
  py::dict out;
  for (const auto& [key, value] : values) out[py::str(key)] = value;
  return out;
}

}  // namespace

PYBIND11_MODULE(scorediff, m) {
  m.doc() = "scorediff: score-based generative models on LibTorch (docs/library.md)";
  py::register_exception<scorediff::Error>(m, "Error", PyExc_RuntimeError);
  m.attr("__version__") = scorediff::version();

  py::class_<scorediff::Model>(m, "Model", "A trained model loaded from a checkpoint (scorediff.load)")
      .def(
          "sample",
          [](const scorediff::Model& model, int64_t n, const std::string& sampler, int64_t nfe, int64_t seed,
             const std::string& classes, double cfg, const std::vector<std::string>& sets, bool quiet) {
            scorediff::SampleRequest request{n, sampler, nfe, seed, classes, cfg, sets, quiet};
            scorediff::Array out;
            {
              py::gil_scoped_release release;
              out = model.sample(request);
            }
            return to_numpy(std::move(out));
          },
          py::arg("n") = 0, py::arg("sampler") = "", py::arg("nfe") = 0, py::arg("seed") = -1,
          py::arg("classes") = "", py::arg("cfg") = -1.0, py::arg("sets") = std::vector<std::string>{},
          py::arg("quiet") = true,
          "Samples in data units, [n, D] or [n, C, H, W]; 0, '' and -1 keep the checkpoint's setting. The same seed "
          "gives `scorediff sample --seed`'s samples bit for bit.")
      .def("score", at_sigma(&scorediff::Model::score), py::arg("x"), py::arg("sigma"),
           "The score at noise level sigma (one value, or one per row), model units")
      .def("denoise", at_sigma(&scorediff::Model::denoise), py::arg("x"), py::arg("sigma"),
           "Tweedie's denoiser E[x0 | x] at noise level sigma, model units")
      .def(
          "log_likelihood",
          [](const scorediff::Model& model, const py::handle& x, const std::string& divergence, int64_t seed) {
            const scorediff::Array in = from_numpy(x);
            std::vector<double> out;
            {
              py::gil_scoped_release release;
              out = model.log_likelihood(in, scorediff::LikelihoodRequest{divergence, seed});
            }
            return py::array_t<double>(static_cast<py::ssize_t>(out.size()), out.data());
          },
          py::arg("x"), py::arg("divergence") = "exact", py::arg("seed") = -1,
          "log p(x) per row in nats by the probability-flow ODE")
      .def(
          "weights",
          [](const scorediff::Model& model) {
            py::dict out;
            for (auto& [name, array] : model.weights()) out[py::str(name)] = to_numpy(std::move(array));
            return out;
          },
          "The network's tensors by their checkpoint names, as NumPy arrays")
      .def_property_readonly("labels", &scorediff::Model::last_labels, "Labels of the last class-conditional sample")
      .def_property_readonly("step", &scorediff::Model::step)
      .def_property_readonly("sample_shape", &scorediff::Model::sample_shape)
      .def_property_readonly("config", &scorediff::Model::config_toml, "The run's configuration (TOML)");

  m.def(
      "load",
      [](const std::string& path, bool ema, int threads) {
        py::gil_scoped_release release;
        return scorediff::Model::load(path, scorediff::LoadOptions{ema, threads});
      },
      py::arg("path"), py::arg("ema") = true, py::arg("threads") = 0,
      "Load a checkpoint (.safetensors of `scorediff train`); EMA weights unless ema=False");

  m.def(
      "train",
      [](const std::string& config, const std::vector<std::string>& overrides, const std::string& out, bool resume,
         bool quiet, const py::object& progress) {
        scorediff::TrainRequest request;
        request.sets = overrides;
        request.out = out;
        request.resume = resume;
        request.quiet = quiet;
        // Called from the training loop without the GIL: it takes it, lets Ctrl-C through (KeyboardInterrupt) and
        // calls `progress`. A Python exception stops the run after that step, its checkpoint written, and is
        // raised from train().
        request.progress = [&progress](const scorediff::TrainProgress& p) {
          py::gil_scoped_acquire acquire;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          if (progress.is_none()) return true;
          py::dict info;
          info["step"] = p.step;
          info["steps"] = p.steps;
          info["loss"] = p.loss;
          info["seconds"] = p.seconds;
          const py::object keep = progress(info);
          if (keep.is_none()) return true;
          const int truth = PyObject_IsTrue(keep.ptr());
          if (truth < 0) throw py::error_already_set();
          return truth == 1;
        };
        scorediff::TrainResult r;
        {
          py::gil_scoped_release release;
          r = scorediff::train(config, request);
        }
        py::dict result;
        result["run_dir"] = r.run_dir;
        result["checkpoint"] = r.checkpoint;
        result["steps"] = r.steps;
        result["final_loss"] = r.final_loss;
        result["seconds"] = r.seconds;
        result["cancelled"] = r.cancelled;
        return result;
      },
      py::arg("config"), py::arg("overrides") = std::vector<std::string>{}, py::arg("out") = "",
      py::arg("resume") = false, py::arg("quiet") = true, py::arg("progress") = py::none(),
      "Train from a preset or TOML file; progress(info) after every step, returning False cancels");

  m.def(
      "eval",
      [](const py::handle& samples, const std::string& data, int64_t seed) {
        const scorediff::Array in = from_numpy(samples);
        std::map<std::string, double> out;
        {
          py::gil_scoped_release release;
          out = scorediff::evaluate(in, data, seed);
        }
        return to_dict(out);
      },
      py::arg("samples"), py::arg("data"), py::arg("seed") = 0,
      "Sample quality against a dataset: the numeric entries of `scorediff eval --samples --data`");
}
