"""No source in the tree writes what g++ 12 miscompiles in coroutines.

docs/building.md ("Compiler pitfalls") lists three shapes that g++ 12 builds
without a warning and then runs wrongly, while clang++ is fine:

  * co_await used directly as a condition: `if (co_await x)`,
    `while (co_await ch.Recv())` (a trap in the resume under ASan, a heap
    corruption at shutdown without it);
  * co_await in an arm of a conditional operator: `c ? co_await a : b`;
  * co_await of a conditional operator over coroutine calls:
    `co_await (c ? A() : B())`.

This test scans every .cc and .h under the source tree (through its own
symlink, like build_drift_test, hence tagged "external") and names each
line that has one, with the fix. `python3 tools/coroutine_pitfalls_test.py
--check DIR` scans another tree (a user's project).
"""

import os
import re
import sys
import unittest
from pathlib import Path

# (pattern, what it is, the fix). Patterns work on one line with comments
# and string literals blanked out.
PITFALLS = [
    (re.compile(r'\b(?:if|while)\s*\(\s*!?\s*\(?\s*co_await\b'),
     'co_await used directly as a condition',
     'bind the result first: `while (std::optional<T> v = co_await ch.Recv())` or '
     '`const bool ok = co_await f(); if (ok)`'),
    (re.compile(r'\?\s*co_await\b|\?[^;:]*:\s*co_await\b'),
     'co_await in an arm of a conditional operator',
     'use an if with one co_await per branch'),
    (re.compile(r'\bco_await\s*\([^;]*\?[^;]*:'),
     'co_await of a conditional operator',
     'pick the coroutine with an if, one co_await per branch'),
]

_SKIP_DIRS = {'.git', 'node_modules'}
_COMMENT = re.compile(r'//.*$')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def scan_text(text, name='<text>'):
  """[(name, line number, what, fix, line)] for each pitfall in `text`."""
  found = []
  for number, line in enumerate(text.splitlines(), 1):
    code = _COMMENT.sub('', _STRING.sub('""', line))
    for pattern, what, fix in PITFALLS:
      if pattern.search(code):
        found.append((name, number, what, fix, line.strip()))
        break
  return found


def scan_tree(root):
  found = []
  for directory, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith('bazel-')
                     and not d.startswith('build'))
    for name in sorted(files):
      if name.endswith(('.cc', '.h')):
        path = Path(directory) / name
        text = path.read_text(encoding='utf-8', errors='replace')
        found += scan_text(text, str(path.relative_to(root)))
  return found


def describe(found):
  return '\n'.join(f'{name}:{number}: {what}: {line}\n  fix: {fix}'
                   for name, number, what, fix, line in found)


def _source_root():
  return Path(os.path.realpath(__file__)).parent.parent


class CoroutinePitfallsTest(unittest.TestCase):

  def test_the_tree_has_none(self):
    found = scan_tree(_source_root())
    self.assertEqual(found, [], '\n' + describe(found))

  def test_each_pitfall_is_found(self):
    for bad in ['  if (co_await inventory->Reserve(count)) *sold += count;',
                '  while (co_await inbox->Recv()) {',
                '  while (!co_await done.Wait()) {',
                '  auto m = c ? co_await ep.Recv(d) : co_await ep.Recv();',
                '  int v = ready ? cached : co_await Load();',
                '  T value = co_await (use_cache ? FromCache(key) : FromStore(key));']:
      with self.subTest(line=bad):
        self.assertEqual(len(scan_text(bad)), 1, bad)

  def test_the_fixed_forms_pass(self):
    for good in ['  while (std::optional<int> v = co_await inbox->Recv()) {',
                 '  const bool reserved = co_await inventory->Reserve(count);',
                 '  if (reserved) *sold += count;',
                 '  value = use_cache ? 1 : 2;',
                 '  co_await WithTimeout(Fetch(use_cache, key), d);',
                 '  // while (co_await x) is what g++ 12 gets wrong',
                 '  Log("if (co_await x) would crash");']:
      with self.subTest(line=good):
        self.assertEqual(scan_text(good), [], good)


def main(argv):
  if len(argv) >= 2 and argv[1] == '--check':
    root = Path(argv[2]) if len(argv) > 2 else _source_root()
    found = scan_tree(root)
    print(describe(found) if found else f'coroutine pitfalls: none under {root}')
    return 1 if found else 0
  unittest.main(argv=argv[:1], verbosity=2)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
