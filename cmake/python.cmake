# The Python module `scorediff` (src/python, pybind11) over libscorediff, built when Debian's pybind11-dev is
# present: build/python/scorediff.cpython-*.so, imported with PYTHONPATH=build/python (docs/library.md).
if(SCOREDIFF_SHARED)
  # Debian's interpreter, which has NumPy, even where another python3 comes first on PATH.
  if(NOT DEFINED PYTHON_EXECUTABLE AND EXISTS /usr/bin/python3)
    set(PYTHON_EXECUTABLE /usr/bin/python3)
  endif()
  find_package(pybind11 CONFIG QUIET)
endif()
if(pybind11_FOUND)
  message(STATUS "scorediff: the Python module with pybind11 ${pybind11_VERSION}")
  pybind11_add_module(scorediff_python ${CMAKE_SOURCE_DIR}/src/python/module.cpp)
  set_target_properties(scorediff_python PROPERTIES OUTPUT_NAME scorediff
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/python)
  target_link_libraries(scorediff_python PRIVATE scorediff::scorediff)
  target_compile_options(scorediff_python PRIVATE -Wall -Wextra -Wno-unused-parameter)
  set(SCOREDIFF_HAVE_PYTHON 1)
elseif(NOT SCOREDIFF_SHARED)
  message(STATUS "scorediff: the Python module needs SCOREDIFF_SHARED=ON: not built")
  set(SCOREDIFF_HAVE_PYTHON 0)
else()
  message(STATUS "scorediff: no pybind11 (install pybind11-dev): the Python module is not built")
  set(SCOREDIFF_HAVE_PYTHON 0)
endif()
