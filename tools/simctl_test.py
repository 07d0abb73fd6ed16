"""tools/simctl's sweep, fuzz, merge and test subcommands, end to end.

Runs `python3 -m tools.simctl_lib.main` as a user would, against the real
probe binary //testing/internal:simctl_probe_sim_test (from runfiles, so no
bazel runs inside the test): SimctlProbe.Passes passes with a sometimes-
property; SimctlProbe.LostUpdate fails on every seed ending in 3;
SimctlProbe.RareCrashRecovery on seeds 11, 36, 61, ... (seed % 25 == 11).
Bazel itself is replaced by a fake script where a test needs it (an unknown
target, `simctl test TARGETS`).
"""

import json
import os
import stat
import subprocess
import sys
import unittest
import zipfile

RUNFILES = os.path.join(os.environ.get('TEST_SRCDIR', ''), os.environ.get('TEST_WORKSPACE', ''))
CRASH_PROBE = os.path.join(RUNFILES, 'testing/internal/crash_sim_test')
RUN_TESTS = os.path.join(RUNFILES, 'tools/run_tests.sh')

sys.path.insert(0, RUNFILES)
from tools.simctl_lib import fuzz  # pylint: disable=wrong-import-position
from tools.simctl_lib import sweep  # pylint: disable=wrong-import-position
from tools.simctl_test_support import (  # pylint: disable=wrong-import-position
    PROBE, PROPERTY_REPORT, new_dir, run_machines, run_shard)


def write_script(path, text):
  with open(path, 'w') as f:
    f.write(text)
  os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
  return path


class Result:
  def __init__(self, done):
    self.code = done.returncode
    self.out = done.stdout
    self.err = done.stderr

  def __repr__(self):
    return f'exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}'


def simctl(*args, env=None, cwd=None):
  full_env = {k: v for k, v in os.environ.items() if not k.startswith('SIMSCHED_')}
  full_env.update(PYTHONPATH=RUNFILES, SIMCTL_PROPERTY_REPORT=PROPERTY_REPORT,
                  SIMCTL_WORKSPACE=cwd or RUNFILES)
  full_env.update(env or {})
  done = subprocess.run([sys.executable, '-m', 'tools.simctl_lib.main', *map(str, args)],
                        capture_output=True, text=True, env=full_env, cwd=cwd or RUNFILES,
                        timeout=120)
  return Result(done)


class HelpAndArgumentsTest(unittest.TestCase):

  def test_help_lists_every_subcommand(self):
    r = simctl('--help')
    self.assertEqual(r.code, 0, r)
    for word in ('sweep', 'fuzz', 'merge', 'test [TARGETS...]'):
      self.assertIn(word, r.out)
    r = simctl('sweep', '--help')
    self.assertEqual(r.code, 0, r)
    for flag in ('--seeds', '--start', '--jobs', '--time-budget', '--strategy', '--collect-all'):
      self.assertIn(flag, r.out)

  def test_bad_arguments_exit_2_with_a_message(self):
    cases = [
        (('frobnicate',), 'invalid choice'),
        (('sweep',), 'name a target'),
        (('sweep', 'my_sim_test'), 'is not one Bazel target'),
        (('sweep', '//...'), 'is not one Bazel target'),
        (('sweep', '--binary', PROBE, '--seeds', '0'), 'must be at least 1'),
        (('sweep', '--binary', PROBE, '--seeds', 'many'), 'is not a whole number'),
        (('sweep', '--binary', PROBE, '--jobs', '-2'), 'must be at least 1'),
        (('sweep', '--binary', PROBE, '--start', '-1'), 'is not a seed'),
        (('sweep', '--binary', PROBE, '--time-budget', '10'), 'is not a duration'),
        (('sweep', '--binary', PROBE, '--time-budget', '0s'), 'more than zero'),
        (('sweep', '--binary', PROBE, '--start', str(2**64 - 3), '--seeds', '5'),
         'runs past the largest seed'),
        (('sweep', '--binary', '/no/such/binary'), 'no such file'),
        (('sweep', '--binary', '/bin/false'), 'is it a GoogleTest'),
        (('sweep', '--binary', PROBE, '--filter', 'Nothing.Matches'), 'has no tests matching'),
        (('fuzz', '--binary', PROBE), 'the following arguments are required: --time-budget'),
        (('fuzz', '--binary', PROBE, '--time-budget', '1s', '--promote'), '--seeds-file'),
        (('merge',), 'the following arguments are required'),
        (('merge', '/no/such/folder'), 'no such file or folder'),
    ]
    for args, message in cases:
      with self.subTest(args=args):
        r = simctl(*args)
        self.assertEqual(r.code, 2, r)
        self.assertIn(message, r.err, r)
        self.assertNotIn('Traceback', r.err, r)

  def test_a_binary_that_is_not_executable(self):
    path = os.path.join(new_dir('plain'), 'not_a_program')
    open(path, 'w').close()
    r = simctl('sweep', '--binary', path)
    self.assertEqual(r.code, 2, r)
    self.assertIn('not executable', r.err)

  def test_unknown_target_is_exit_2_naming_it(self):
    fake = write_script(os.path.join(new_dir('bazel'), 'bazel'), '#!/bin/sh\n'
                        'echo "ERROR: Skipping \'//no/such:target\': no such package \'no/such\'"'
                        ' >&2\nexit 1\n')
    r = simctl('sweep', '//no/such:target', env={'SIMCTL_BAZEL': fake})
    self.assertEqual(r.code, 2, r)
    self.assertIn('unknown target //no/such:target', r.err)
    self.assertIn('no such package', r.err)

  def test_a_strategy_the_harness_rejects_is_exit_2(self):
    r = simctl('sweep', '--binary', PROBE, '--strategy', 'sideways', '--jobs', '1', '--seeds',
               '2', '--filter', 'SimctlProbe.Passes', '--out', new_dir('strategy'))
    self.assertEqual(r.code, 2, r)
    self.assertIn('SIMSCHED_STRATEGY="sideways" is not valid', r.err)

  def test_an_output_folder_in_use_is_refused(self):
    out = new_dir('used')
    open(os.path.join(out, 'simsched_summary.jsonl'), 'w').close()
    r = simctl('sweep', '--binary', PROBE, '--out', out)
    self.assertEqual(r.code, 2, r)
    self.assertIn('is not empty', r.err)


class SweepTest(unittest.TestCase):

  def test_sweep_finds_the_planted_bugs_and_prints_replay_commands(self):
    out = new_dir('sweep')
    r = simctl('sweep', '--binary', PROBE, '--seeds', 30, '--jobs', 3, '--collect-all',
               '--out', out)
    self.assertEqual(r.code, 1, r)
    for test in ('Passes', 'LostUpdate', 'RareCrashRecovery'):
      self.assertIn(f'SimctlProbe.{test}: 30 of 30 seeds from 0 ran once each across 3 shards',
                    r.out)
    failing = [(test, seed) for test, seeds in (('LostUpdate', (3, 13, 23)),
                                                ('RareCrashRecovery', (11,))) for seed in seeds]
    for test, seed in failing:
      self.assertIn(f'FAILED SimctlProbe.{test} seed {seed} (strategy ', r.out)
      self.assertIn(f'replay: SIMSCHED_SEED={seed} SIMSCHED_STRATEGY=', r.out)
    self.assertEqual(r.out.count('FAILED SimctlProbe.'), len(failing), r)
    self.assertIn('lost update: counter is 1003, expected 1004', r.out)
    self.assertIn('"a fifth of the seeds"', r.out)  # the property table
    # One folder per process, each with its own files.
    for k in range(3):
      self.assertTrue(os.path.isfile(os.path.join(out, f'shard_{k}', 'simsched_summary.jsonl')))
    # Not a terminal: plain progress lines, no carriage returns.
    self.assertIn('seeds/s', r.out)
    self.assertNotIn('\r', r.out)

  def test_without_collect_all_each_shard_stops_at_its_first_failure(self):
    r = simctl('sweep', '--binary', PROBE, '--seeds', 30, '--jobs', 3, '--filter', '*LostUpdate',
               '--out', new_dir('stop'))
    self.assertEqual(r.code, 1, r)
    self.assertIn('the shard stopped at its first failing seed, 3', r.out)
    self.assertIn('FAILED SimctlProbe.LostUpdate seed 13', r.out)

  def test_start_and_strategy_reach_every_shard(self):
    r = simctl('sweep', '--binary', PROBE, '--seeds', 20, '--start', 100, '--jobs', 2,
               '--strategy', 'fifo', '--collect-all', '--filter', '*LostUpdate',
               '--out', new_dir('start'))
    self.assertEqual(r.code, 1, r)
    self.assertIn('20 of 20 seeds from 100 ran once each across 2 shards', r.out)
    self.assertIn('FAILED SimctlProbe.LostUpdate seed 103 (strategy fifo)', r.out)
    self.assertIn('FAILED SimctlProbe.LostUpdate seed 113 (strategy fifo)', r.out)

  def test_a_parents_test_filter_does_not_reach_the_sweep(self):
    # Bazel's --test_filter reaches a test as TESTBRIDGE_TEST_ONLY; a sweep
    # started from inside such a test still runs the tests it names.
    r = simctl('sweep', '--binary', PROBE, '--seeds', 20, '--jobs', 2, '--out',
               new_dir('bridge'), env={'TESTBRIDGE_TEST_ONLY': 'Nope.*'})
    self.assertEqual(r.code, 1, r)  # SimctlProbe.LostUpdate fails on seeds ending in 3
    self.assertIn('FAILED SimctlProbe.LostUpdate seed 3', r.out)

  def test_a_passing_sweep_exits_0(self):
    r = simctl('sweep', '--binary', PROBE, '--jobs', 2, '--filter', 'SimctlProbe.Passes',
               '--out', new_dir('pass'))
    self.assertEqual(r.code, 0, r)
    self.assertIn('40 of 40 seeds from 0 ran once each across 2 shards', r.out)
    self.assertIn('simctl: PASSED', r.out)

  def test_the_time_budget_stops_an_endless_sweep(self):
    r = simctl('sweep', '--binary', PROBE, '--seeds', 10**15, '--jobs', 2, '--time-budget',
               '1s', '--filter', 'SimctlProbe.Passes', '--out', new_dir('budget'))
    self.assertEqual(r.code, 0, r)  # running out of time is not a failure
    self.assertIn('did not run: the time budget ran out', r.out)


  def test_a_crashing_seed_is_reported_with_its_replay_line(self):
    # CrashTest.SegfaultOnSeed3 segfaults on seed 3: shard 1 of 2 dies there.
    r = simctl('sweep', '--binary', CRASH_PROBE, '--seeds', 10, '--jobs', 2, '--filter',
               'CrashTest.SegfaultOnSeed3', '--out', new_dir('crash'))
    self.assertEqual(r.code, 1, r)
    self.assertIn('simsched: CRASH: SIGSEGV', r.out)
    self.assertIn('SIMSCHED_SEED=3 ', r.out)
    self.assertIn('CrashTest.SegfaultOnSeed3: shard 1 of 2 is missing', r.out)
    self.assertIn('simctl: FAILED', r.out)


class ProgressLineTest(unittest.TestCase):

  class Terminal:
    def __init__(self):
      self.text = ''

    def isatty(self):
      return True

    def write(self, text):
      self.text += text

    def flush(self):
      pass

  def test_a_terminal_gets_one_line_redrawn_in_place(self):
    shard = new_dir('progress')
    terminal = self.Terminal()
    os.environ['TERM'] = 'xterm'  # Bazel's test environment may say dumb
    progress = sweep.Progress(100, ['S.T', 'S.U'], stream=terminal)
    progress.begin(0, 'S.T', [shard])
    # Written after begin(): lines already there belong to an earlier round.
    with open(os.path.join(shard, 'progress.jsonl'), 'w') as f:
      f.write('{"test": "S.T", "done": 50, "total": 100, "failed": 2}\n')
    progress.poll()
    self.assertTrue(terminal.text.startswith('\r\033[K'), terminal.text)
    self.assertIn('simctl: [1/2] S.T: 50/200 seeds, ', terminal.text)
    self.assertIn('2 failed, ETA ', terminal.text)
    self.assertNotIn('\n', terminal.text)
    progress.end_round()
    self.assertTrue(terminal.text.endswith('\n'))


class FuzzTest(unittest.TestCase):

  def test_fuzzing_stops_when_the_budget_is_spent(self):
    r = simctl('fuzz', '--binary', PROBE, '--time-budget', '1s', '--seeds', 100000, '--jobs', 2,
               '--filter', 'SimctlProbe.Passes', '--corpus', new_dir('budget-corpus'),
               '--out', new_dir('fuzz-budget'))
    self.assertEqual(r.code, 0, r)
    self.assertIn('round 0: seeds ', r.out)
    self.assertIn('no new failure signatures', r.out)

  def test_a_crash_is_a_signature_of_its_own(self):
    shard = new_dir('crashed')
    with open(os.path.join(shard, 'log.txt'), 'w') as f:
      f.write('simsched: CRASH: SIGSEGV (segmentation fault) in Store.Compacts on seed 3 '
              '(strategy random) at step 4, virtual time +0ns\nreplay this seed:\n'
              '  bazel test //store:store_sim_test --test_env=SIMSCHED_SEED=3\n'
              '  SIMSCHED_SEED=3 bazel-bin/store/store_sim_test --gtest_filter=Store.Compacts\n')
    found = fuzz.collect(shard, [[shard]])
    self.assertEqual(len(found), 1, found)
    self.assertEqual((found[0]['test'], found[0]['seed'], found[0]['strategy']),
                     ('Store.Compacts', 3, 'random'))
    self.assertEqual(found[0]['message'], 'CRASH: SIGSEGV (segmentation fault)')
    self.assertTrue(found[0]['replay'].startswith('SIMSCHED_SEED=3 bazel-bin/store'))

  def test_signatures_ignore_numbers_and_addresses(self):
    a = fuzz.signature('T.A', 'x.cc:3', 'lost update: counter is 1003 at 0x7ffd1234')
    b = fuzz.signature('T.A', 'x.cc:3', 'lost update: counter is 77 at 0xdeadbeef')
    self.assertEqual(a, b)
    self.assertNotEqual(a, fuzz.signature('T.A', 'x.cc:4', 'lost update: counter is 1'))
    self.assertNotEqual(a, fuzz.signature('T.B', 'x.cc:3', 'lost update: counter is 1'))
    self.assertEqual(fuzz.normalize('entry 42 at 0xAB12'), 'entry N at 0x?')

  def test_new_signatures_fail_known_ones_do_not_and_promote_appends_seeds(self):
    corpus = new_dir('corpus')
    seeds_file = os.path.join(new_dir('seeds'), 'probe.seeds')
    # One round (a budget no machine runs out of): every test gets its 200
    # seeds, so both bugs are hit however slow the build (ASan) or machine.
    r = simctl('fuzz', '--binary', PROBE, '--time-budget', '10m', '--rounds', 1, '--seeds', 200,
               '--jobs', 2, '--corpus', corpus, '--promote', '--seeds-file', seeds_file,
               '--out', new_dir('fuzz1'))
    self.assertEqual(r.code, 1, r)
    self.assertIn('(start from os.urandom)', r.out)
    self.assertIn('2 new failure signatures', r.out)
    files = sorted(os.listdir(corpus))
    self.assertEqual(len(files), 2, files)
    self.assertTrue(files[0].startswith('SimctlProbe.LostUpdate-'), files)
    self.assertTrue(files[1].startswith('SimctlProbe.RareCrashRecovery-'), files)
    with open(os.path.join(corpus, files[0])) as f:
      entry = json.load(f)
    self.assertEqual(entry['message'].splitlines()[-1], 'lost update: counter is N, expected N')
    self.assertTrue(all(s['seed'] % 10 == 3 for s in entry['seeds']), entry['seeds'])
    with open(seeds_file) as f:
      promoted = [line.split() for line in f if line.strip()]
    self.assertEqual([p[0] for p in promoted],
                     ['SimctlProbe.LostUpdate', 'SimctlProbe.RareCrashRecovery'])
    self.assertEqual(int(promoted[0][1]) % 10, 3)

    # The promoted seed is a regression seed now: it runs, and fails, first.
    out = new_dir('regression')
    run_shard(out, {'SIMSCHED_REGRESSION_SEEDS': seeds_file, 'SIMSCHED_ITERATIONS': 1},
              'SimctlProbe.LostUpdate').wait()
    with open(os.path.join(out, 'simsched_failures.jsonl')) as f:
      row = json.loads(f.readline())
    self.assertEqual(row['seed'], int(promoted[0][1]))
    self.assertTrue(row['regression'])

    # Same bugs again: known signatures, exit 0.
    r = simctl('fuzz', '--binary', PROBE, '--time-budget', '10m', '--rounds', 1, '--seeds', 200,
               '--jobs', 2, '--corpus', corpus, '--out', new_dir('fuzz2'))
    self.assertEqual(r.code, 0, r)
    self.assertIn('known SimctlProbe.LostUpdate', r.out)
    self.assertIn('no new failure signatures', r.out)
    self.assertEqual(len(os.listdir(corpus)), 2)


class MergeTest(unittest.TestCase):
  """K shard processes with their own folders, as K machines would run them."""

  def test_shards_of_separate_machines_merge_into_one_report(self):
    dirs = run_machines(new_dir('machines'), 3, {'SIMSCHED_ITERATIONS': 30},
                        'SimctlProbe.Passes:SimctlProbe.LostUpdate')
    r = simctl('merge', *dirs)
    self.assertEqual(r.code, 1, r)  # LostUpdate failed
    self.assertIn('SimctlProbe.Passes: 30 of 30 seeds from 0 ran once each across 3 shards', r.out)
    self.assertIn('"a fifth of the seeds"', r.out)
    self.assertIn('FAILED SimctlProbe.LostUpdate seed 3', r.out)
    self.assertIn('replay: SIMSCHED_SEED=3 ', r.out)

  def test_a_complete_passing_sweep_merges_with_exit_0(self):
    dirs = run_machines(new_dir('passing'), 4, {'SIMSCHED_ITERATIONS': 30})
    r = simctl('merge', *dirs)
    self.assertEqual(r.code, 0, r)
    self.assertIn('30 of 30 seeds from 0 ran once each across 4 shards', r.out)
    self.assertIn('simctl merge: OK', r.out)

  def test_kubernetes_job_completion_index_is_the_shard_index(self):
    dirs = run_machines(new_dir('k8s'), 3, {'SIMSCHED_ITERATIONS': 30},
                        index_variable='JOB_COMPLETION_INDEX')
    r = simctl('merge', *dirs)
    self.assertEqual(r.code, 0, r)
    self.assertIn('30 of 30 seeds from 0 ran once each across 3 shards', r.out)

  def test_a_missing_shard_names_its_seeds(self):
    dirs = run_machines(new_dir('missing'), 3, {'SIMSCHED_ITERATIONS': 30})
    r = simctl('merge', dirs[0], dirs[2])
    self.assertEqual(r.code, 1, r)
    self.assertIn('shard 1 of 3 is missing (no summary line): seeds 1, 4, 7, ... '
                  '(10 seeds, every 3rd from 1 to 28) never ran', r.out)

  def test_a_shard_counted_twice_is_an_error(self):
    dirs = run_machines(new_dir('double'), 2, {'SIMSCHED_ITERATIONS': 10})
    copy = new_dir('copy')
    with open(os.path.join(dirs[1], 'simsched_summary.jsonl')) as f:
      text = f.read()
    with open(os.path.join(copy, 'simsched_summary.jsonl'), 'w') as f:
      f.write(text)
    r = simctl('merge', *dirs, copy)
    self.assertEqual(r.code, 1, r)
    self.assertIn('shard 1 of 2 was counted 2 times', r.out)
    self.assertIn('seeds 1, 3, 5, 7, 9 ran more than once', r.out)

  def test_shards_of_different_sweeps_are_an_error(self):
    base = new_dir('different')
    first = run_machines(os.path.join(base, 'a'), 2, {'SIMSCHED_ITERATIONS': 10})
    second = run_machines(os.path.join(base, 'b'), 2,
                          {'SIMSCHED_ITERATIONS': 10, 'SIMSCHED_START_SEED': 500})
    r = simctl('merge', first[0], second[1])
    self.assertEqual(r.code, 1, r)
    self.assertIn('come from different sweeps', r.out)

  def test_seeds_a_shard_did_not_reach_are_an_error(self):
    dirs = run_machines(new_dir('stopped'), 2, {'SIMSCHED_ITERATIONS': 30},
                        'SimctlProbe.LostUpdate')
    r = simctl('merge', *dirs)
    self.assertEqual(r.code, 1, r)
    self.assertIn('ERROR: SimctlProbe.LostUpdate: shard 1 of 2: seeds 5, 7, 9, ... ', r.out)
    self.assertIn('stopped at its first failing seed, 3', r.out)

  def test_bazel_outputs_zip_files_are_read(self):
    dirs = run_machines(new_dir('zip'), 2, {'SIMSCHED_ITERATIONS': 10})
    testlogs = new_dir('testlogs')
    for k, d in enumerate(dirs):
      outputs = os.path.join(testlogs, f'shard_{k + 1}_of_2', 'test.outputs')
      os.makedirs(outputs)
      with zipfile.ZipFile(os.path.join(outputs, 'outputs.zip'), 'w') as archive:
        archive.write(os.path.join(d, 'simsched_summary.jsonl'), 'simsched_summary.jsonl')
    r = simctl('merge', testlogs)
    self.assertEqual(r.code, 0, r)
    self.assertIn('10 of 10 seeds from 0 ran once each across 2 shards', r.out)

  def test_a_crashing_property_report_is_an_error_not_a_failed_property(self):
    dirs = run_machines(new_dir('crashing_tool'), 1, {'SIMSCHED_ITERATIONS': 5})
    tool = write_script(os.path.join(new_dir('tool'), 'property_report'),
                        '#!/bin/sh\necho "about to crash" >&2\nkill -SEGV $$\n')
    r = simctl('merge', *dirs, env={'SIMCTL_PROPERTY_REPORT': tool})
    self.assertEqual(r.code, 1, r)
    self.assertIn('(a crash); the property table is missing: about to crash', r.out)
    self.assertNotIn('Traceback', r.err, r)

  def test_malformed_and_foreign_lines_are_exit_2_naming_file_and_line(self):
    good = run_machines(new_dir('good'), 1, {'SIMSCHED_ITERATIONS': 5})[0]
    with open(os.path.join(good, 'simsched_summary.jsonl')) as f:
      line = f.readline()
    old = json.loads(line)
    del old['start_seed']
    cases = [
        ('simsched_summary.jsonl', line + '{"test": "T", "seeds_run": \n', ':2: not a JSON object'),
        ('simsched_summary.jsonl', '[1, 2]\n', ':1: expected a JSON object'),
        ('simsched_summary.jsonl', '{"test": "T"}\n', 'not a simsched summary line'),
        ('simsched_summary.jsonl', json.dumps(old) + '\n', 'older simsched'),
        ('simsched_failures.jsonl', 'oops\n', 'simsched_failures.jsonl:1: not a JSON object'),
    ]
    for name, text, message in cases:
      with self.subTest(message=message):
        d = new_dir('bad')
        if name != 'simsched_summary.jsonl':
          with open(os.path.join(d, 'simsched_summary.jsonl'), 'w') as f:
            f.write(line)
        with open(os.path.join(d, name), 'w') as f:
          f.write(text)
        r = simctl('merge', d)
        self.assertEqual(r.code, 2, r)
        self.assertIn(message, r.err, r)
        self.assertNotIn('Traceback', r.err, r)
    r = simctl('merge', new_dir('empty'))
    self.assertEqual(r.code, 2, r)
    self.assertIn('no simsched_summary.jsonl under', r.err)


class TestTargetsTest(unittest.TestCase):
  """tools/run_tests.sh (simctl test): targets and flags reach bazel apart."""

  def run_tests(self, *args):
    bin_dir = new_dir('fakebazel')
    log = os.path.join(bin_dir, 'calls')
    write_script(os.path.join(bin_dir, 'bazel'), f'#!/bin/sh\necho "$@" >> {log}\n'
                 'case "$1" in info) echo /nonexistent ;; '
                 'test) echo "//a:a_test                PASSED in 0.1s" ;; esac\n')
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ['PATH'])
    done = subprocess.run(['bash', RUN_TESTS, *args], capture_output=True, text=True, env=env)
    with open(log) as f:
      return done, f.read().splitlines()

  def test_no_targets_means_every_test(self):
    done, calls = self.run_tests('--config=asan')
    self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
    self.assertEqual(calls[0], 'test --build_tests_only --test_summary=short --config=asan -- //...')
    self.assertIn('1 passed, 0 failed', done.stdout)

  def test_targets_and_flags_are_told_apart(self):
    done, calls = self.run_tests('//a:a_test', '--config=tsan', '//b/...', '-//b:slow_test')
    self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
    self.assertEqual(calls[0], 'test --build_tests_only --test_summary=short --config=tsan -- '
                     '//a:a_test //b/... -//b:slow_test')
    self.assertEqual(calls[1], 'info --config=tsan bazel-testlogs')


if __name__ == '__main__':
  unittest.main()
