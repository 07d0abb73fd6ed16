"""Checks the optimization level of each compilation mode (tools/build/defs.bzl).

  -c opt       -O2 (the toolchain's; no -O1 after it)
  (default)    -O1 (fastbuild: the test suite)
  -c dbg       -O0

The probe binaries are compiled with -frecord-gcc-switches, so each carries the
flags it was really compiled with (ELF section .GCC.command.line, in command
line order; g++ and clang++ both write it); the last -O flag is the level.
A second check reads the source tree: every BUILD.bazel that declares C++
targets loads cc_library/cc_binary/cc_test from //tools/build:defs.bzl, and no
.bzl macro calls native.cc_* directly, so no target escapes the rule.

Usage:
  (as //tools/build:optimization_test) optimization_test.py FASTBUILD OPT DBG
  optimization_test.py --expect -O2 PROBE   # one binary (the CMake build's check)
"""

import os
import re
import struct
import sys
import unittest
from pathlib import Path

SECTION = ".GCC.command.line"
# -O, -O0..-O3, -Os, -Oz, -Og, -Ofast: the last one wins.
OPT_FLAG = re.compile(r"^-O(\d*|s|z|g|fast)$")
CC_RULES = ("cc_library", "cc_binary", "cc_test")
DEFS = "//tools/build:defs.bzl"


def recorded_flags(binary):
    """The compiler flags recorded in an ELF file's .GCC.command.line, in order."""
    data = Path(binary).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{binary}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        _, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        name, = struct.unpack_from("<I", data, shoff + i * shentsize)
        return name, offset, size

    _, names_offset, _ = section(shstrndx)
    for i in range(shnum):
        name, offset, size = section(i)
        end = data.index(b"\0", names_offset + name)
        if data[names_offset + name:end].decode() == SECTION:
            text = data[offset:offset + size].decode(errors="replace")
            return [flag for line in text.split("\0") for flag in line.split()]
    raise ValueError(f"{binary}: no {SECTION} section; was it compiled with "
                     f"-frecord-gcc-switches (and not stripped)?")


def optimization_level(binary):
    """The effective -O flag of a binary: its last recorded one ("-O0" if none)."""
    levels = [f for f in recorded_flags(binary) if OPT_FLAG.match(f)]
    if not levels:
        return "-O0"
    return "-O1" if levels[-1] == "-O" else levels[-1]


def _bazel_packages(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(("bazel-", ".", "build"))
            and not os.path.islink(os.path.join(dirpath, d))
            and not os.path.exists(os.path.join(dirpath, d, "WORKSPACE")))
        yield Path(dirpath), filenames


def rule_escapes(root):
    """One line per BUILD.bazel or .bzl file that bypasses defs.bzl's rules."""
    problems = []
    for directory, filenames in _bazel_packages(root):
        rel = directory.relative_to(root)
        for name in sorted(filenames):
            path = directory / name
            where = f"{rel / name}" if str(rel) != "." else name
            text = re.sub(r"#[^\n]*", "", path.read_text()) if name.endswith(
                ("BUILD.bazel", ".bzl")) else ""
            if name == "BUILD.bazel":
                used = [r for r in CC_RULES if re.search(rf"(?<![\w.]){r}\s*\(", text)]
                loads = " ".join(re.findall(r"load\(([^)]*)\)", text))
                defs = DEFS if str(rel) != "tools/build" else ":defs.bzl"
                missing = [r for r in used
                           if not re.search(rf'"{re.escape(defs)}"[^)]*"{r}"', loads)
                           and not re.search(rf'"{re.escape(DEFS)}"[^)]*"{r}"', loads)]
                if missing:
                    problems.append(
                        f"{where} uses the native {', '.join(missing)}: add "
                        f'load("{DEFS}", {", ".join(repr(r).replace(chr(39), chr(34)) for r in missing)}) '
                        f"at its top (docs/building.md, Optimization)")
            elif name.endswith(".bzl") and str(rel / name) != "tools/build/defs.bzl":
                for r in CC_RULES:
                    if re.search(rf"\bnative\.{r}\s*\(", text):
                        problems.append(f"{where} calls native.{r}: call {DEFS}'s {r} instead")
    return sorted(problems)


def _source_root():
    # Bazel runs this file through a symlink into the source tree.
    return Path(os.path.realpath(__file__)).parent.parent.parent


class OptimizationTest(unittest.TestCase):
    probes = {}

    def test_opt_compiles_at_O2(self):
        self.assertEqual(optimization_level(self.probes["opt"]), "-O2",
                         "bazel -c opt must give the toolchain's -O2 with no -O flag after "
                         "it; is there a -O copt in .bazelrc again?")

    def test_fastbuild_compiles_at_O1(self):
        self.assertEqual(optimization_level(self.probes["fastbuild"]), "-O1",
                         "the default mode (the test suite) must compile at -O1")

    def test_dbg_compiles_at_O0(self):
        self.assertEqual(optimization_level(self.probes["dbg"]), "-O0")

    def test_every_cc_target_uses_the_rules_of_defs_bzl(self):
        problems = rule_escapes(_source_root())
        self.assertEqual(problems, [], "\n".join(problems))

    def test_a_build_file_with_native_rules_is_named(self):
        import tempfile
        root = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        (root / "ok").mkdir()
        (root / "ok" / "BUILD.bazel").write_text(
            f'load("{DEFS}", "cc_library")\ncc_library(name = "a")\n')
        (root / "bad").mkdir()
        (root / "bad" / "BUILD.bazel").write_text(
            f'load("{DEFS}", "cc_library")\n# cc_binary( in a comment is fine\n'
            'cc_library(name = "a")\ncc_test(name = "b")\n')
        (root / "m.bzl").write_text("def m():\n    native.cc_binary(name = 'x')\n")
        self.assertEqual(rule_escapes(root), [
            f'bad/BUILD.bazel uses the native cc_test: add load("{DEFS}", "cc_test") at its '
            "top (docs/building.md, Optimization)",
            f"m.bzl calls native.cc_binary: call {DEFS}'s cc_binary instead"])

    def test_the_last_O_flag_wins(self):
        import tempfile
        # A minimal ELF file with one .GCC.command.line section.
        strtab = b"\0.shstrtab\0" + SECTION.encode() + b"\0"
        payload = b"GNU C++20 12.2.0 -O2 -g0 -O1 -fno-omit-frame-pointer\0"
        shoff = 64 + len(strtab) + len(payload)
        header = bytearray(64)
        header[:6] = b"\x7fELF\x02\x01"
        struct.pack_into("<Q", header, 0x28, shoff)
        struct.pack_into("<HHH", header, 0x3A, 64, 3, 1)
        sections = bytes(64)
        sections += struct.pack("<IIQQQQ", 1, 3, 0, 0, 64, len(strtab)) + bytes(24)
        sections += struct.pack("<IIQQQQ", 11, 1, 0, 0, 64 + len(strtab), len(payload)) + bytes(24)
        path = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))) / "probe"
        path.write_bytes(bytes(header) + strtab + payload + sections)
        self.assertEqual(optimization_level(path), "-O1")


def main(argv):
    if len(argv) == 4 and argv[1] == "--expect":
        level = optimization_level(argv[3])
        print(f"optimization_test: {argv[3]} was compiled at {level} (expected {argv[2]})")
        return 0 if level == argv[2] else 1
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    OptimizationTest.probes = dict(zip(("fastbuild", "opt", "dbg"), argv[1:]))
    result = unittest.main(argv=argv[:1], verbosity=2, exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
