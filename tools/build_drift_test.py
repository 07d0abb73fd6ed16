"""Checks that the Bazel and the CMake build compile the same sources.

Every cc_library, cc_test, cc_binary and sim_test in a BUILD.bazel must have a
twin of the same name in the CMakeLists.txt beside it (simsched_cc_library,
simsched_cc_test, simsched_cc_binary, simsched_add_sim_test; see
cmake/SimschedBuild.cmake) listing the same .cc and .h files, and the other way
round; every such directory must be added by the top-level CMakeLists.txt;
and every in-repository dependency of a Bazel target must be linked by its
CMake twin, directly or through the DEPS of what it links.
Each difference is printed as one line naming the package, the target, the
file and the build that lacks it.

Usage:
  python3 tools/build_drift_test.py             # the test (as //tools:build_drift_test)
  python3 tools/build_drift_test.py --check DIR # print the drift of a source tree, exit 1 if any

The BUILD files are read by executing them as Python (Starlark is a Python
subset) with stand-ins for the rules; the CMakeLists.txt files by a small
tokenizer of CMake's command syntax.
"""

import os
import re
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

# Bazel rule -> the CMake helper that mirrors it.
TWINS = {
    "cc_library": "simsched_cc_library",
    "cc_test": "simsched_cc_test",
    "cc_binary": "simsched_cc_binary",
    "sim_test": "simsched_add_sim_test",
}
CMAKE_HELPERS = {cmake: bazel for bazel, cmake in TWINS.items()}
# Keywords of the helpers whose values are source files.
CMAKE_FILE_KEYWORDS = {"SRCS", "HDRS", "SOURCES"}
# Every keyword the helpers take (ends a file list).
CMAKE_KEYWORDS = CMAKE_FILE_KEYWORDS | {
    "DEPS", "LIBRARIES", "DATA_TARGETS", "SHARDS", "SEEDS", "ENVIRONMENT", "MANUAL",
    "NO_INSTALL",
}
# Keywords of the helpers whose values are libraries to link.
CMAKE_DEP_KEYWORDS = {"DEPS", "LIBRARIES"}
# Directories that are CMake-only by design: the consumer project builds
# against an installed simsched and has no Bazel twin.
CMAKE_ONLY_DIRS = ("examples",)
SKIPPED_DIRS = {".git", "build", "build-ci", "node_modules"}
SOURCE_SUFFIXES = (".cc", ".h")


class Target:
    def __init__(self, kind, name, files, where, deps=()):
        self.kind = kind
        self.name = name
        self.files = set(files)
        self.where = where
        # In-repository dependencies by target name (Bazel's :x, //pkg:x and
        # //pkg; CMake's simsched::x): a CMake target is simsched::<name>.
        self.deps = set(deps)


def _bazel_dep_name(label):
    """The target name of an in-repository Bazel label, None for another repository's."""
    if label.startswith("@"):
        return None
    if label.startswith(":"):
        return label[1:]
    if label.startswith("//"):
        package, _, name = label[2:].partition(":")
        return name or package.rsplit("/", 1)[-1]
    return None


def _package_dirs(root):
    """Yields (package, dir) for every directory of the tree, skipping build
    output, other Bazel repositories and CMake build trees."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        package = "" if rel == "." else rel.replace(os.sep, "/")
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d in SKIPPED_DIRS or d.startswith(("bazel-", ".", "_deps")) or os.path.islink(full):
                continue
            if os.path.exists(os.path.join(full, "WORKSPACE")):
                continue  # a separate Bazel repository (tools/bazel/rules_cc, ...)
            if os.path.exists(os.path.join(full, "CMakeCache.txt")):
                continue  # a CMake build tree inside the source tree
            keep.append(d)
        dirnames[:] = keep
        yield package, dirpath, set(filenames)


def parse_bazel(path, package):
    """Returns {name: Target} for the C++ rules of one BUILD.bazel."""
    text = Path(path).read_text()
    targets = {}
    package_dir = Path(path).parent

    def rule(kind):
        def record(name, srcs=(), hdrs=(), deps=(), **_):
            files = [f for f in list(srcs) + list(hdrs)
                     if not f.startswith((":", "//", "@")) and f.endswith(SOURCE_SUFFIXES)]
            dep_names = [d for d in map(_bazel_dep_name, deps) if d]
            targets[name] = Target(kind, name, files, f"{package}/BUILD.bazel", dep_names)
        return record

    def glob(include, exclude=(), **_):
        found = set()
        for pattern in include:
            found |= {str(p.relative_to(package_dir)) for p in package_dir.glob(pattern)}
        for pattern in exclude:
            found -= {str(p.relative_to(package_dir)) for p in package_dir.glob(pattern)}
        return sorted(found)

    def ignore(*_, **__):
        return None

    scope = {name: ignore for name in set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", text))}
    scope.update({kind: rule(kind) for kind in TWINS})
    scope.update({"glob": glob, "True": True, "False": False, "None": None,
                  "len": len, "select": lambda d, **_: next(iter(d.values()))})
    exec(compile(text, str(path), "exec"), scope)  # noqa: S102 (our own BUILD files)
    return targets


def _cmake_commands(text):
    """Yields (command, [arguments]) of a CMakeLists.txt, comments dropped."""
    token = re.compile(r'#\[\[.*?\]\]|#[^\n]*|"(?:[^"\\]|\\.)*"|[()]|[^\s()#"]+', re.S)
    command, args, depth = None, [], 0
    previous = None
    for m in token.finditer(text):
        t = m.group(0)
        if t.startswith("#"):
            continue
        if command is None:
            if t == "(" and previous is not None:
                command, args, depth = previous.lower(), [], 1
            previous = t
            continue
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
            if depth == 0:
                yield command, args
                command, previous = None, None
                continue
        args.append(t.strip('"'))


def parse_cmake(path, package):
    """Returns ({name: Target}, [subdirectories added]) for one CMakeLists.txt."""
    targets, subdirs = {}, []
    for command, args in _cmake_commands(Path(path).read_text()):
        if command == "add_subdirectory" and args:
            subdirs.append(args[0])
        if command not in CMAKE_HELPERS or not args:
            continue
        name, files, deps, keyword = args[0], [], [], None
        for arg in args[1:]:
            if arg in CMAKE_KEYWORDS:
                keyword = arg
            elif keyword in CMAKE_FILE_KEYWORDS:
                files.append(arg)
            elif keyword in CMAKE_DEP_KEYWORDS and arg.startswith("simsched::"):
                deps.append(arg[len("simsched::"):])
        targets[name] = Target(CMAKE_HELPERS[command], name, files, f"{package}/CMakeLists.txt",
                               deps)
    return targets, subdirs


def find_drift(root):
    """Returns one line per difference between the two builds of `root`."""
    problems = []
    top_subdirs = []
    packages = []
    twins = []  # (label, Bazel target, CMake target)
    cmake_targets = {}
    for package, dirpath, filenames in _package_dirs(root):
        bazel, cmake = {}, {}
        if "BUILD.bazel" in filenames:
            bazel = parse_bazel(os.path.join(dirpath, "BUILD.bazel"), package)
        cmake_only = any(package == d or package.startswith(d + "/") for d in CMAKE_ONLY_DIRS)
        if "CMakeLists.txt" in filenames and not cmake_only:
            cmake, subdirs = parse_cmake(os.path.join(dirpath, "CMakeLists.txt"), package)
            cmake_targets.update(cmake)
            if package == "":
                top_subdirs = subdirs
        label = f"//{package}"
        if bazel and "CMakeLists.txt" not in filenames:
            problems.append(f"{label}: has C++ targets in BUILD.bazel but no CMakeLists.txt; "
                            f"create {package}/CMakeLists.txt mirroring them")
            continue
        if bazel or cmake:
            packages.append(package)
        for name in sorted(set(bazel) | set(cmake)):
            b, c = bazel.get(name), cmake.get(name)
            if c is None:
                problems.append(f"{label}:{name}: {b.kind} in {b.where} is missing from "
                                f"{package}/CMakeLists.txt (add {TWINS[b.kind]}({name} ...))")
                continue
            if b is None:
                problems.append(f"{label}:{name}: {TWINS[c.kind]}({name}) in {c.where} has no "
                                f"{c.kind} in {package}/BUILD.bazel (add it, or remove the CMake one)")
                continue
            if b.kind != c.kind:
                problems.append(f"{label}:{name}: a {b.kind} in {b.where} but a "
                                f"{[k for k, v in CMAKE_HELPERS.items() if v == c.kind][0]} in "
                                f"{c.where} (expected {TWINS[b.kind]})")
            twins.append((f"{label}:{name}", b, c))
            for f in sorted(b.files - c.files):
                problems.append(f"{label}:{name}: {f} is in {b.where} but not in {c.where}")
            for f in sorted(c.files - b.files):
                problems.append(f"{label}:{name}: {f} is in {c.where} but not in {b.where}")
    problems += _missing_links(twins, cmake_targets)
    for package in packages:
        if package and package not in top_subdirs:
            problems.append(f"//{package}: CMakeLists.txt is not added by the top-level "
                            f"CMakeLists.txt (add add_subdirectory({package}))")
    return problems


def _missing_links(twins, cmake_targets):
    """A Bazel dependency in the repository that the CMake twin does not link,
    directly or through its DEPS: the CMake build then fails to link (or to
    find a header) where Bazel passes."""
    def closure(name, seen):
        target = cmake_targets.get(name)
        for dep in (target.deps if target else ()):
            if dep not in seen:
                seen.add(dep)
                closure(dep, seen)
        return seen

    problems = []
    for label, b, c in twins:
        linked = closure(c.name, set())
        for dep in sorted(b.deps - linked):
            if dep in cmake_targets:  # Bazel-only targets (py tests, data) have no twin to link
                problems.append(f"{label}: depends on {dep} in {b.where}, but {c.where}'s "
                                f"{c.name} does not link simsched::{dep} (add it to its DEPS)")
    return problems


def _source_root():
    # Bazel runs this file through a symlink into the source tree; the checks
    # read the real BUILD.bazel and CMakeLists.txt files there.
    return Path(os.path.realpath(__file__)).parent.parent


class BuildDriftTest(unittest.TestCase):
    def test_bazel_and_cmake_build_the_same_sources(self):
        problems = find_drift(_source_root())
        if problems:
            self.fail("the Bazel and CMake builds differ:\n  " + "\n  ".join(problems) +
                      "\nMirror the change in the other build file (docs/building.md, CMake).")

    def _small_tree(self):
        """A consistent two-package tree in the repository's style."""
        dest = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.addCleanup(shutil.rmtree, dest)
        files = {
            "CMakeLists.txt": "add_subdirectory(scheduler)\nadd_subdirectory(sim)\n",
            "scheduler/BUILD.bazel": (
                'cc_library(\n    name = "scheduler",\n'
                '    srcs = ["scheduler.cc", "task_metadata.cc"],\n'
                '    hdrs = ["scheduler.h"],\n)\n'
                '[cc_test(name = name, srcs = [name + ".cc"]) for name in ["task_test"]]\n'),
            "scheduler/CMakeLists.txt": (
                "# simsched_cc_library(commented_out SRCS x.cc)\n"
                "simsched_cc_library(scheduler\n  SRCS scheduler.cc task_metadata.cc\n"
                "  HDRS scheduler.h\n  DEPS absl::status)\n"
                "simsched_cc_test(task_test SRCS task_test.cc DEPS GTest::gtest_main)\n"),
            "sim/BUILD.bazel": (
                'load("//testing:sim_test.bzl", "sim_test")\n'
                'package(default_visibility = ["//visibility:public"])\n'
                'cc_library(\n    name = "sync",\n    srcs = [\n        "mutex.cc",\n'
                '        "semaphore.cc",\n    ],\n    hdrs = ["mutex.h", "semaphore.h"],\n'
                '    deps = ["//scheduler"],\n)\n'
                'sim_test(name = "sync_sim_test", srcs = ["sync_sim_test.cc"], shard_count = 2)\n'),
            "sim/CMakeLists.txt": (
                "simsched_cc_library(sync\n  SRCS mutex.cc semaphore.cc\n"
                "  HDRS mutex.h semaphore.h\n  DEPS simsched::scheduler)\n"
                "simsched_add_sim_test(sync_sim_test SOURCES sync_sim_test.cc SHARDS 2)\n"),
        }
        for name, text in files.items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_text(text)
        self.assertEqual(find_drift(dest), [])
        return dest

    @staticmethod
    def _edit(path, old, new):
        text = path.read_text()
        assert old in text, (old, path)
        path.write_text(text.replace(old, new, 1))

    def test_a_source_left_out_of_cmake_is_named(self):
        tree = self._small_tree()
        self._edit(tree / "scheduler" / "CMakeLists.txt", " task_metadata.cc", "")
        self.assertEqual(find_drift(tree), [
            "//scheduler:scheduler: task_metadata.cc is in scheduler/BUILD.bazel but not in "
            "scheduler/CMakeLists.txt"])

    def test_a_source_left_out_of_bazel_is_named(self):
        tree = self._small_tree()
        self._edit(tree / "sim" / "BUILD.bazel", '"semaphore.cc",', "")
        self.assertEqual(find_drift(tree), [
            "//sim:sync: semaphore.cc is in sim/CMakeLists.txt but not in sim/BUILD.bazel"])

    def test_a_header_left_out_is_named(self):
        tree = self._small_tree()
        self._edit(tree / "scheduler" / "CMakeLists.txt", "HDRS scheduler.h", "")
        self.assertEqual(find_drift(tree), [
            "//scheduler:scheduler: scheduler.h is in scheduler/BUILD.bazel but not in "
            "scheduler/CMakeLists.txt"])

    def test_a_new_bazel_target_without_a_cmake_twin_is_named(self):
        tree = self._small_tree()
        build = tree / "sim" / "BUILD.bazel"
        build.write_text(build.read_text() + 'cc_test(name = "clock_test", srcs = ["clock_test.cc"])\n')
        self.assertEqual(find_drift(tree), [
            "//sim:clock_test: cc_test in sim/BUILD.bazel is missing from sim/CMakeLists.txt "
            "(add simsched_cc_test(clock_test ...))"])

    def test_a_cmake_target_without_a_bazel_twin_is_named(self):
        tree = self._small_tree()
        self._edit(tree / "scheduler" / "BUILD.bazel", '"task_test"', "")
        self.assertEqual(find_drift(tree), [
            "//scheduler:task_test: simsched_cc_test(task_test) in scheduler/CMakeLists.txt has no "
            "cc_test in scheduler/BUILD.bazel (add it, or remove the CMake one)"])

    def test_a_sim_test_registered_as_a_plain_test_is_named(self):
        tree = self._small_tree()
        self._edit(tree / "sim" / "CMakeLists.txt", "simsched_add_sim_test(sync_sim_test SOURCES",
                   "simsched_cc_test(sync_sim_test SRCS")
        self.assertEqual(find_drift(tree), [
            "//sim:sync_sim_test: a sim_test in sim/BUILD.bazel but a simsched_cc_test in "
            "sim/CMakeLists.txt (expected simsched_add_sim_test)"])

    def test_a_new_package_without_cmake_is_named(self):
        tree = self._small_tree()
        (tree / "net").mkdir()
        (tree / "net" / "BUILD.bazel").write_text(
            'cc_library(name = "net", srcs = ["net.cc"], hdrs = ["net.h"])\n')
        self.assertEqual(find_drift(tree), [
            "//net: has C++ targets in BUILD.bazel but no CMakeLists.txt; "
            "create net/CMakeLists.txt mirroring them"])

    def test_a_package_the_top_level_does_not_add_is_named(self):
        tree = self._small_tree()
        self._edit(tree / "CMakeLists.txt", "add_subdirectory(sim)", "")
        self.assertEqual(find_drift(tree), [
            "//sim: CMakeLists.txt is not added by the top-level CMakeLists.txt "
            "(add add_subdirectory(sim))"])

    def test_a_dependency_the_cmake_twin_does_not_link_is_named(self):
        tree = self._small_tree()
        self._edit(tree / "sim" / "CMakeLists.txt", "DEPS simsched::scheduler", "DEPS absl::status")
        self.assertEqual(find_drift(tree), [
            "//sim:sync: depends on scheduler in sim/BUILD.bazel, but sim/CMakeLists.txt's "
            "sync does not link simsched::scheduler (add it to its DEPS)"])

    def test_a_dependency_linked_through_another_target_is_enough(self):
        tree = self._small_tree()
        build = tree / "sim" / "BUILD.bazel"
        build.write_text(build.read_text() + 'cc_test(name = "sync_test", srcs = ["sync_test.cc"], '
                         'deps = [":sync", "//scheduler"])\n')
        cmake = tree / "sim" / "CMakeLists.txt"
        cmake.write_text(cmake.read_text() +
                         "simsched_cc_test(sync_test SRCS sync_test.cc DEPS simsched::sync)\n")
        self.assertEqual(find_drift(tree), [])

    def test_cmake_tokenizer_skips_comments_and_reads_multiline_calls(self):
        commands = list(_cmake_commands(
            '# simsched_cc_library(fake SRCS a.cc)\n'
            'simsched_cc_library(x  # trailing ( comment\n'
            '  SRCS "a.cc" b.cc\n  HDRS a.h\n  DEPS $<BUILD_INTERFACE:y>)\n'))
        self.assertEqual(commands, [("simsched_cc_library", [
            "x", "SRCS", "a.cc", "b.cc", "HDRS", "a.h", "DEPS", "$<BUILD_INTERFACE:y>"])])


def main(argv):
    if len(argv) >= 2 and argv[1] == "--check":
        root = argv[2] if len(argv) > 2 else _source_root()
        problems = find_drift(root)
        for p in problems:
            print(f"build drift: {p}")
        if not problems:
            print("build drift: none (Bazel and CMake list the same sources)")
        return 1 if problems else 0
    unittest.main(argv=argv[:1], verbosity=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
