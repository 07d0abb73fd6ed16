"""simctl fuzz TARGET --time-budget D: CI fuzzing with a failure corpus.

  tools/simctl fuzz //my/pkg:my_sim_test --time-budget 10m --corpus ci/fuzz-corpus

Sweeps random start seeds (from os.urandom, printed) round after round
across J processes until the budget is spent. Every failing seed is reduced
to a signature, the test plus the failure's site and message with numbers
and addresses blanked, and filed in the corpus folder: one JSON file per
signature listing the seeds that hit it. Exit 1 when a signature not in the
corpus before appeared (a new bug), 0 otherwise (known ones are reported,
not failed); 2 for bad input. --promote appends one seed of each new
signature to the target's regression file, <package>/<name>.seeds.
"""

import argparse
import hashlib
import json
import os
import re
import time

from tools.simctl_lib import common
from tools.simctl_lib import merge
from tools.simctl_lib import sweep

_CRASH = re.compile(r'^simsched: CRASH: (.*?) in (\S+) on seed (\d+)(?: \(strategy (\S+)\))?')
_MAX_SEEDS_KEPT = 100


def register(subparsers):
  parser = subparsers.add_parser(
      'fuzz', help='CI mode: random seeds until a time budget; new failures into a corpus',
      description=__doc__.split('\n\n', 1)[1],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  sweep.add_sweep_arguments(parser, 'seeds per test and round (default: %(default)s)')
  parser.set_defaults(seeds=10000)
  parser.add_argument('--time-budget', metavar='D', required=True,
                      help='how long to fuzz in all (30s, 10m, 1h)')
  parser.add_argument('--rounds', type=common.positive_int, metavar='R',
                      help='stop after R rounds even if budget is left (default: no limit)')
  parser.add_argument('--corpus', metavar='DIR', default='simsched_corpus',
                      help='the corpus folder: one file per failure signature '
                      '(default: %(default)s/<target name>)')
  parser.add_argument('--promote', action='store_true',
                      help='append one seed of each new signature to the regression seed file')
  parser.add_argument('--seeds-file', metavar='PATH',
                      help='the regression seed file for --promote (default: the target\'s '
                      '<package>/<name>.seeds in the workspace)')
  parser.set_defaults(run=run)


def normalize(message):
  """The message with what varies between seeds of one bug blanked out."""
  text = re.sub(r'0x[0-9a-fA-F]+|\d+',
                lambda m: '0x?' if m.group().startswith('0x') else 'N', message.strip())
  return re.sub(r'[ \t]+', ' ', text)


def signature(test, site, message):
  key = f'{test}\n{site}\n{normalize(message)}'
  return hashlib.sha256(key.encode()).hexdigest()[:12]


def seeds_file_for(args):
  if args.seeds_file:
    return args.seeds_file
  if not args.target:
    raise common.UsageError('--promote with --binary needs --seeds-file PATH (the regression '
                            'seed file to append to)')
  label = args.target.split('//', 1)[1]
  package, _, name = label.partition(':')
  name = name or os.path.basename(package)
  return os.path.join(common.workspace_dir(), package, name + '.seeds')


def corpus_dir(args):
  if args.corpus != 'simsched_corpus':
    return args.corpus
  name = (args.target.split(':')[-1].split('/')[-1] if args.target
          else os.path.basename(args.binary))
  return os.path.join(args.corpus, name)


def collect(out_dir, shard_dirs_by_round):
  """Every failing seed of the fuzz run: (test, seed, site, message, strategy, replay)."""
  found = []
  for path, member in common.find_outputs([out_dir], 'simsched_failures.jsonl'):
    for where, row in common.read_jsonl(path, member):
      common.check_failure_row(where, row)
      found.append({'test': row.get('test', '?'), 'seed': row.get('seed'),
                    'site': row.get('site', ''), 'message': row.get('message', ''),
                    'strategy': row.get('strategy', ''),
                    'replay': row.get('replay_binary') or row.get('replay_bazel', '')})
  for dirs in shard_dirs_by_round:
    for line in sweep.crash_lines(dirs):
      m = _CRASH.match(line)
      if m:
        found.append({'test': m.group(2), 'seed': int(m.group(3)), 'site': '',
                      'message': f'CRASH: {m.group(1)}', 'strategy': m.group(4) or '',
                      'replay': ''})
      elif found and line.startswith('  SIMSCHED_SEED=') and not found[-1]['replay']:
        found[-1]['replay'] = line.strip()
  return found


def file_into_corpus(corpus, failures):
  """Groups failures by signature into corpus files; returns [(entry, is_new)]."""
  os.makedirs(corpus, exist_ok=True)
  groups = {}
  for f in failures:
    groups.setdefault(signature(f['test'], f['site'], f['message']), []).append(f)
  results = []
  for sig, hits in sorted(groups.items(), key=lambda item: (item[1][0]['test'], item[0])):
    safe = re.sub(r'[^\w.-]', '_', hits[0]['test'])
    path = os.path.join(corpus, f'{safe}-{sig}.json')
    is_new = not os.path.exists(path)
    entry = {'signature': sig, 'test': hits[0]['test'], 'site': hits[0]['site'],
             'message': normalize(hits[0]['message']), 'example': hits[0]['message'],
             'seeds': []}
    if not is_new:
      try:
        with open(path) as f:
          entry = json.load(f)
      except (OSError, ValueError) as e:
        raise common.UsageError(f'corpus file {path} is not valid JSON ({e}); fix or delete it')
    known = {s.get('seed') for s in entry.get('seeds', [])}
    for hit in hits:
      if hit['seed'] not in known and len(entry['seeds']) < _MAX_SEEDS_KEPT:
        entry['seeds'].append({'seed': hit['seed'], 'strategy': hit['strategy'],
                               'replay': hit['replay']})
        known.add(hit['seed'])
    with open(path, 'w') as f:
      json.dump(entry, f, indent=2, sort_keys=True)
      f.write('\n')
    results.append((entry, is_new, path, hits))
  return results


def promote(path, entries):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'a') as f:
    for entry, hit in entries:
      strategy = f', strategy {hit["strategy"]}' if hit['strategy'] else ''
      f.write(f'{entry["test"]} {hit["seed"]}   # simctl fuzz {entry["signature"]}{strategy}: '
              f'{entry["message"].splitlines()[-1][:80] if entry["message"] else ""}\n')


def run(args):
  budget = common.parse_duration(args.time_budget)
  if args.promote:
    seeds_file = seeds_file_for(args)
  binary, tests, _, out_dir = sweep.prepare(args)
  corpus = corpus_dir(args)
  empty_seeds = os.path.join(out_dir, 'no_regression_seeds.seeds')
  open(empty_seeds, 'w').close()
  print(f'simctl: fuzzing {len(tests)} tests of {args.target or binary} for {args.time_budget} '
        f'with {args.jobs} processes, {args.seeds} seeds per test and round; corpus {corpus}',
        flush=True)
  progress = sweep.Progress(None, tests, budget)
  begin = time.monotonic()
  rounds = []
  while True:
    left = budget - (time.monotonic() - begin)
    if left <= 0.05 or (args.rounds and len(rounds) >= args.rounds):
      break
    # Random start seeds, from the OS: the point is to explore new seeds
    # each run; printed so a round can be run again.
    start = int.from_bytes(os.urandom(8), 'little') % (2**64 - args.seeds)
    round_dir = os.path.join(out_dir, f'round_{len(rounds)}')
    print(f'simctl: round {len(rounds)}: seeds {start} .. {start + args.seeds - 1} '
          f'(start from os.urandom)', flush=True)
    env = sweep.sweep_environment(args, args.seeds, start)
    env.update(SIMSCHED_COLLECT_ALL=1, SIMSCHED_REGRESSION_SEEDS=empty_seeds)
    dirs, _ = sweep.run_rounds(binary, tests, args.jobs, round_dir, env, left, progress)
    rounds.append(dirs)
  failures = collect(out_dir, rounds)
  filed = file_into_corpus(corpus, failures) if failures else []
  report = merge.summarize([out_dir], properties=False) if rounds else None
  print(f'simctl: fuzzed {report.seeds_run if report else 0} seeds in {len(rounds)} rounds; '
        f'{len(failures)} failing seeds, {len(filed)} signatures')
  new = []
  for entry, is_new, path, hits in filed:
    print(f'{"NEW  " if is_new else "known"} {entry["test"]}: '
          f'{entry["site"] + ": " if entry["site"] else ""}{entry["message"].splitlines()[-1]}'
          f'\n      {len(hits)} seeds this run, e.g. {hits[0]["seed"]}; {path}'
          f'{chr(10) + "      replay: " + hits[0]["replay"] if hits[0]["replay"] else ""}')
    if is_new:
      new.append((entry, hits[0]))
  if args.promote and new:
    promote(seeds_file, new)
    print(f'simctl: promoted {len(new)} seeds to {seeds_file} (they run first on every run now)')
  if new:
    print(f'simctl: FAILED: {len(new)} new failure signatures (now in the corpus {corpus})')
    return 1
  print('simctl: no new failure signatures' + (' (known ones recurred)' if filed else ''))
  return 0
