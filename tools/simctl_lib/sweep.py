"""simctl sweep TARGET: a seed sweep of the user's own sim_test over J processes.

  tools/simctl sweep //my/pkg:my_sim_test --seeds 10000 --jobs 8 --time-budget 5m

Builds the target, then runs each of its tests in turn across J processes,
shard k of J running seeds start + i with i % J == k (the split Bazel's
shard_count makes), each process writing into its own folder under --out.
Shows a live progress line on a terminal (plain lines otherwise) and ends
with the coverage check of `simctl merge` and every failing test and seed
with its replay command. Exit 0: no seed failed; 1: some did; 2: bad input.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time

from tools.simctl_lib import common
from tools.simctl_lib import merge


def add_sweep_arguments(parser, seeds_help):
  parser.add_argument('target', nargs='?', help='the sim_test to sweep, e.g. //my/pkg:my_sim_test')
  parser.add_argument('--binary', metavar='PATH',
                      help='run this already built test binary instead of building TARGET')
  parser.add_argument('--seeds', type=common.positive_int, metavar='N', help=seeds_help)
  parser.add_argument('--jobs', '-j', type=common.positive_int, metavar='J',
                      default=os.cpu_count() or 1,
                      help='processes to run at once, one shard of the seeds each '
                      '(default: %(default)s, the number of CPUs)')
  parser.add_argument('--strategy', metavar='S',
                      help='scheduling strategy for every test: random, fifo, pos, mix, pct:D '
                      '(see docs/strategies.md); default: each test\'s own')
  parser.add_argument('--filter', metavar='PATTERN',
                      help='only these tests (a --gtest_filter pattern, e.g. "Bank*")')
  parser.add_argument('--out', metavar='DIR',
                      help='where each shard writes its log and jsonl files (default: a new '
                      'folder under $TMPDIR, printed)')


def register(subparsers):
  parser = subparsers.add_parser(
      'sweep', help='sweep the seeds of your sim_test across J processes',
      description=__doc__.split('\n\n', 1)[1],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  add_sweep_arguments(parser, 'seeds per test (default: each test\'s .iterations)')
  parser.add_argument('--start', type=common.seed_int, metavar='S', default=0,
                      help='first seed (default: 0)')
  parser.add_argument('--time-budget', metavar='D',
                      help='stop after this much wall time in all (30s, 2m, 1h30m), shared '
                      'among the tests; says how far each got')
  parser.add_argument('--collect-all', action='store_true',
                      help='keep going after a failing seed (default: each shard stops at its '
                      'first)')
  parser.set_defaults(run=run)


class Progress:
  """The live progress line: seeds done, seeds/s, failures, ETA."""

  def __init__(self, planned_per_test, tests, budget_seconds=None, stream=None):
    self.stream = stream or sys.stdout
    self.tty = common.is_tty(self.stream)
    self.planned_per_test = planned_per_test
    self.tests = tests
    self.budget = budget_seconds
    self.start = time.monotonic()
    self.done_before = 0   # seeds of finished rounds
    self.failed_before = 0
    self.files, self.offsets, self.records = [], {}, {}  # this round's
    self.current = ''
    self.index = 0
    self.last_plain = 0.0

  def begin(self, index, test, shard_dirs):
    self.index, self.current = index, test
    self.files = [os.path.join(d, 'progress.jsonl') for d in shard_dirs]
    self.offsets = {f: os.path.getsize(f) if os.path.exists(f) else 0 for f in self.files}
    self.records = {}

  def _read(self):
    for f in self.files:
      try:
        with open(f) as stream:
          stream.seek(self.offsets[f])
          chunk = stream.read()
      except OSError:
        continue
      complete = chunk[:chunk.rfind('\n') + 1]
      self.offsets[f] += len(complete.encode())
      for line in complete.splitlines():
        try:
          record = json.loads(line)
        except ValueError:
          continue
        self.records[(f, record.get('test'))] = record

  def counts(self):
    done = sum(r.get('done', 0) for r in self.records.values())
    failed = sum(r.get('failed', 0) for r in self.records.values())
    return done, failed

  def poll(self, final=False):
    self._read()
    done, failed = self.counts()
    total_done = self.done_before + done
    total_failed = self.failed_before + failed
    elapsed = max(time.monotonic() - self.start, 1e-6)
    rate = total_done / elapsed
    planned = None
    if self.planned_per_test is not None:
      planned = self.planned_per_test * len(self.tests)
    elif self.records:
      # The tests' own .iterations: this round's shards say their totals;
      # the tests still to come are guessed alike.
      this_round = sum(r.get('total', 0) for r in self.records.values())
      planned = self.done_before + this_round * (len(self.tests) - self.index)
    eta = None
    if planned and rate > 0:
      eta = max(planned - total_done, 0) / rate
    if self.budget is not None:
      left = max(self.budget - elapsed, 0)
      eta = left if eta is None else min(eta, left)
    line = (f'simctl: [{self.index + 1}/{len(self.tests)}] {self.current}: '
            f'{total_done}{"/" + str(planned) if planned else ""} seeds, {rate:.0f} seeds/s, '
            f'{total_failed} failed{", ETA " + _duration(eta) if eta is not None else ""}')
    if self.tty:
      self.stream.write('\r\033[K' + line + ('\n' if final else ''))
      self.stream.flush()
    elif final or time.monotonic() - self.last_plain >= 5:
      self.last_plain = time.monotonic()
      print(line, file=self.stream, flush=True)

  def end_round(self):
    self.poll(final=True)
    done, failed = self.counts()
    self.done_before += done
    self.failed_before += failed


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  if seconds >= 60:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds}s'


_BAD_ENV = re.compile(r'simsched: (environment variable \S+ is not valid.*|environment variable '
                      r'.*|shard variables are inconsistent.*|SIMSCHED_START_SEED=.*)')


def check_shard_logs(shard_dirs):
  """Raises UsageError for a SIMSCHED_* value the harness rejected (e.g. a
  bad --strategy): the harness's own message, which says what is accepted."""
  for d in shard_dirs:
    try:
      with open(os.path.join(d, 'log.txt'), errors='replace') as f:
        for line in f:
          m = _BAD_ENV.search(line)
          if m:
            raise common.UsageError(f'the test binary rejected the settings: {m.group(0)}')
    except OSError:
      pass


def crash_lines(shard_dirs):
  """The harness's crash reports ("simsched: CRASH: ...") and their replay lines."""
  found = []
  for d in shard_dirs:
    try:
      with open(os.path.join(d, 'log.txt'), errors='replace') as f:
        lines = f.read().splitlines()
    except OSError:
      continue
    for i, line in enumerate(lines):
      if line.startswith('simsched: CRASH:'):
        found.append(line)
        found.extend(l for l in lines[i + 1:i + 4] if l.startswith('  '))
  return found


def run_rounds(binary, tests, jobs, out_dir, env, budget_seconds, progress):
  """Each test across `jobs` shards in turn; the budget is shared: each test
  gets what is left divided by the tests left. Returns (shard dirs, exit codes)."""
  shard_dirs = [os.path.join(out_dir, f'shard_{k}') for k in range(jobs)]
  codes = []
  begin = time.monotonic()
  for index, test in enumerate(tests):
    round_env = dict(env)
    if budget_seconds is not None:
      left = budget_seconds - (time.monotonic() - begin)
      if left <= 0:
        more = len(tests) - index - 1
        print(f'simctl: the time budget ran out before {test}'
              f'{f" and {more} more tests" if more else ""} ran', flush=True)
        break
      round_env['SIMSCHED_TIME_BUDGET'] = common.format_seconds(left / (len(tests) - index))
    progress.begin(index, test, shard_dirs)
    codes.extend(common.run_shards(binary, jobs, out_dir, round_env,
                                   args=[f'--gtest_filter={test}'], poll=progress.poll))
    progress.end_round()
    check_shard_logs(shard_dirs)
  return shard_dirs, codes


def sweep_environment(args, seeds, start):
  env = {}
  if seeds is not None:
    env['SIMSCHED_ITERATIONS'] = seeds
  if start:
    if seeds is not None and start > 2**64 - 1 - seeds:
      raise common.UsageError(f'--start {start} with --seeds {seeds} runs past the largest seed '
                              '(2^64-1); lower one of them')
    env['SIMSCHED_START_SEED'] = start
  if args.strategy:
    env['SIMSCHED_STRATEGY'] = args.strategy
  return env


def prepare(args):
  """Checks the arguments, builds the target: (binary, tests, out dir)."""
  if args.target:
    common.check_label(args.target)
  budget = common.parse_duration(args.time_budget) if getattr(args, 'time_budget', None) else None
  binary = common.resolve_binary(args.target, args.binary, also=merge.report_tool_targets())
  tests = common.list_tests(binary, args.filter)
  if not tests:
    raise common.UsageError(f'{args.target or binary} has no tests'
                            + (f' matching --filter {args.filter}' if args.filter else ''))
  out_dir = args.out or tempfile.mkdtemp(prefix='simctl-sweep-')
  if args.out:
    os.makedirs(out_dir, exist_ok=True)
    if any(os.scandir(out_dir)):
      raise common.UsageError(f'--out {out_dir} is not empty: the jsonl files would mix two '
                              'sweeps; give a new folder')
  return binary, tests, budget, out_dir


def run(args):
  binary, tests, budget, out_dir = prepare(args)
  env = sweep_environment(args, args.seeds, args.start)
  if args.collect_all:
    env['SIMSCHED_COLLECT_ALL'] = 1
  how_many = args.seeds or "each test's default number of"
  print(f'simctl: sweeping {len(tests)} test{"s" if len(tests) != 1 else ""} of '
        f'{args.target or binary}: {how_many} seeds from {args.start}, {args.jobs} '
        f'processes; output in {out_dir}', flush=True)
  progress = Progress(args.seeds, tests, budget)
  shard_dirs, codes = run_rounds(binary, tests, args.jobs, out_dir, env, budget, progress)
  return finish([out_dir], shard_dirs, codes, args.target)


def finish(out_dirs, shard_dirs, codes, target):
  """The end-of-sweep summary; returns the exit code."""
  report = merge.summarize(out_dirs)
  print()
  merge.print_report(report, stopped_is_error=False)
  crashes = crash_lines(shard_dirs)
  for line in crashes:
    print(line)
  unexplained = [c for c in codes if c not in (0, 1)]
  if unexplained and not crashes:
    print(f'simctl: {len(unexplained)} process(es) died (exit codes {sorted(set(unexplained))}); '
          f'see the log.txt files under {os.path.commonpath(shard_dirs)}')
  failed = report.failures or crashes or unexplained or report.errors
  print(f'simctl: {"FAILED" if failed else "PASSED"}: {report.seeds_run} seeds run, '
        f'{len(report.failures)} failing seeds'
        f'{", " + str(len(crashes)) + " crash lines" if crashes else ""}; '
        f'logs and jsonl files in {" ".join(out_dirs)}')
  return 1 if failed else 0
