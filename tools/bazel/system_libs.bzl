"""Maps Debian's system libraries to the Bazel labels upstream projects use.

Each repository below is generated from pkg-config at fetch time, so BUILD files
can say `@com_google_absl//absl/status` or `@com_google_googletest//:gtest_main`
exactly as they would against the upstream archives. A project with internet
access can replace a `system_library_repository` call in WORKSPACE with the
upstream `http_archive` and no BUILD file of ours changes (docs/building.md).

Headers come from /usr/include (a system include directory the toolchain
already allows), so the generated cc_library targets carry link flags only.
"""

def _link_flags(ctx, modules):
    pkg_config = ctx.which("pkg-config")
    if pkg_config == None:
        fail("pkg-config is not installed. Run `tools/setup.sh` (it installs " +
             "pkg-config and the -dev packages) and build again.")
    result = ctx.execute([pkg_config, "--libs"] + modules)
    if result.return_code != 0:
        fail(("pkg-config does not know %s: %s\nRun `tools/setup.sh` to install " +
              "the Debian -dev packages this build uses.") %
             (" ".join(modules), result.stderr.strip()))
    return [flag for flag in result.stdout.strip().split(" ") if flag]

def _library(name, linkopts, defines = [], deps = []):
    return """
cc_library(
    name = "{name}",
    linkopts = {linkopts},
    defines = {defines},
    deps = {deps},
    visibility = ["//visibility:public"],
)
""".format(name = name, linkopts = repr(linkopts), defines = repr(defines), deps = repr(deps))

def _system_library_repository_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

    # packages: {"absl/status": {"status": ["absl_status"], ...}}
    packages = {}
    for label, modules in ctx.attr.targets.items():
        package, _, name = label.rpartition(":")
        packages.setdefault(package, {})[name] = modules.split(" ") if modules else []

    for package, targets in packages.items():
        content = "# Generated from pkg-config by //tools/bazel:system_libs.bzl.\n"
        for name, modules in targets.items():
            flags = _link_flags(ctx, modules) if modules else []
            extra = ctx.attr.linkopts.get(package + ":" + name)
            if extra:
                flags = extra.split(" ") + flags
            content += _library(
                name,
                flags,
                defines = ctx.attr.defines.get(package + ":" + name, "").split(" ") if ctx.attr.defines.get(package + ":" + name) else [],
                deps = ctx.attr.deps.get(package + ":" + name, "").split(" ") if ctx.attr.deps.get(package + ":" + name) else [],
            )
        ctx.file((package + "/BUILD.bazel") if package else "BUILD.bazel", content)

system_library_repository = repository_rule(
    implementation = _system_library_repository_impl,
    attrs = {
        # "package:name" -> space-separated pkg-config modules ("" for header-only).
        "targets": attr.string_dict(mandatory = True),
        # "package:name" -> space-separated preprocessor defines.
        "defines": attr.string_dict(),
        # "package:name" -> space-separated labels within the repository.
        "deps": attr.string_dict(),
        # "package:name" -> space-separated link flags placed before pkg-config's.
        "linkopts": attr.string_dict(),
    },
    local = True,
    doc = "A repository of cc_library targets backed by system libraries via pkg-config.",
)

# Upstream Abseil label -> pkg-config module(s).
_ABSL_TARGETS = {
    "absl/algorithm:algorithm": "absl_algorithm",
    "absl/algorithm:container": "absl_algorithm_container",
    "absl/base:base": "absl_base",
    "absl/base:core_headers": "absl_core_headers",
    "absl/base:config": "absl_config",
    "absl/cleanup:cleanup": "absl_cleanup",
    "absl/container:btree": "absl_btree",
    "absl/container:fixed_array": "absl_fixed_array",
    "absl/container:flat_hash_map": "absl_flat_hash_map",
    "absl/container:flat_hash_set": "absl_flat_hash_set",
    "absl/container:inlined_vector": "absl_inlined_vector",
    "absl/container:node_hash_map": "absl_node_hash_map",
    "absl/container:node_hash_set": "absl_node_hash_set",
    "absl/debugging:failure_signal_handler": "absl_failure_signal_handler",
    "absl/debugging:stacktrace": "absl_stacktrace",
    "absl/debugging:symbolize": "absl_symbolize",
    "absl/flags:flag": "absl_flags",
    "absl/flags:parse": "absl_flags_parse",
    "absl/flags:usage": "absl_flags_usage",
    "absl/functional:any_invocable": "absl_any_invocable",
    "absl/functional:bind_front": "absl_bind_front",
    "absl/functional:function_ref": "absl_function_ref",
    "absl/hash:hash": "absl_hash",
    "absl/memory:memory": "absl_memory",
    "absl/meta:type_traits": "absl_type_traits",
    "absl/numeric:bits": "absl_bits",
    "absl/numeric:int128": "absl_int128",
    "absl/random:random": "absl_random_random",
    "absl/status:status": "absl_status",
    "absl/status:statusor": "absl_statusor",
    "absl/strings:cord": "absl_cord",
    "absl/strings:str_format": "absl_str_format",
    "absl/strings:strings": "absl_strings",
    "absl/synchronization:synchronization": "absl_synchronization",
    "absl/time:time": "absl_time",
    "absl/types:optional": "absl_optional",
    "absl/types:span": "absl_span",
    "absl/types:variant": "absl_variant",
    "absl/utility:utility": "absl_utility",
}

def simsched_system_dependencies():
    """Declares every third-party repository simsched uses, backed by Debian."""
    system_library_repository(
        name = "com_google_absl",
        targets = _ABSL_TARGETS,
    )
    system_library_repository(
        name = "com_google_googletest",
        targets = {
            ":gtest": "gtest",
            ":gtest_main": "gtest_main",
            ":gmock": "gmock",
            ":gmock_main": "gmock_main",
        },
    )
    system_library_repository(
        name = "com_github_fmtlib_fmt",
        targets = {":fmt": "fmt"},
    )
    system_library_repository(
        name = "com_github_gabime_spdlog",
        targets = {":spdlog": "spdlog"},
        # Debian builds spdlog as a compiled library against the external fmt.
        defines = {":spdlog": "SPDLOG_FMT_EXTERNAL SPDLOG_COMPILED_LIB"},
    )
    system_library_repository(
        name = "com_github_google_benchmark",
        targets = {
            ":benchmark": "benchmark",
            ":benchmark_main": "benchmark",
        },
        linkopts = {":benchmark_main": "-lbenchmark_main"},
    )
