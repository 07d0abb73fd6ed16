"""simctl replay: run one seed of one test and print its timeline.

  simctl replay BankTest.TransfersNeverOverdraw --seed 7 --target //testing/examples:bank_sim_test
  simctl replay --failures simsched_failures.jsonl --line 2
  grep Overdraw simsched_failures.jsonl | simctl replay
  simctl replay --trace-file seed7.jsonl --task 3

The run is made with SIMSCHED_SEED and SIMSCHED_TRACE_FILE (the harness's
event recording, docs/trace-format.md); the timeline shows each step: its
virtual time, task and label, session and lane, the site it resumed at and
what woke it, plus spawns, ends, faults and failures.

This module also holds what `trace` and `report` share with it: the
arguments that name a run (add_run_arguments) and getting its events
(obtain_run).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

from tools.simctl_lib.common import UsageError, check_failure_row, read_jsonl
from tools.simctl_lib import common
from tools.simctl_lib import trace_format


# Besides common.PARENT_ONLY, a replay runs exactly one seed and writes its
# own trace: the sweep's own variables must not reach it either.
_INHERITED = common.PARENT_ONLY + ('SIMSCHED_ITERATIONS', 'SIMSCHED_START_SEED',
                                   'SIMSCHED_TRACE_FILE', 'SIMSCHED_COLLECT_ALL')


class Run:
  """One traced run: its "run" header and its events, in order."""

  def __init__(self, header, events, output=''):
    self.header = header
    self.events = events
    self.output = output  # what the test printed, when simctl ran it
    self.command = None  # the command that reran it, when simctl ran it

  @property
  def failed(self):
    return bool(self.header.get('failed'))


# -- Naming a run ------------------------------------------------------------


def add_run_arguments(parser):
  """The arguments every one-run subcommand takes."""
  parser.add_argument('test', nargs='?', help='the test, "Suite.Name" (as GoogleTest names it)')
  parser.add_argument('--seed', type=_seed, help='the seed to run')
  parser.add_argument('--target', help='the sim_test Bazel target, e.g. //pkg:my_sim_test')
  parser.add_argument('--binary', help='a built sim_test binary (instead of --target)')
  parser.add_argument('--strategy', help='SIMSCHED_STRATEGY for the run (a failures line '
                      'brings its own)')
  parser.add_argument('--failures', metavar='FILE',
                      help='a simsched_failures.jsonl file ("-": stdin); with --line N')
  parser.add_argument('--line', type=int, metavar='N', help='which line of --failures (from 1)')
  parser.add_argument('--trace-file', metavar='FILE',
                      help='read a trace written earlier (SIMSCHED_TRACE_FILE) instead of running')
  parser.add_argument('--keep-trace', metavar='FILE',
                      help='also keep the run\'s raw trace (JSON lines) in FILE')


def _seed(text):
  if not re.fullmatch(r'\d+', text or '') or int(text) >= 2**64:
    raise argparse.ArgumentTypeError(f'{text!r}: a seed is a whole number from 0 to 2^64-1')
  return int(text)


def _workspace_dir():
  """The Bazel workspace around the current folder, else this simsched checkout."""
  if os.environ.get('SIMCTL_WORKSPACE'):
    return os.environ['SIMCTL_WORKSPACE']
  path = os.getcwd()
  while True:
    if any(os.path.isfile(os.path.join(path, f)) for f in ('WORKSPACE', 'WORKSPACE.bazel')):
      return path
    parent = os.path.dirname(path)
    if parent == path:
      return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = parent


def _failure_line(args):
  """The JSON object of the failures line the arguments point at, or None."""
  if args.failures is None:
    if args.test is not None or args.line is not None or sys.stdin is None or sys.stdin.isatty():
      if args.line is not None:
        raise UsageError('--line needs --failures FILE (or "-" for stdin)')
      return None
    source, text = 'stdin', sys.stdin.read()
    if not text.strip():
      return None
  elif args.failures == '-':
    source, text = 'stdin', sys.stdin.read()
  else:
    try:
      with open(args.failures, encoding='utf-8') as f:
        text = f.read()
    except OSError as e:
      raise UsageError(f'--failures {args.failures}: cannot read it ({e.strerror})')
    source = args.failures
  lines = text.splitlines()
  if args.line is None:
    filled = [n for n, line in enumerate(lines, 1) if line.strip()]
    if len(filled) != 1:
      raise UsageError(f'{source} has {len(filled)} failure lines; pick one with --line N')
    number = filled[0]
  else:
    number = args.line
    if not 1 <= number <= len(lines):
      raise UsageError(f'--line {number}: {source} has {len(lines)} lines')
  line = lines[number - 1]
  try:
    failure = json.loads(line)
  except json.JSONDecodeError as e:
    raise UsageError(f'{source} line {number} is not a simsched_failures.jsonl line (not JSON: '
                     f'{e.msg} at column {e.colno}): {line[:120]!r}')
  if not isinstance(failure, dict):
    raise UsageError(f'{source} line {number} is not a simsched_failures.jsonl line (it needs '
                     f'"test" and "seed"): {line[:120]!r}')
  check_failure_row(f'{source} line {number}', failure)
  return failure


def _binary_from_failure(failure):
  """The binary a failures line's replay command names, if it exists here."""
  for token in str(failure.get('replay_binary', '')).split():
    if '=' in token.split('/')[0]:
      continue  # SIMSCHED_SEED=... and the like
    path = token if os.path.isabs(token) else os.path.join(_workspace_dir(), token)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
  return None


def _target_from_failure(failure):
  match = re.search(r'bazel test (//\S+)', str(failure.get('replay_bazel', '')))
  return match.group(1) if match else None


def _build(target):
  if not re.fullmatch(r'//[\w./+-]*(:[\w./+-]+)?', target):
    raise UsageError(f'--target {target}: not a Bazel label (e.g. //pkg:my_sim_test)')
  package, _, name = target[2:].partition(':')
  name = name or package.rsplit('/', 1)[-1]
  bazel = ['bazel', 'build'] + os.environ.get('SIMCTL_BAZEL_FLAGS', '').split() + [target]
  print(f'simctl: building {target}', file=sys.stderr, flush=True)
  try:
    built = subprocess.run(bazel, cwd=_workspace_dir(), capture_output=True, text=True)
  except FileNotFoundError:
    raise UsageError('bazel is not on PATH; pass --binary PATH to a built sim_test')
  if built.returncode != 0:
    output = built.stdout + built.stderr
    if re.search(r'no such (target|package)|Unable to find package', output):
      raise UsageError(f'unknown target {target}')
    sys.stderr.write(output[-3000:])
    raise UsageError(f'building {target} failed (bazel exited {built.returncode})')
  return os.path.join(_workspace_dir(), 'bazel-bin', package, name)


def obtain_run(args):
  """The run the arguments name: read from --trace-file, or run now."""
  if args.trace_file:
    if args.seed is not None or args.failures or args.target or args.binary:
      raise UsageError('--trace-file reads a finished run: leave out --seed, --failures, '
                       '--target and --binary')
    return load_trace(args.trace_file, args.test)
  failure = _failure_line(args)
  test, seed, strategy = args.test, args.seed, args.strategy
  binary, target = args.binary, args.target
  if failure is not None:
    test, seed = failure['test'], failure['seed']
    strategy = strategy or failure.get('strategy')
    target = target or _target_from_failure(failure)
    if not binary and not args.target:
      binary = _binary_from_failure(failure)
  if not test:
    raise UsageError('name a test and --seed (or give a failures line: --failures FILE '
                     '--line N, or on stdin)')
  if seed is None:
    raise UsageError(f'which seed of {test}? pass --seed N')
  if binary:
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
      raise UsageError(f'--binary {binary}: no such executable file')
  elif target:
    binary = _build(target)
  else:
    raise UsageError(f'where is {test}? pass --target //pkg:its_sim_test (or --binary PATH)')
  return run_seed(binary, test, seed, strategy, args.keep_trace)


def run_seed(binary, test, seed, strategy=None, keep_trace=None):
  """Runs one seed of `test` with the trace file on; returns the Run."""
  with tempfile.TemporaryDirectory(prefix='simctl-replay-') as tmp:
    path = keep_trace or os.path.join(tmp, 'trace.jsonl')
    if os.path.exists(path):
      os.remove(path)
    env = common.child_environment(
        {'SIMSCHED_SEED': seed, 'SIMSCHED_TRACE_FILE': os.path.abspath(path)}, _INHERITED)
    if strategy:
      env['SIMSCHED_STRATEGY'] = strategy
    command = [binary, f'--gtest_filter={test}']
    try:
      done = subprocess.run(command, env=env, cwd=_workspace_dir(), capture_output=True,
                            text=True, timeout=600)
    except OSError as e:
      raise UsageError(f'cannot run {binary}: {e.strerror}')
    except subprocess.TimeoutExpired:
      raise UsageError(f'seed {seed} of {test} ran for 10 minutes without ending')
    output = done.stdout + done.stderr
    if not os.path.exists(path):
      if re.search(r'Running 0 tests', output):
        raise UsageError(f'{binary} has no test named {test} (list them with '
                         f'{binary} --gtest_list_tests)')
      raise UsageError(f'{test} seed {seed} wrote no trace (is it a SIM_TEST?); it printed:\n'
                       + output[-2000:])
    run = load_trace(path, test)
    run.output = output
    resolved = strategy or run.header.get('strategy')
    run.command = (f'SIMSCHED_SEED={seed}' + (f' SIMSCHED_STRATEGY={resolved}' if resolved else '')
                   + f' {os.path.relpath(binary, _workspace_dir()) if binary.startswith(_workspace_dir()) else binary}'
                   + f' --gtest_filter={test}')
    return run


def load_trace(path, test=None):
  """Parses a trace file; with several runs in it, the one of `test`."""
  runs = []
  for where, event in read_jsonl(path, name=f'trace file {path}'):
    if not runs and event.get('event') != 'run':
      raise UsageError(f'trace file {path} does not start with a "run" line (is it a '
                       f'SIMSCHED_TRACE_FILE trace?)')
    trace_format.check_event(where, event)
    if event['event'] == 'run':
      runs.append(Run(event, []))
    else:
      runs[-1].events.append(event)
  if not runs:
    raise UsageError(f'trace file {path} is empty')
  if test is None:
    return runs[0]
  for run in runs:
    if run.header.get('test') == test:
      return run
  raise UsageError(f'trace file {path} has no run of {test} (it has: '
                   f'{", ".join(r.header.get("test", "?") for r in runs)})')


# -- Formatting --------------------------------------------------------------


def format_time(ns):
  """Virtual time as the harness prints it: +0, +250ns, +12us, +1.5ms, +2s."""
  if ns == 0:
    return '+0'
  for unit, size in (('s', 10**9), ('ms', 10**6), ('us', 10**3)):
    if ns >= size:
      return f'+{ns / size:.4g}{unit}'
  return f'+{ns}ns'


def task_name(event):
  name = f'task {event["task"]}'
  if event.get('label'):
    name += f' "{event["label"]}"'
  return name


def describe_wake(event):
  """Where a poll resumed and what woke it, in words."""
  if event.get('cause') == 'spawned':
    by = f'task {event["woken_by"]}' if event.get('woken_by') else 'outside any task'
    return f'started (spawned at {event.get("spawned_at")} by {by})'
  if event.get('resumed_after_task'):
    text = f'resumed after task {event["resumed_after_task"]} finished'
  elif event.get('resumed_what'):
    text = f'resumed after {event["resumed_what"]} at {event.get("resumed_at")}'
  elif event.get('cause') == 'itself':
    text = 'resumed after yielding'
  else:
    text = 'resumed'
  cause = event.get('cause')
  reason = event.get('wake_reason')
  if cause == 'task' and reason:
    text += f', woken by {reason} from task {event.get("woken_by")}'
  elif cause == 'task':
    text += f', woken by task {event.get("woken_by")}'
  elif reason and cause in ('outside', 'foreign_thread'):
    where = 'outside any task' if cause == 'outside' else 'another thread'
    text += f', woken by {reason} from {where}'
  elif cause == 'timer':
    text += ', woken by a timer'
  elif cause == 'outside':
    text += ', woken from outside any task'
  elif cause == 'foreign_thread':
    text += ', woken from another thread'
  return text


def _matches(event, args, tasks_by_id):
  """Whether a task event passes --task/--label/--session (faults and failures always do)."""
  task = event.get('task')
  if event['event'] in ('fault', 'failure'):
    return True  # the context every filtered view needs
  info = tasks_by_id.get(task, event)
  if args.task and task not in args.task:
    return False
  if args.label and info.get('label') not in args.label:
    return False
  if args.session and info.get('session') not in args.session:
    return False
  return True


def timeline_lines(run, args):
  """The readable timeline, one string per line."""
  header = run.header
  lanes = header.get('lanes') or []
  tasks_by_id = {}
  for event in run.events:
    if event['event'] in ('spawn', 'poll') and event.get('task') not in tasks_by_id:
      tasks_by_id[event['task']] = event
  out = [f'{header["test"]} seed {header["seed"]} (strategy {header["strategy"]}): '
         f'{header["steps"]} steps, virtual time {format_time(header["virtual_time_ns"])}, '
         f'trace hash {header["trace_hash"]}, '
         f'{"FAILED" if header.get("failed") else "passed"}',
         f'{"step":>6}  {"time":<9} event']
  shown = 0
  for event in run.events:
    kind = event['event']
    if kind == 'poll' and event.get('internal') and not args.internal:
      continue
    if not _matches(event, args, tasks_by_id):
      continue
    step, time = event.get('step', 0), format_time(event.get('t_ns', 0))
    if kind == 'poll':
      where = ''
      if event.get('session') is not None:
        where += f' [session {event["session"]}]'
      if event.get('lane') is not None:
        lane = event['lane']
        where += f' [lane {lanes[lane] if lane < len(lanes) else lane}]'
      text = f'{task_name(event)}{where} {describe_wake(event)}'
    elif kind == 'spawn':
      parent = f'task {event["parent"]}' if event.get('parent') else 'outside any task'
      session = f' in session {event["session"]}' if event.get('session') is not None else ''
      text = f'+ spawned {task_name(event)}{session} at {event.get("spawned_at")} by {parent}'
      step = '' if step == 0 else step
    elif kind in ('complete', 'cancel'):
      text = f'- {task_name(event)} {"completed" if kind == "complete" else "was cancelled"}'
    elif kind == 'fault':
      text = f'! FAULT {event.get("kind")}: {event.get("text")}'
    elif kind == 'failure':
      where = f' at {event["file"]}:{event["line"]}' if event.get('file') else ''
      who = f' in task {event["task"]}' if event.get('task') else ''
      message = ' | '.join(line for line in str(event.get('message', '')).splitlines() if line)
      text = f'X FAILURE{who}{where}: {message}'
    else:
      continue
    shown += 1
    out.append(f'{step:>6}  {time:<9} {text}')
  if shown == 0:
    out.append('       (no event matches the filters)')
  return out


def register(subparsers):
  parser = subparsers.add_parser(
      'replay', help='run one seed and print its timeline',
      description='Runs one seed of one sim_test with its events recorded and prints the '
      'timeline: step, virtual time, task and label, session, the site it resumed at, what '
      'woke it, spawns, ends, faults and failures.')
  add_run_arguments(parser)
  parser.add_argument('--task', type=int, action='append', metavar='ID',
                      help='only this task (repeatable)')
  parser.add_argument('--label', action='append', help='only tasks with this label (repeatable)')
  parser.add_argument('--session', type=int, action='append', metavar='ID',
                      help='only tasks of this session (repeatable)')
  parser.add_argument('--internal', action='store_true',
                      help='also show framework-internal steps (session grace timers)')
  parser.set_defaults(run=_run)


def _run(args):
  run = obtain_run(args)
  for line in timeline_lines(run, args):
    print(line)
  if run.failed:
    print(f'\nsimctl replay: the run failed; `simctl trace` and `simctl report` draw it')
  return 0
