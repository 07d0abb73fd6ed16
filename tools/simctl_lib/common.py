"""Shared by simctl's subcommands: errors, argument checks, Bazel, shards.

  UsageError        bad input: main.py prints it and exits 2
  parse_duration    "2m", "90s", "1h30m", "1500ms" -> seconds
  resolve_binary    --binary PATH, or `bazel build TARGET` + cquery
  list_tests        the binary's GoogleTest tests (--gtest_list_tests)
  run_shards        J processes of a binary, one output folder each, with a
                    callback polled while they run (the progress line)
  read_jsonl        a jsonl file (or a member of Bazel's outputs.zip), with
                    a UsageError naming the file and line for a bad line
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import zipfile


class UsageError(Exception):
  """Bad input (arguments, target, binary, file): exit code 2."""


_DURATION = re.compile(r'^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$')
_DURATION_PART = re.compile(r'(\d+(?:\.\d+)?)(ms|s|m|h)')
_UNIT_SECONDS = {'ms': 0.001, 's': 1.0, 'm': 60.0, 'h': 3600.0}


def parse_duration(text):
  """Seconds in `text` ("30s", "2m", "1h30m", "1500ms"), as the harness reads it."""
  if not _DURATION.match(text or ''):
    raise UsageError(
        f'time budget "{text}" is not a duration: write a number with a unit, '
        'e.g. 30s, 2m, 1500ms, 1h30m')
  seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
  if seconds <= 0:
    raise UsageError(f'time budget "{text}" must be more than zero')
  return seconds


def format_seconds(seconds):
  """A budget for SIMSCHED_TIME_BUDGET (whole milliseconds, at least 1)."""
  return f'{max(1, int(seconds * 1000))}ms'


def positive_int(text):
  """argparse type: a whole number > 0 (argparse turns the error into exit 2)."""
  try:
    value = int(text, 10)
  except ValueError:
    raise argparse.ArgumentTypeError(f'"{text}" is not a whole number')
  if value <= 0:
    raise argparse.ArgumentTypeError(f'{value} must be at least 1')
  if value >= 2**64:
    raise argparse.ArgumentTypeError(f'{value} is too large (at most 18446744073709551615)')
  return value


def seed_int(text):
  """argparse type: a seed, 0 .. 2^64-1."""
  try:
    value = int(text, 10)
  except ValueError:
    raise argparse.ArgumentTypeError(f'"{text}" is not a seed (a whole number)')
  if not 0 <= value < 2**64:
    raise argparse.ArgumentTypeError(f'{value} is not a seed: 0 to 18446744073709551615')
  return value


_LABEL = re.compile(r'^(@[\w.-]*)?//[\w./+-]*(:[\w./+=,@~-]+)?$|^:[\w./+=,@~-]+$')


def check_label(target):
  """One Bazel target label, or UsageError saying what a label looks like."""
  if not _LABEL.match(target) or target.endswith('...') or ':all' in target:
    raise UsageError(
        f'"{target}" is not one Bazel target: write a label such as '
        '//my/package:my_sim_test (patterns like //... name many targets)')
  return target


def workspace_dir():
  """The Bazel workspace simctl was started in (or the current folder)."""
  if os.environ.get('SIMCTL_WORKSPACE'):
    return os.environ['SIMCTL_WORKSPACE']
  here = os.getcwd()
  path = here
  while True:
    if any(os.path.isfile(os.path.join(path, f)) for f in ('WORKSPACE', 'WORKSPACE.bazel')):
      return path
    parent = os.path.dirname(path)
    if parent == path:
      return here
    path = parent


def simsched_root():
  """The simsched checkout this simctl belongs to (its tools/simctl_lib/..)."""
  return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bazel_command(*args):
  """bazel (or $SIMCTL_BAZEL) with simctl's flags (disk cache, SIMSCHED_BAZEL_FLAGS)."""
  bazel = shlex.split(os.environ.get('SIMCTL_BAZEL', 'bazel'))
  command, flags = args[0], list(args[1:])
  extra = shlex.split(os.environ.get('SIMCTL_BAZEL_FLAGS', ''))
  return bazel + [command] + extra + flags


def _bazel(*args, cwd=None):
  try:
    return subprocess.run(bazel_command(*args), cwd=cwd or workspace_dir(), capture_output=True,
                          text=True)
  except FileNotFoundError:
    raise UsageError('bazel is not installed or not on PATH (tools/setup.sh installs it); '
                     'or pass --binary PATH to run a test binary you built yourself')


def build_target(target, also=(), cwd=None):
  """Builds `target` (and `also`); UsageError for an unknown target."""
  check_label(target)
  print(f'simctl: building {target}', flush=True)
  built = _bazel('build', target, *also, cwd=cwd)
  if built.returncode != 0:
    output = built.stdout + built.stderr
    for line in output.splitlines():
      if re.search(r'no such (target|package)|not a valid|Unable to find package|'
                   r'invalid (label|target)', line):
        raise UsageError(f'unknown target {target}: {line.strip()}')
    sys.stderr.write(output[-4000:])
    raise BuildFailed(f'building {target} failed (bazel exited {built.returncode})')


class BuildFailed(Exception):
  """The target exists but did not build: exit code 1."""


def resolve_binary(target, binary, also=()):
  """The path of the test binary: --binary as given, or built from `target`."""
  if binary:
    if not os.path.isfile(binary):
      raise UsageError(f'--binary {binary}: no such file (build it first, or pass a target)')
    if not os.access(binary, os.X_OK):
      raise UsageError(f'--binary {binary}: the file is not executable')
    return os.path.abspath(binary)
  if not target:
    raise UsageError('name a target (e.g. //my/package:my_sim_test) or pass --binary PATH')
  build_target(target, also)
  # `cquery --output=files` (Bazel 5+) names the outputs; Bazel 4 lacks it,
  # so fall back to the rule's conventional place under bazel-bin.
  query = _bazel('cquery', '--output=files', target)
  files = [line.strip() for line in query.stdout.splitlines() if line.strip()]
  if query.returncode != 0 or not files:
    bin_dir = _bazel('info', 'bazel-bin').stdout.strip()
    package, _, name = target.split('//', 1)[1].partition(':')
    files = [os.path.join(bin_dir, package, name or os.path.basename(package))]
  for path in files:
    full = os.path.join(workspace_dir(), path)
    if os.path.isfile(full) and os.access(full, os.X_OK):
      return full
  raise UsageError(f'{target} built but has no executable (it should be a sim_test or cc_test); '
                   f'looked for: {" ".join(files)}')


def list_tests(binary, gtest_filter=None):
  """The binary's tests as ["Suite.Name", ...]; UsageError if it is not a gtest binary."""
  command = [binary, '--gtest_list_tests']
  if gtest_filter:
    command.append(f'--gtest_filter={gtest_filter}')
  try:
    listed = subprocess.run(command, capture_output=True, text=True, timeout=60,
                            env=child_environment({}), cwd=workspace_dir())
  except (OSError, subprocess.TimeoutExpired) as e:
    raise UsageError(f'cannot run {binary}: {e}')
  if listed.returncode != 0:
    raise UsageError(f'{binary} --gtest_list_tests exited {listed.returncode}: is it a '
                     f'GoogleTest (sim_test) binary?\n{listed.stderr[-2000:]}')
  tests, suite = [], None
  for line in listed.stdout.splitlines():
    text = line.split('#', 1)[0].rstrip()
    if not text:
      continue
    if not line.startswith(' '):
      suite = text.strip()
    elif suite is not None:
      tests.append(suite + text.strip())
  return tests


# Variables a parent (Bazel, a CI runner) may have set that must not reach
# the runs simctl starts: they would shard them again, replay one seed,
# filter their tests (Bazel's --test_filter is TESTBRIDGE_TEST_ONLY), or make
# GoogleTest write over the caller's own XML report.
PARENT_ONLY = ('GTEST_TOTAL_SHARDS', 'GTEST_SHARD_INDEX', 'TEST_TOTAL_SHARDS', 'TEST_SHARD_INDEX',
               'TEST_SHARD_STATUS_FILE', 'JOB_COMPLETION_INDEX', 'XML_OUTPUT_FILE', 'GTEST_OUTPUT',
               'TEST_PREMATURE_EXIT_FILE', 'SIMSCHED_SEED', 'SIMSCHED_TOTAL_SHARDS',
               'SIMSCHED_SHARD_INDEX', 'GTEST_FILTER', 'TESTBRIDGE_TEST_ONLY',
               'TEST_UNDECLARED_OUTPUTS_DIR', 'SIMSCHED_PROGRESS_FILE')


def child_environment(extra, drop=PARENT_ONLY):
  """This process's environment without `drop`, with `extra` set."""
  env = {k: v for k, v in os.environ.items() if k not in drop}
  env.update({k: str(v) for k, v in extra.items()})
  return env


def run_shards(binary, jobs, out_dir, env, args=(), poll=None, poll_seconds=0.1):
  """Runs `jobs` processes of `binary`, shard k with SIMSCHED_TOTAL_SHARDS=jobs,
  SIMSCHED_SHARD_INDEX=k, its output (log.txt, the jsonl files, progress.jsonl)
  in out_dir/shard_k. Calls poll() while they run. Returns the exit codes."""
  processes = []
  for k in range(jobs):
    shard_dir = os.path.join(out_dir, f'shard_{k}')
    os.makedirs(shard_dir, exist_ok=True)
    shard_env = child_environment(dict(env, SIMSCHED_TOTAL_SHARDS=jobs, SIMSCHED_SHARD_INDEX=k,
                                       TEST_UNDECLARED_OUTPUTS_DIR=shard_dir,
                                       SIMSCHED_PROGRESS_FILE=os.path.join(
                                           shard_dir, 'progress.jsonl')))
    log = open(os.path.join(shard_dir, 'log.txt'), 'a')
    processes.append((subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT,
                                       env=shard_env, cwd=workspace_dir()), log))
  try:
    while any(p.poll() is None for p, _ in processes):
      if poll:
        poll()
      time.sleep(poll_seconds)
  except KeyboardInterrupt:
    for p, _ in processes:
      p.terminate()
    raise
  finally:
    for _, log in processes:
      log.close()
  if poll:
    poll()
  return [p.returncode for p, _ in processes]


def read_jsonl(path, member=None, name=None):
  """[(where, object)] of a jsonl file, or of `member` inside a zip; `where` is
  "path:line". `name` says what the file is in errors ("trace file x.jsonl")."""
  try:
    if member is not None:
      with zipfile.ZipFile(path) as archive:
        if member not in archive.namelist():
          return []
        text = archive.read(member).decode('utf-8', errors='replace')
      where = f'{path}!{member}'
    else:
      with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
      where = path
  except OSError as e:
    raise UsageError(f'{name}: cannot read it ({e.strerror})' if name else
                     f'cannot read {path}: {e}')
  except zipfile.BadZipFile as e:
    raise UsageError(f'cannot read {path}: {e}')
  rows = []
  for number, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    try:
      value = json.loads(line)
    except json.JSONDecodeError as e:
      raise UsageError(f'{where}:{number}: not a JSON object ({e.msg}): {line[:120]}')
    if not isinstance(value, dict):
      raise UsageError(f'{where}:{number}: expected a JSON object, got: {line[:120]}')
    rows.append((f'{where}:{number}', value))
  return rows


def whole_number(value):
  """Whether a JSON value is a whole number from 0 to 2^64-1 (not a bool)."""
  return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


def _text(value):
  return isinstance(value, str)


def _flag(value):
  return isinstance(value, bool)


# A simsched_failures.jsonl line (testing/sim_test.cc writes it): the fields
# every reader needs, and the types of the others when present.
_FAILURE_NEEDS = {'test': _text, 'seed': whole_number}
_FAILURE_MAY_HAVE = {'step': whole_number, 'virtual_time_ns': whole_number, 'trace_hash': _text,
                     'strategy': _text, 'regression': _flag, 'site': _text, 'message': _text,
                     'replay_bazel': _text, 'replay_binary': _text}


def check_failure_row(where, row):
  """Raises UsageError naming `where` unless `row` is a failures line."""
  for fields, needed in ((_FAILURE_NEEDS, True), (_FAILURE_MAY_HAVE, False)):
    for key, check in fields.items():
      if key not in row and not needed:
        continue
      if not check(row.get(key)):
        found = 'missing' if key not in row else repr(row[key])[:40]
        raise UsageError(f'{where} is not a simsched_failures.jsonl line ("{key}" is {found}; '
                         f'it needs "test" and "seed")')


def find_outputs(paths, name):
  """(file, zip member or None) for every `name` (a jsonl file) under `paths`
  (files, folders searched recursively, or Bazel's outputs.zip), sorted."""
  found = []
  for path in paths:
    if os.path.isdir(path):
      for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
          if f == name:
            found.append((os.path.join(root, f), None))
          elif f == 'outputs.zip':
            found.append((os.path.join(root, f), name))
    elif os.path.isfile(path):
      if path.endswith('.zip'):
        found.append((path, name))
      elif os.path.basename(path) == name:
        found.append((path, None))
    else:
      raise UsageError(f'{path}: no such file or folder')
  return found


def is_tty(stream):
  return hasattr(stream, 'isatty') and stream.isatty() and os.environ.get('TERM') != 'dumb'
