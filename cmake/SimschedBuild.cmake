# Internal helpers that mirror simsched's Bazel rules, one call per Bazel
# target, so each CMakeLists.txt reads like the BUILD.bazel beside it and
# tools/build_drift_test.py can compare the two. Not installed; users get
# simsched_add_sim_test() from SimschedTesting.cmake instead.
#
#   simsched_cc_library(<name> [SRCS ...] [HDRS ...] [DEPS ...] [NO_INSTALL])
#     //<pkg>:<name>  ->  target simsched_<name>, alias and export simsched::<name>
#   simsched_cc_test(<name> SRCS ... [DEPS ...] [DATA_TARGETS ...] [MANUAL])
#     cc_test         ->  executable <name> in <build>/<pkg>/, one CTest entry
#                         (none with MANUAL: Bazel's tags = ["manual"])
#   simsched_cc_binary(<name> SRCS ... [DEPS ...])
#     cc_binary       ->  executable <name> in <build>/<pkg>/
#
# Names and files are written out literally (no variables, no foreach): the
# drift test reads these calls as text.

include_guard(GLOBAL)

# The warnings and code generation flags of .bazelrc. Private to simsched's own
# targets: a consumer's warnings are its own business.
set(SIMSCHED_PRIVATE_COMPILE_OPTIONS
    -Wall -Wextra -Werror=return-type -fno-omit-frame-pointer
    # Bazel's default mode builds with -O1 (tools/build/defs.bzl); a CMake build
    # without a build type does too. Build types keep CMake's own -O flags.
    $<$<STREQUAL:$<CONFIG>,>:-O1>
    # Bazel compiles with paths relative to the workspace, so __FILE__ and
    # SourceLocation read "scheduler/task.h", not "/abs/path/scheduler/task.h";
    # reports and the tests that check them expect the same under CMake.
    "-fmacro-prefix-map=${simsched_SOURCE_DIR}/="
    # ccache's direct mode does not hash the prefix maps: this define keys the
    # cache on them, so objects compiled before them are not reused.
    -DSIMSCHED_WORKSPACE_RELATIVE_FILE=1)

# Where the in-tree tests and binaries go: <build>/<package>/<name>, the
# layout the harness integration test expects of Bazel's runfiles tree.
function(_simsched_package_output_dir out)
  file(RELATIVE_PATH package "${simsched_SOURCE_DIR}" "${CMAKE_CURRENT_SOURCE_DIR}")
  set(${out} "${simsched_BINARY_DIR}/${package}" PARENT_SCOPE)
endfunction()

# Environment Bazel gives every test and some of ours read: a scratch
# directory (TEST_TMPDIR) and a runfiles root where <package>/<name> resolves
# (TEST_SRCDIR/TEST_WORKSPACE: the build directory's parent and name).
function(_simsched_bazel_test_environment test_name out)
  set(tmp "${simsched_BINARY_DIR}/Testing/tmp/${test_name}")
  file(MAKE_DIRECTORY "${tmp}")
  get_filename_component(srcdir "${simsched_BINARY_DIR}" DIRECTORY)
  get_filename_component(workspace "${simsched_BINARY_DIR}" NAME)
  set(${out} "TEST_TMPDIR=${tmp}" "TEST_SRCDIR=${srcdir}" "TEST_WORKSPACE=${workspace}"
      PARENT_SCOPE)
endfunction()

# The same for a compile that ccache (CCACHE_BASEDIR, tools/cmake_check.sh)
# rewrites to paths relative to the build directory, e.g. "../../scheduler/".
function(_simsched_relative_prefix_map target scope)
  file(RELATIVE_PATH rel "${CMAKE_CURRENT_BINARY_DIR}" "${simsched_SOURCE_DIR}")
  string(REGEX REPLACE "/+$" "" rel "${rel}")
  if(rel)
    target_compile_options(${target} ${scope} "-fmacro-prefix-map=${rel}/=")
  endif()
endfunction()

function(simsched_cc_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_INSTALL" "" "SRCS;HDRS;DEPS")
  set(target simsched_${name})
  file(RELATIVE_PATH package "${simsched_SOURCE_DIR}" "${CMAKE_CURRENT_SOURCE_DIR}")
  if(arg_SRCS)
    add_library(${target} ${arg_SRCS} ${arg_HDRS})
    target_compile_options(${target} PRIVATE ${SIMSCHED_PRIVATE_COMPILE_OPTIONS})
    _simsched_relative_prefix_map(${target} PRIVATE)
    target_link_libraries(${target} PUBLIC ${arg_DEPS})
    target_include_directories(${target} PUBLIC
        $<BUILD_INTERFACE:${simsched_SOURCE_DIR}>
        $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/simsched>)
    target_compile_features(${target} PUBLIC cxx_std_20)
    set_target_properties(${target} PROPERTIES
        EXPORT_NAME ${name}
        OUTPUT_NAME simsched_${name}
        POSITION_INDEPENDENT_CODE ON)
  else()
    # Header-only (Bazel: a cc_library without srcs).
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE ${arg_DEPS})
    target_include_directories(${target} INTERFACE
        $<BUILD_INTERFACE:${simsched_SOURCE_DIR}>
        $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/simsched>)
    target_compile_features(${target} INTERFACE cxx_std_20)
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  endif()
  add_library(simsched::${name} ALIAS ${target})

  if(SIMSCHED_INSTALL AND NOT arg_NO_INSTALL)
    install(TARGETS ${target} EXPORT simschedTargets
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
            RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    # Headers keep their Bazel include paths under include/simsched/.
    foreach(header IN LISTS arg_HDRS)
      get_filename_component(subdir "${package}/${header}" DIRECTORY)
      install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/simsched/${subdir})
    endforeach()
  endif()
endfunction()

function(simsched_cc_binary name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SRCS;DEPS")
  add_executable(${name} ${arg_SRCS})
  target_compile_options(${name} PRIVATE ${SIMSCHED_PRIVATE_COMPILE_OPTIONS})
  _simsched_relative_prefix_map(${name} PRIVATE)
  target_link_libraries(${name} PRIVATE ${arg_DEPS})
  _simsched_package_output_dir(dir)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${dir}")
endfunction()

function(simsched_cc_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "MANUAL" "" "SRCS;DEPS;DATA_TARGETS")
  simsched_cc_binary(${name} SRCS ${arg_SRCS} DEPS ${arg_DEPS})
  # Bazel's data = [...] of other binaries: build them first.
  if(arg_DATA_TARGETS)
    add_dependencies(${name} ${arg_DATA_TARGETS})
  endif()
  if(arg_MANUAL)
    return()  # built, but not registered with CTest
  endif()
  add_test(NAME ${name} COMMAND ${name})
  _simsched_bazel_test_environment(${name} environment)
  # Bazel's timeout for a "medium" test: a hang fails in minutes, not in
  # CTest's default 25.
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${environment}" TIMEOUT 300)
endfunction()

# For simsched's own sim tests, after simsched_add_sim_test(<name> ...): the
# .bazelrc flags, the <build>/<pkg>/ layout, and the Bazel label compiled in
# as Bazel's sim_test macro does, so the harness prints the same replay
# commands under both builds (//testing:harness_integration_test checks them).
function(simsched_in_tree_sim_test name)
  file(RELATIVE_PATH package "${simsched_SOURCE_DIR}" "${CMAKE_CURRENT_SOURCE_DIR}")
  target_compile_options(${name} PRIVATE ${SIMSCHED_PRIVATE_COMPILE_OPTIONS})
  _simsched_relative_prefix_map(${name} PRIVATE)
  target_compile_definitions(${name} PRIVATE "SIMSCHED_TEST_TARGET=\"//${package}:${name}\"")
  _simsched_package_output_dir(dir)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${dir}")
endfunction()
