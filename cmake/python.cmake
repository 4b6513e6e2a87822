# The Python module `scorediff` (src/python, pybind11) over libscorediff, built when Debian's pybind11-dev is
# present: build/python/scorediff.cpython-*.so, imported with PYTHONPATH=build/python (docs/library.md).
if(SCOREDIFF_SHARED)
  # Debian's interpreter, which has NumPy, even where another python3 comes first on PATH (both the variable
  # pybind11 2.x reads and the one of CMake's FindPython, which pybind11 3 uses).
  if(NOT DEFINED PYTHON_EXECUTABLE AND EXISTS /usr/bin/python3)
    set(PYTHON_EXECUTABLE /usr/bin/python3)
    set(Python_EXECUTABLE /usr/bin/python3)
    set(Python3_EXECUTABLE /usr/bin/python3)
  endif()
  # The headers first: pybind11's own search fails the configuration when they are missing.
  find_package(Python3 COMPONENTS Interpreter Development QUIET)
  if(Python3_Development_FOUND)
    find_package(pybind11 CONFIG QUIET)
  endif()
endif()
if(pybind11_FOUND)
  message(STATUS "scorediff: the Python module with pybind11 ${pybind11_VERSION}")
  pybind11_add_module(scorediff_python ${CMAKE_SOURCE_DIR}/src/python/module.cpp)
  set_target_properties(scorediff_python PROPERTIES OUTPUT_NAME scorediff
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/python)
  target_link_libraries(scorediff_python PRIVATE scorediff::scorediff)
  target_compile_options(scorediff_python PRIVATE -Wall -Wextra -Wno-unused-parameter)
  set(SCOREDIFF_HAVE_PYTHON 1)
  execute_process(COMMAND ${PYTHON_EXECUTABLE} -c "import pytest, numpy" RESULT_VARIABLE SCOREDIFF_NO_PYTEST
                  OUTPUT_QUIET ERROR_QUIET)
  if(SCOREDIFF_NO_PYTEST)
    message(WARNING "scorediff: no pytest or NumPy for ${PYTHON_EXECUTABLE} (python3-pytest): module tests skipped")
    set(SCOREDIFF_HAVE_PYTHON 0)
  endif()
elseif(NOT SCOREDIFF_SHARED)
  message(STATUS "scorediff: the Python module needs SCOREDIFF_SHARED=ON: not built")
  set(SCOREDIFF_HAVE_PYTHON 0)
else()
  message(STATUS "scorediff: no pybind11 or Python headers (pybind11-dev, python3-dev): no Python module")
  set(SCOREDIFF_HAVE_PYTHON 0)
endif()
