# simsched_add_sim_test(): a CMake test target for simulation tests (SIM_TEST,
# SIM_TEST_F), the CMake twin of Bazel's sim_test macro (testing/sim_test.bzl).
#
# It builds an executable linked with simsched's harness and its main() (which
# shards seeds, not tests), registers it with CTest as one entry per seed shard
# (SIMSCHED_TOTAL_SHARDS / SIMSCHED_SHARD_INDEX, the variables the harness
# reads), and compiles in a regression seed file, `<name>.seeds` next to the
# CMakeLists.txt by default, whose seeds run first on shard 0.
#
#   find_package(simsched 0.1 REQUIRED)       # or FetchContent_MakeAvailable
#   enable_testing()
#   simsched_add_sim_test(bank_sim_test
#     SOURCES bank_sim_test.cc
#     LIBRARIES bank                           # what the test exercises
#     SHARDS 3)                                # ctest -j runs the shards in parallel
#
# Arguments:
#   <name>          the executable target and the CTest name (shards are
#                   <name>/shard_<i>_of_<n>)
#   SOURCES ...     test sources
#   LIBRARIES ...   libraries to link besides the harness
#   SHARDS n        CTest entries, each running its share of every test's
#                   seeds (default 3, as under Bazel)
#   SEEDS file      regression seed file (default: <name>.seeds if present)
#   ENVIRONMENT ... extra NAME=value pairs for every shard
#   MANUAL          build it, but do not register it with CTest (Bazel's
#                   tags = ["manual"]: e.g. a sweep meant to find a bug)

include_guard(GLOBAL)

function(simsched_add_sim_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "MANUAL" "SHARDS;SEEDS"
                        "SOURCES;LIBRARIES;ENVIRONMENT")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "simsched_add_sim_test(${name}): unknown arguments "
            "\"${arg_UNPARSED_ARGUMENTS}\"; expected SOURCES, LIBRARIES, SHARDS, "
            "SEEDS, ENVIRONMENT or MANUAL")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "simsched_add_sim_test(${name}): SOURCES is required, "
            "e.g. simsched_add_sim_test(${name} SOURCES ${name}.cc)")
  endif()
  foreach(source IN LISTS arg_SOURCES)
    if(source MATCHES "^[A-Z_]+$")
      message(FATAL_ERROR "simsched_add_sim_test(${name}): \"${source}\" in SOURCES looks "
              "like a misspelled keyword; expected SOURCES, LIBRARIES, SHARDS, SEEDS, "
              "ENVIRONMENT or MANUAL")
    endif()
  endforeach()
  if(NOT DEFINED arg_SHARDS)
    set(arg_SHARDS 3)
  endif()
  if(NOT arg_SHARDS MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "simsched_add_sim_test(${name}): SHARDS \"${arg_SHARDS}\" "
            "is not a positive whole number; use e.g. SHARDS 3")
  endif()

  # The regression seed file, by absolute path so the test finds it from any
  # working directory (Bazel finds it in the runfiles instead).
  if(DEFINED arg_SEEDS)
    get_filename_component(seeds "${arg_SEEDS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${seeds}")
      message(FATAL_ERROR "simsched_add_sim_test(${name}): SEEDS file \"${seeds}\" "
              "does not exist; create it (lines like \"Suite.Name 137\") or drop SEEDS")
    endif()
  elseif(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${name}.seeds")
    set(seeds "${CMAKE_CURRENT_SOURCE_DIR}/${name}.seeds")
  else()
    set(seeds "")
  endif()

  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE ${arg_LIBRARIES} simsched::sim_test simsched::sim_test_main)
  if(seeds)
    # Read when the test runs: editing the file needs no rebuild (adding one
    # needs a re-configure).
    target_compile_definitions(${name} PRIVATE "SIMSCHED_SEEDS_FILE=\"${seeds}\"")
  endif()
  if(arg_MANUAL)
    return()
  endif()

  set(tmp "${CMAKE_CURRENT_BINARY_DIR}/${name}.tmp")
  file(MAKE_DIRECTORY "${tmp}")
  math(EXPR last "${arg_SHARDS} - 1")
  foreach(index RANGE ${last})
    if(arg_SHARDS EQUAL 1)
      set(test_name ${name})
    else()
      set(test_name ${name}/shard_${index}_of_${arg_SHARDS})
    endif()
    add_test(NAME ${test_name} COMMAND ${name})
    set(environment "SIMSCHED_TOTAL_SHARDS=${arg_SHARDS}" "SIMSCHED_SHARD_INDEX=${index}"
        "TEST_TMPDIR=${tmp}" ${arg_ENVIRONMENT})
    set_tests_properties(${test_name} PROPERTIES ENVIRONMENT "${environment}"
                         LABELS simsched_sim_test)
  endforeach()
endfunction()
