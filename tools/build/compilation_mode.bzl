"""in_compilation_mode: a copy of a binary built in a given compilation mode,
whatever mode the build itself uses. //tools/build:optimization_test builds
its probe in all three modes side by side this way.

    in_compilation_mode(
        name = "probe_opt",
        binary = ":optimization_probe",
        mode = "opt",
    )
"""

def _mode_transition_impl(settings, attr):
    return {"//command_line_option:compilation_mode": attr.mode}

_mode_transition = transition(
    implementation = _mode_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

def _in_compilation_mode_impl(ctx):
    # A copy under the target's own name: the runfiles paths of the same
    # binary built in several modes would otherwise collide.
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.run_shell(
        inputs = [ctx.file.binary],
        outputs = [out],
        command = 'cp "$1" "$2"',
        arguments = [ctx.file.binary.path, out.path],
        mnemonic = "CopyProbe",
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

in_compilation_mode = rule(
    implementation = _in_compilation_mode_impl,
    cfg = _mode_transition,
    attrs = {
        "binary": attr.label(allow_single_file = True, mandatory = True),
        "mode": attr.string(mandatory = True, values = ["fastbuild", "opt", "dbg"]),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
