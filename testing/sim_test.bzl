"""sim_test: a cc_test for simulation tests (SIM_TEST / SIM_TEST_F).

It links the simulation test main (which shards seeds, not tests), picks a
shard count and size suited to a seed sweep, compiles in the test's Bazel
label so failure reports print a replay command, and picks up the test's
regression seed file `<name>.seeds` if one sits next to the BUILD file.

Example:

    load("//testing:sim_test.bzl", "sim_test")

    sim_test(
        name = "bank_sim_test",
        srcs = ["bank_sim_test.cc"],
        deps = [":bank"],
    )
"""

load("//tools/build:defs.bzl", "cc_test")

def sim_test(
        name,
        srcs,
        deps = [],
        data = [],
        local_defines = [],
        shard_count = 3,
        size = "medium",
        **kwargs):
    """A simulation test target.

    Args:
      name: target name.
      srcs: test sources using SIM_TEST / SIM_TEST_F.
      deps: libraries under test.
      data: extra runtime files.
      local_defines: extra defines.
      shard_count: Bazel shards; each runs its share of every test's seeds.
      size: test size (medium: sweeps take seconds, not milliseconds).
      **kwargs: anything else cc_test takes (tags, env, timeout, ...).
    """
    seeds = native.glob([name + ".seeds"])
    package = native.package_name()
    # Bazel shell-tokenizes defines, so the quotes of the string literal are
    # escaped.
    defines = ['SIMSCHED_TEST_TARGET=\\"//%s:%s\\"' % (package, name)]
    if seeds:
        defines.append('SIMSCHED_SEEDS_FILE=\\"%s/%s.seeds\\"' % (package, name))
    cc_test(
        name = name,
        srcs = srcs,
        deps = deps + [
            "//testing:sim_test",
            "//testing:sim_test_main",
        ],
        data = data + seeds,
        local_defines = local_defines + defines,
        shard_count = shard_count,
        size = size,
        **kwargs
    )
