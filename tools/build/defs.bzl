"""simsched's C++ rules: cc_library, cc_binary and cc_test with the default
optimization level of each compilation mode.

Every BUILD.bazel with C++ targets loads these in place of the native rules,
under the same names, so the targets read as usual:

    load("//tools/build:defs.bzl", "cc_binary", "cc_library", "cc_test")

    cc_library(
        name = "clock",
        srcs = ["clock.cc"],
        hdrs = ["clock.h"],
    )

Why: the test suite builds in the default mode (fastbuild, which adds no -O
flag) and wants -O1, for speed and readable sanitizer stacks. A `--copt=-O1`
in .bazelrc cannot do that, because rc flags cannot depend on the compilation
mode and every --copt lands after the toolchain's own flags: it silently
turned `bazel build -c opt` (-O2) into -O1. A rule's copts can select on the
mode instead:

    fastbuild (default)  -O1
    opt (-c opt)         nothing: the toolchain's -O2 stands
    dbg (-c dbg)         nothing: the toolchain's -O0 -g stands

Rule copts come after --copt, so `--copt=-O0` does not lower a fastbuild;
use `-c dbg`, or `--per_file_copt=//.*@-O0` (per-file copts come last).
//tools/build:optimization_test checks the result on real compiles.
"""

# The -O flag a mode adds to the toolchain's (see the table above).
OPTIMIZATION_COPTS = select({
    str(Label("//tools/build:opt")): [],
    str(Label("//tools/build:dbg")): [],
    "//conditions:default": ["-O1"],
})

def cc_library(copts = [], **kwargs):
    native.cc_library(copts = OPTIMIZATION_COPTS + copts, **kwargs)

def cc_binary(copts = [], **kwargs):
    native.cc_binary(copts = OPTIMIZATION_COPTS + copts, **kwargs)

def cc_test(copts = [], **kwargs):
    native.cc_test(copts = OPTIMIZATION_COPTS + copts, **kwargs)
