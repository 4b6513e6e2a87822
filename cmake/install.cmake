# The installable library (docs/library.md): libscorediff with the public API of include/scorediff/scorediff.hpp
# (src/api) over the internal scorediff_lib, which it holds whole. `cmake --install build --prefix P` puts the
# library, the two public headers, a CMake package (find_package(scorediff) -> scorediff::scorediff) and a
# pkg-config file (scorediff.pc) under P.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

option(SCOREDIFF_SHARED "Build the installable libscorediff as a shared library (OFF: static, in-tree use only)" ON)
file(GLOB SCOREDIFF_API_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/api/*.cpp)
if(SCOREDIFF_SHARED)
  add_library(scorediff_api SHARED ${SCOREDIFF_API_SOURCES})
else()
  add_library(scorediff_api STATIC ${SCOREDIFF_API_SOURCES})
endif()
add_library(scorediff::scorediff ALIAS scorediff_api)
set_target_properties(scorediff_api PROPERTIES OUTPUT_NAME scorediff EXPORT_NAME scorediff
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR} POSITION_INDEPENDENT_CODE ON
  INSTALL_RPATH_USE_LINK_PATH ON)
target_link_libraries(scorediff_api PRIVATE scorediff_lib)
target_include_directories(scorediff_api PRIVATE ${CMAKE_SOURCE_DIR}/src
  INTERFACE $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_options(scorediff_api PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_compile_features(scorediff_api INTERFACE cxx_std_17)
target_precompile_headers(scorediff_api REUSE_FROM scorediff_lib)
# The API passes std::string and std::vector: a consumer must compile with LibTorch's choice of the libstdc++
# string ABI, which libscorediff was built with (Debian: 1; some LibTorch downloads: 0).
string(REGEX MATCH "_GLIBCXX_USE_CXX11_ABI=[01]" SCOREDIFF_ABI_DEFINITION "${TORCH_CXX_FLAGS}")
if(SCOREDIFF_ABI_DEFINITION)
  target_compile_definitions(scorediff_api INTERFACE ${SCOREDIFF_ABI_DEFINITION})
  set(SCOREDIFF_PC_CFLAGS "-D${SCOREDIFF_ABI_DEFINITION}")
endif()

if(SCOREDIFF_SHARED)
  install(TARGETS scorediff_api EXPORT scorediffTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(FILES ${CMAKE_SOURCE_DIR}/include/scorediff/scorediff.hpp ${CMAKE_SOURCE_DIR}/include/scorediff/error.hpp
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/scorediff)
  set(SCOREDIFF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/scorediff)
  install(EXPORT scorediffTargets NAMESPACE scorediff:: DESTINATION ${SCOREDIFF_CMAKE_DIR})
  configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/scorediffConfig.cmake.in
    ${CMAKE_BINARY_DIR}/scorediffConfig.cmake INSTALL_DESTINATION ${SCOREDIFF_CMAKE_DIR})
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/scorediffConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${CMAKE_BINARY_DIR}/scorediffConfig.cmake ${CMAKE_BINARY_DIR}/scorediffConfigVersion.cmake
          DESTINATION ${SCOREDIFF_CMAKE_DIR})
  # Relocatable: the prefix is found from the .pc file's own place, so any --prefix of cmake --install works.
  file(RELATIVE_PATH SCOREDIFF_PC_UP /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
  configure_file(${CMAKE_SOURCE_DIR}/cmake/scorediff.pc.in ${CMAKE_BINARY_DIR}/scorediff.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/scorediff.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
else()
  message(STATUS "scorediff: SCOREDIFF_SHARED=OFF: a static libscorediff for this tree; only the shared one installs")
endif()
