"""simctl merge DIR...: one report from the shards of a sweep run apart.

  tools/simctl merge shard-0/ shard-1/ shard-2/     # folders, files, outputs.zip

Reads every simsched_summary.jsonl and simsched_failures.jsonl under the
given folders (or in Bazel's outputs.zip), and checks, per test, that every
seed of the sweep's range ran exactly once: a missing shard, seeds a shard
did not get to, a shard counted twice or shards of different sweeps are
errors that name the seeds. Prints the seeds covered, every failing seed
with its replay command, and the property table (//testing:property_report
over all shards). Exit 0: complete and passing; 1: a seed failed, a seed is
missing or doubled, or a sometimes-property was never satisfied; 2: bad
input (no such folder, no summary files, a malformed line).
"""

import argparse
import os
import subprocess

from tools.simctl_lib import common

_MASK = 2**64 - 1
_REQUIRED = {'test': str, 'shard_index': int, 'total_shards': int, 'seeds_run': int,
             'regression_seeds': int, 'seeds': list, 'failed_seeds': list}
_RANGE_KEYS = ('start_seed', 'iterations')


def register(subparsers):
  parser = subparsers.add_parser(
      'merge', help='combine the shards of a sweep into one report; check every seed ran once',
      description=__doc__.split('\n\n', 1)[1],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('paths', nargs='+', metavar='DIR',
                      help='shard output folders, simsched_summary.jsonl files or outputs.zip')
  parser.set_defaults(run=run)


class Report:
  def __init__(self):
    self.lines = 0
    self.files = 0
    self.coverage = []   # one line per test
    self.errors = []     # coverage problems: exit 1
    self.stopped = []    # seeds not run for a reason the harness gave (budget, failure)
    self.notes = []
    self.failures = []   # rows of simsched_failures.jsonl
    self.seeds_run = 0
    self.properties = ''
    self.properties_failed = False


def _seeds_text(start, step, count, limit=8):
  """'seeds 5, 8, 11 (3 seeds)' or 'seeds 5, 8, ... (every 3rd from 5 to 302, 100 seeds)'."""
  if count <= limit:
    listed = ', '.join(str((start + j * step) & _MASK) for j in range(count))
    return f'seed{"s" if count != 1 else ""} {listed}'
  first = ', '.join(str((start + j * step) & _MASK) for j in range(3))
  every = 'each' if step == 1 else f'every {step}{"nd" if step == 2 else "rd" if step == 3 else "th"}'
  return (f'seeds {first}, ... ({count} seeds, {every} from {start & _MASK} to '
          f'{(start + (count - 1) * step) & _MASK})')


def _share(start, iterations, index, total):
  """Shard `index`'s seeds as (first, step, count): SweepSeedCount/SweepSeedAt."""
  count = 0 if iterations <= index else (iterations - index - 1) // total + 1
  return (start + index) & _MASK, total, count


def _check_row(where, row):
  for key, kind in _REQUIRED.items():
    if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
      raise common.UsageError(f'{where}: not a simsched summary line: "{key}" is missing or not '
                              f'a {kind.__name__}')
  for key in _RANGE_KEYS:
    if not isinstance(row.get(key), int):
      raise common.UsageError(
          f'{where}: the line has no "{key}": it was written by an older simsched that does not '
          'record the sweep\'s range; rerun the shards with this version')


def _check_test(report, test, rows):
  sweeps = {(r['total_shards'], r['start_seed'], r['iterations']) for _, r in rows}
  if len(sweeps) > 1:
    described = '; '.join(f'{n} shards, {it} seeds from {s}' for n, s, it in sorted(sweeps))
    report.errors.append(f'{test}: the summary lines come from different sweeps ({described}); '
                         'merge the shards of one sweep at a time')
    return
  total, start, iterations = sweeps.pop()
  by_index = {}
  for where, row in rows:
    by_index.setdefault(row['shard_index'], []).append((where, row))
  ran = 0
  problems = len(report.errors) + len(report.stopped)
  for index in range(total):
    first, step, count = _share(start, iterations, index, total)
    found = by_index.get(index, [])
    if not found:
      report.errors.append(f'{test}: shard {index} of {total} is missing (no summary line): '
                           f'{_seeds_text(first, step, count)} never ran')
      continue
    if len(found) > 1:
      report.errors.append(
          f'{test}: shard {index} of {total} was counted {len(found)} times '
          f'({", ".join(w for w, _ in found)}): {_seeds_text(first, step, min(count, found[0][1]["seeds_run"]))} '
          'ran more than once; merge each shard\'s output once')
    where, row = found[0]
    regression = row['regression_seeds'] if index == 0 else 0
    sweep_run = max(row['seeds_run'] - regression, 0)
    ran += sweep_run
    if sweep_run > count:
      report.errors.append(f'{where}: {test} shard {index} of {total} ran {sweep_run} seeds, '
                           f'more than its share of {count}')
    listed = row['seeds'][regression:]
    for j, seed in enumerate(listed[:count]):
      if seed != (first + j * step) & _MASK:
        report.errors.append(f'{where}: {test} shard {index} of {total} ran seed {seed} where '
                             f'its share has seed {(first + j * step) & _MASK}')
        break
    missing = count - min(sweep_run, count)
    if missing > 0:
      text = _seeds_text((first + sweep_run * step) & _MASK, step, missing)
      last = listed[sweep_run - 1] if 0 < sweep_run <= len(listed) else None
      if row.get('time_budget_exhausted'):
        report.stopped.append(f'{test}: shard {index} of {total}: {text} did not run: the time '
                              'budget ran out')
      elif last is not None and last in row['failed_seeds']:
        report.stopped.append(f'{test}: shard {index} of {total}: {text} did not run: the shard '
                              f'stopped at its first failing seed, {last} (--collect-all, or '
                              'SIMSCHED_COLLECT_ALL=1, runs them)')
      else:
        report.errors.append(f'{test}: shard {index} of {total}: {text} did not run (the process '
                             'crashed or was stopped?)')
  for index in sorted(by_index):
    if index >= total:
      report.errors.append(f'{test}: a summary line says shard {index} of {total}')
  regression = sum(r['regression_seeds'] for _, r in by_index.get(0, [])[:1])
  failed = sum(len(r['failed_seeds']) for _, r in rows)
  complete = len(report.errors) + len(report.stopped) == problems
  report.coverage.append(
      f'{test}: {ran} of {iterations} seeds from {start} ran'
      f'{" once each" if complete else ""} across {total} shard{"s" if total != 1 else ""}'
      f'{f" (+{regression} regression seeds)" if regression else ""}, {failed} failed')


def report_tool_targets():
  """What `simctl sweep` builds beside the target for the property table:
  //testing:property_report when sweeping inside simsched's own workspace."""
  if os.path.samefile(common.workspace_dir(), common.simsched_root()):
    return ['//testing:property_report']
  return []


def _property_report_binary():
  """//testing:property_report: $SIMCTL_PROPERTY_REPORT, else built in the
  workspace or in simsched's checkout (building it there if need be)."""
  if os.environ.get('SIMCTL_PROPERTY_REPORT'):
    return os.environ['SIMCTL_PROPERTY_REPORT']
  root = common.simsched_root()
  for base in (common.workspace_dir(), root):
    built = os.path.join(base, 'bazel-bin', 'testing', 'property_report')
    if os.path.isfile(built):
      return built
  if not os.path.isfile(os.path.join(root, 'testing', 'property_report.cc')):
    return None
  try:
    common.build_target('//testing:property_report', cwd=root)
  except (common.UsageError, common.BuildFailed):
    return None
  built = os.path.join(root, 'bazel-bin', 'testing', 'property_report')
  return built if os.path.isfile(built) else None


def summarize(paths, properties=True):
  """Reads and checks the shards under `paths`; returns a Report (with the
  property table unless `properties` is false)."""
  report = Report()
  summaries = common.find_outputs(paths, 'simsched_summary.jsonl')
  rows_by_test = {}
  has_properties = False
  for path, member in summaries:
    rows = common.read_jsonl(path, member)
    if rows:
      report.files += 1
    for where, row in rows:
      if 'program' in row and 'test' not in row:
        # The whole program's declared properties (written after its last
        # test): property_report reads them for the table below.
        has_properties |= bool(row.get('properties'))
        continue
      _check_row(where, row)
      report.lines += 1
      if row.get('single_seed'):
        report.notes.append(f'{where}: {row["test"]}: a replay of one seed, not part of a sweep '
                            '(left out)')
        continue
      report.seeds_run += row['seeds_run']
      has_properties |= bool(row.get('properties'))
      rows_by_test.setdefault(row['test'], []).append((where, row))
  if not report.lines:
    raise common.UsageError(f'no simsched_summary.jsonl under {" ".join(paths)}: give the '
                            'folders the shards wrote (TEST_UNDECLARED_OUTPUTS_DIR) or Bazel\'s '
                            'bazel-testlogs/<package>/<target>')
  for test in sorted(rows_by_test):
    _check_test(report, test, rows_by_test[test])
  for path, member in common.find_outputs(paths, 'simsched_failures.jsonl'):
    for where, row in common.read_jsonl(path, member):
      common.check_failure_row(where, row)
      report.failures.append(row)
  report.failures.sort(key=lambda r: (r['test'], r['seed']))
  if has_properties and properties:
    tool = _property_report_binary()
    if tool is None:
      report.notes.append('properties: //testing:property_report is not built; '
                          'bazel build //testing:property_report for the property table')
    else:
      done = subprocess.run([tool, *paths], capture_output=True, text=True)
      if done.returncode == 2:
        raise common.UsageError(f'property_report: {done.stderr.strip()}')
      if done.returncode not in (0, 1):  # a signal: its bug, not a failed property
        report.errors.append(f'{tool} ended with exit status {done.returncode} (a crash); the '
                             f'property table is missing: {done.stderr.strip()[-500:]}')
      report.properties = done.stdout
      report.properties_failed = done.returncode == 1
  return report


def failure_line(row):
  message = (row.get('message') or '').strip().splitlines()
  what = ': '.join(x for x in (row.get('site', ''), message[-1] if message else '') if x)
  replay = row.get('replay_binary') or row.get('replay_bazel') or ''
  return (f'FAILED {row["test"]} seed {row["seed"]}'
          f'{" (strategy " + row["strategy"] + ")" if row.get("strategy") else ""}'
          f'{": " + what if what else ""}\n  replay: {replay}')


def print_report(report, stopped_is_error=True):
  print(f'simctl: {report.lines} summary lines from {report.files} files')
  for line in report.coverage:
    print(f'  {line}')
  for line in report.stopped:
    print(f'{"ERROR" if stopped_is_error else "note"}: {line}')
  for line in report.errors:
    print(f'ERROR: {line}')
  for line in report.notes:
    print(f'note: {line}')
  if report.properties:
    print(report.properties, end='' if report.properties.endswith('\n') else '\n')
  for row in report.failures:
    print(failure_line(row))


def run(args):
  report = summarize(args.paths)
  print_report(report)
  bad = report.errors or report.stopped or report.failures or report.properties_failed
  print(f'simctl merge: {"FAILED" if bad else "OK"}: {report.seeds_run} seeds run, '
        f'{len(report.failures)} failing seeds, {len(report.errors) + len(report.stopped)} '
        'coverage problems')
  return 1 if bad else 0
