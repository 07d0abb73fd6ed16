"""Seeded fuzz tests of simctl's readers: bad input is a clear error.

simctl reads files a user hands it: trace files (replay, trace and report
with --trace-file) and the shard outputs of a sweep (merge: every
simsched_summary.jsonl and simsched_failures.jsonl, the summaries also
through //testing:property_report). Each seed takes real files (a failing
run of //testing/internal:trace_probe_sim_test and a passing run of the
bank example; two shards of //testing/internal:simctl_probe_sim_test) and
damages one in one to three ways drawn from the seed: a field removed, a
field of the wrong type or out of range, a line removed, repeated, swapped
or cut short, an unknown event kind, a line that is not a JSON object, the
first line gone. Every command must then finish with its documented exit
code (0 or 2; merge also 1 for coverage problems) and, on 2, say what is
wrong in one line ("simctl CMD: error: ..."), never stop with a Python
traceback. Undamaged files must be read.

Seeds: SIMCTL_FUZZ_SEEDS (default 300 per reader), SIMCTL_FUZZ_START_SEED
(default 1); a failure names its seed and the damage done.
"""

import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import traceback
import unittest

from tools.simctl_lib import main
from tools.simctl_test_support import PROBE as SHARD_PROBE
from tools.simctl_test_support import PROPERTY_REPORT, new_dir, run_machines

_WORKSPACE = os.path.join(os.environ.get('TEST_SRCDIR', ''), os.environ.get('TEST_WORKSPACE',
                                                                            'simsched'))
PROBE = os.path.join(_WORKSPACE, 'testing/internal/trace_probe_sim_test')
PROBE_TEST = 'TraceProbe.ConsumerSeesEveryJob'
BANK = os.path.join(_WORKSPACE, 'testing/examples/bank_sim_test')
BANK_TEST = 'BankTest.TransfersNeverOverdraw'

# Values of every JSON type, and numbers a reader may not expect.
_ODD_VALUES = [None, '', 'x', -1, 0, 1.5, 2**70, -2**70, True, False, [], [1, 'a'], {},
               {'a': 1}, '0x', 'step', float('1e308')]


def _env_int(name, default):
  text = os.environ.get(name, '')
  if not text:
    return default
  if not text.isdigit():
    raise ValueError(f'{name}={text!r}: expected a whole number')
  return int(text)


def simctl(*argv):
  """Runs simctl in process: (exit code, stdout, stderr, traceback or None)."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = main.main(list(argv))
    except SystemExit as e:  # argparse
      code = e.code
    except Exception:  # pylint: disable=broad-except
      return None, out.getvalue(), err.getvalue(), traceback.format_exc()
  return code, out.getvalue(), err.getvalue(), None


def damage(rng, lines):
  """Damages a trace (a list of JSON lines) in place; returns what was done."""
  done = []
  for _ in range(rng.randint(1, 3)):
    if not lines:
      lines.append('{}')
    i = rng.randrange(len(lines))
    choice = rng.randrange(10)
    try:
      event = json.loads(lines[i])
    except ValueError:
      event = None
    if choice <= 2 and isinstance(event, dict) and event:
      key = rng.choice(sorted(event))
      if choice == 0:
        del event[key]
        done.append(f'line {i + 1}: removed "{key}"')
      else:
        value = rng.choice(_ODD_VALUES)
        event[key] = value
        done.append(f'line {i + 1}: "{key}" = {json.dumps(value)}')
      lines[i] = json.dumps(event)
    elif choice == 3:
      del lines[i]
      done.append(f'removed line {i + 1}')
    elif choice == 4:
      lines.insert(i, lines[i])
      done.append(f'repeated line {i + 1}')
    elif choice == 5:
      j = rng.randrange(len(lines))
      lines[i], lines[j] = lines[j], lines[i]
      done.append(f'swapped lines {i + 1} and {j + 1}')
    elif choice == 6:
      cut = rng.randrange(len(lines[i]) + 1)
      lines[i] = lines[i][:cut]
      done.append(f'line {i + 1} cut at {cut}')
    elif choice == 7 and isinstance(event, dict):
      event['event'] = rng.choice(['run', 'poll', 'spawn', 'complete', 'cancel', 'fault',
                                   'failure', 'wake', '', 'POLL'])
      lines[i] = json.dumps(event)
      done.append(f'line {i + 1}: event = {event["event"]!r}')
    elif choice == 8:
      junk = rng.choice(['[]', '3', '"poll"', 'null', '{"event": "poll"', '{}', 'x'])
      lines.insert(i, junk)
      done.append(f'inserted {junk!r} before line {i + 1}')
    elif choice == 9:
      del lines[0]
      done.append('removed the header')
    else:
      done.append('nothing')
  return done


class TraceFuzzTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    cls.tmp = tempfile.mkdtemp(dir=os.environ.get('TEST_TMPDIR'))
    cls.traces = []
    for binary, test, seed in ((PROBE, PROBE_TEST, 2), (BANK, BANK_TEST, 1)):
      path = os.path.join(cls.tmp, f'{test}.{seed}.jsonl')
      code, _, err, tb = simctl('replay', test, '--seed', str(seed), '--binary', binary,
                                '--keep-trace', path)
      assert code == 0 and tb is None, f'recording {test} seed {seed}: {err}{tb}'
      with open(path, encoding='utf-8') as f:
        cls.traces.append(f.read().splitlines())

  def check(self, path, what):
    """Runs the three readers on `path`; returns their exit codes."""
    codes = []
    for command, extra in (('replay', []), ('trace', ['-o', os.path.join(self.tmp, 'out.json')]),
                           ('report', ['-o', os.path.join(self.tmp, 'out.html')])):
      code, _, err, tb = simctl(command, '--trace-file', path, *extra)
      self.assertIsNone(tb, f'{what}: simctl {command} stopped with a traceback:\n{tb}')
      self.assertIn(code, (0, 2), f'{what}: simctl {command} exited {code}: {err}')
      if code == 2:
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, f'{what}: simctl {command}: {err}')
        self.assertTrue(lines[0].startswith(f'simctl {command}: error: '), f'{what}: {err}')
        self.assertIn(path, lines[0], f'{what}: the error does not name the file: {err}')
      codes.append(code)
    return codes

  def test_undamaged_traces_are_read(self):
    for n, lines in enumerate(self.traces):
      path = os.path.join(self.tmp, f'clean{n}.jsonl')
      with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
      self.assertEqual(self.check(path, f'undamaged trace {n}'), [0, 0, 0])

  def test_damaged_traces_are_read_or_refused_clearly(self):
    def run_seed(seed, rng):
      lines = list(rng.choice(self.traces))
      done = damage(rng, lines)
      path = os.path.join(self.tmp, f'damaged{seed}.jsonl')
      write_lines(path, lines)
      return done, 2 in self.check(path, describe(seed, done))
    sweep(self, run_seed)


class MergeFuzzTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    os.environ['SIMCTL_PROPERTY_REPORT'] = PROPERTY_REPORT
    cls.shards = run_machines(new_dir('shards'), 2, {'SIMSCHED_ITERATIONS': 20},
                              'SimctlProbe.Passes:SimctlProbe.LostUpdate')

  def check(self, dirs, what):
    code, _, err, tb = simctl('merge', *dirs)
    self.assertIsNone(tb, f'{what}: simctl merge stopped with a traceback:\n{tb}')
    self.assertIn(code, (0, 1, 2), f'{what}: simctl merge exited {code}: {err}')
    if code == 2:
      lines = err.strip().splitlines()
      self.assertEqual(len(lines), 1, f'{what}: {err}')
      self.assertTrue(lines[0].startswith('simctl merge: error: '), f'{what}: {err}')
    return code

  def test_undamaged_shards_merge(self):
    # SimctlProbe.LostUpdate fails on seeds ending in 3: exit 1, no error.
    self.assertEqual(self.check(self.shards, 'undamaged shards'), 1)

  def test_damaged_shards_merge_or_are_refused_clearly(self):
    def run_seed(seed, rng):
      base = new_dir(f'merge{seed}')
      dirs = [shutil.copytree(d, os.path.join(base, os.path.basename(d))) for d in self.shards]
      files = sorted(os.path.join(d, name) for d in dirs for name in os.listdir(d)
                     if name.endswith('.jsonl'))
      path = rng.choice(files)
      with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
      done = [f'{os.path.relpath(path, base)}:'] + damage(rng, lines)
      write_lines(path, lines)
      what = describe(seed, done)
      code = self.check(dirs, what)
      # //testing:property_report (C++) reads the same summaries: an error
      # is its exit code 2 with a message, never a signal.
      tool = subprocess.run([PROPERTY_REPORT, *dirs], capture_output=True, text=True,
                            timeout=60)
      self.assertIn(tool.returncode, (0, 1, 2),
                    f'{what}: property_report exited {tool.returncode}: {tool.stderr}')
      if tool.returncode == 2:
        self.assertTrue(tool.stderr.strip(), f'{what}: property_report exit 2 without a message')
      shutil.rmtree(base)
      return done, code == 2
    sweep(self, run_seed)


def write_lines(path, lines):
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines) + '\n')


def describe(seed, done):
  return (f'seed {seed} (replay: SIMCTL_FUZZ_START_SEED={seed} SIMCTL_FUZZ_SEEDS=1): '
          f'{"; ".join(done)}')


def sweep(test, run_seed):
  """Runs run_seed(seed, rng) -> (damage, refused) over the seeds."""
  count = _env_int('SIMCTL_FUZZ_SEEDS', 300)
  start = _env_int('SIMCTL_FUZZ_START_SEED', 1)
  refused = 0
  for seed in range(start, start + count):
    _, was_refused = run_seed(seed, random.Random(seed))  # seeded: the same damage every run
    refused += was_refused
  if count >= 100:
    # Much of the damage must be caught: a reader that accepts anything fails this.
    test.assertGreater(refused, count // 4)

if __name__ == '__main__':
  unittest.main()
