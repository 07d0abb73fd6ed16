"""Tests of simctl replay, trace and report on real runs.

The sim_test binaries come through runfiles: the bundled bank example and
//testing/internal:trace_probe_sim_test (labeled tasks, a session, a buggify
fault, and a failure inside a task on every seed). The report's headless
Chromium test skips, with a message, where Debian's `chromium` is missing
(tools/setup.sh --with-chromium installs it).
"""

import contextlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

from tools.simctl_lib import main
from tools.simctl_lib import replay
from tools.simctl_lib import report
from tools.simctl_lib import trace

_WORKSPACE = os.path.join(os.environ.get('TEST_SRCDIR', ''), os.environ.get('TEST_WORKSPACE',
                                                                            'simsched'))
BANK = os.path.join(_WORKSPACE, 'testing/examples/bank_sim_test')
PROBE = os.path.join(_WORKSPACE, 'testing/internal/trace_probe_sim_test')
PROBE_TEST = 'TraceProbe.ConsumerSeesEveryJob'
BANK_TEST = 'BankTest.TransfersNeverOverdraw'


def simctl(*argv, stdin=None):
  """Runs simctl in process: (exit code, stdout, stderr)."""
  out, err = io.StringIO(), io.StringIO()
  saved_stdin = sys.stdin
  sys.stdin = io.StringIO(stdin) if stdin is not None else io.StringIO('')
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      try:
        code = main.main(list(argv))
      except SystemExit as e:  # argparse
        code = e.code
  finally:
    sys.stdin = saved_stdin
  return code, out.getvalue(), err.getvalue()


def failure_line(test, seed, binary):
  """A simsched_failures.jsonl line as the harness writes it."""
  return json.dumps({'test': test, 'seed': seed, 'step': 9, 'virtual_time_ns': 5000000,
                     'trace_hash': '0x0', 'strategy': 'random', 'regression': False,
                     'replay_bazel': f'bazel test //testing/internal:trace_probe_sim_test '
                                     f'--test_filter={test}',
                     'replay_binary': f'SIMSCHED_SEED={seed} SIMSCHED_STRATEGY=random {binary} '
                                      f'--gtest_filter={test}'})


class ReplayTest(unittest.TestCase):

  def setUp(self):
    self.tmp = tempfile.mkdtemp(dir=os.environ.get('TEST_TMPDIR'))

  def test_bank_seed_timeline(self):
    code, out, _ = simctl('replay', BANK_TEST, '--seed', '1', '--binary', BANK)
    self.assertEqual(code, 0)
    self.assertIn(f'{BANK_TEST} seed 1 (strategy ', out)
    self.assertRegex(out, r'\n\s+1  \+0\s+task \d+ started \(spawned at '
                     r'testing/examples/bank.cc:\d+')
    self.assertIn('resumed after Sleep at testing/examples/bank.cc:', out)
    self.assertIn('woken by a timer', out)

  def test_same_seed_same_timeline(self):
    first = simctl('replay', PROBE_TEST, '--seed', '3', '--binary', PROBE)
    second = simctl('replay', PROBE_TEST, '--seed', '3', '--binary', PROBE)
    self.assertEqual(first, second)

  def test_probe_timeline_shows_session_wake_fault_and_failure(self):
    code, out, _ = simctl('replay', PROBE_TEST, '--seed', '2', '--binary', PROBE)
    self.assertEqual(code, 0)
    self.assertIn('FAILED', out.splitlines()[0])
    self.assertIn('task 2 "consumer"', out)
    self.assertIn('[session 1]', out)
    self.assertRegex(out, r"resumed after Channel<int> 'jobs'::\w+ at .*, woken by a channel \w+ from task 1")
    self.assertIn('! FAULT buggify.fired:', out)
    self.assertIn('X FAILURE in task 2 at testing/internal/trace_probe_program.cc:', out)
    self.assertIn('the consumer received an unexpected job', out)

  def test_filters(self):
    _, out, _ = simctl('replay', PROBE_TEST, '--seed', '2', '--binary', PROBE, '--task', '1')
    polls = [l for l in out.splitlines()[2:] if re.match(r'\s+\d+\s+\+\S*\s+task \d+', l)]
    self.assertTrue(polls)
    for line in polls:
      self.assertRegex(line, r'task 1 "producer"')
    self.assertIn('X FAILURE', out)  # failures stay in view
    _, out, _ = simctl('replay', PROBE_TEST, '--seed', '2', '--binary', PROBE, '--label',
                       'consumer')
    self.assertIn('task 2 "consumer"', out)
    self.assertNotIn('"producer" resumed', out)
    _, out, _ = simctl('replay', PROBE_TEST, '--seed', '2', '--binary', PROBE, '--session', '1')
    self.assertIn('[session 1]', out)
    self.assertNotIn('"consumer" resumed', out)
    _, out, _ = simctl('replay', PROBE_TEST, '--seed', '2', '--binary', PROBE, '--task', '99')
    self.assertNotIn(' resumed ', out)

  def test_from_a_failures_file_and_from_stdin(self):
    path = os.path.join(self.tmp, 'simsched_failures.jsonl')
    with open(path, 'w') as f:
      f.write(failure_line(PROBE_TEST, 4, PROBE) + '\n' + failure_line(PROBE_TEST, 1, PROBE) + '\n')
    code, out, _ = simctl('replay', '--failures', path, '--line', '2')
    self.assertEqual(code, 0)
    self.assertIn(f'{PROBE_TEST} seed 1 (strategy random)', out)
    code, out, _ = simctl('replay', stdin=failure_line(PROBE_TEST, 4, PROBE) + '\n')
    self.assertEqual(code, 0)
    self.assertIn(f'{PROBE_TEST} seed 4 (strategy random)', out)

  def test_keep_trace_then_read_it_back(self):
    path = os.path.join(self.tmp, 'seed2.jsonl')
    _, live, _ = simctl('replay', PROBE_TEST, '--seed', '2', '--binary', PROBE,
                        '--keep-trace', path)
    code, again, _ = simctl('replay', '--trace-file', path)
    self.assertEqual(code, 0)
    self.assertEqual(live, again)

  def test_bad_input_exits_2_with_a_message(self):
    bad_json = os.path.join(self.tmp, 'bad.jsonl')
    with open(bad_json, 'w') as f:
      f.write('{"test": "A.B", "seed": \n')
    not_failure = os.path.join(self.tmp, 'other.jsonl')
    with open(not_failure, 'w') as f:
      f.write('{"hello": 1}\n')
    not_trace = os.path.join(self.tmp, 'not_trace.jsonl')
    with open(not_trace, 'w') as f:
      f.write('{"event": "poll", "step": 1}\n')
    not_json = os.path.join(self.tmp, 'not_json.jsonl')
    with open(not_json, 'w') as f:
      f.write('{"event": "run", "test": "T"}\n{"event": \n')
    cases = [
        (('replay', 'No.SuchTest', '--seed', '1', '--binary', PROBE), 'has no test named'),
        (('replay', '--failures', bad_json, '--line', '1'), 'line 1 is not a simsched_failures'),
        (('replay', '--failures', not_failure), 'it needs "test" and "seed"'),
        (('replay', '--failures', bad_json, '--line', '5'), '--line 5:'),
        (('replay', '--failures', os.path.join(self.tmp, 'missing.jsonl')), 'cannot read it'),
        (('replay', '--trace-file', os.path.join(self.tmp, 'missing.jsonl')), 'cannot read it'),
        (('replay', '--trace-file', not_trace), 'does not start with a "run" line'),
        (('replay', PROBE_TEST, '--binary', PROBE), 'pass --seed N'),
        (('replay', PROBE_TEST, '--seed', '1'), 'pass --target'),
        (('replay', PROBE_TEST, '--seed', 'x1', '--binary', PROBE), 'a seed is a whole number'),
        (('replay', PROBE_TEST, '--seed', '1', '--binary', '/no/such/binary'),
         'no such executable'),
        (('trace', '--trace-file', not_trace), 'does not start with a "run" line'),
        (('replay', '--trace-file', not_json), 'not_json.jsonl:2: not a JSON object'),
        (('report', PROBE_TEST, '--seed', '1'), 'pass --target'),
    ]
    for argv, message in cases:
      with self.subTest(argv=argv):
        code, out, err = simctl(*argv)
        self.assertEqual(code, 2, out + err)
        self.assertIn(message, err)

  def test_bad_input_through_the_command_line(self):
    # As a user runs it: python3 -m tools.simctl_lib.main, exit code 2.
    done = subprocess.run([sys.executable, '-m', 'tools.simctl_lib.main', 'replay',
                           '--trace-file', '/no/such/trace.jsonl'],
                          cwd=_WORKSPACE, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=_WORKSPACE))
    self.assertEqual(done.returncode, 2, done.stderr)
    self.assertIn('simctl replay: error: trace file /no/such/trace.jsonl: cannot read it',
                  done.stderr)


class TraceFormatTest(unittest.TestCase):
  """The Trace Event Format as Chrome and Perfetto read it."""

  @classmethod
  def setUpClass(cls):
    cls.run_ = replay.run_seed(PROBE, PROBE_TEST, 2)
    cls.trace = trace.build_trace(cls.run_)

  def test_required_keys_and_types(self):
    events = self.trace['traceEvents']
    self.assertIsInstance(events, list)
    self.assertTrue(events)
    for e in events:
      with self.subTest(event=e):
        self.assertIsInstance(e['name'], str)
        self.assertIn(e['ph'], ('X', 'i', 's', 'f', 'M'))
        self.assertIsInstance(e['pid'], int)
        self.assertIsInstance(e['tid'], int)
        if e['ph'] == 'M':
          self.assertIsInstance(e['args'], dict)
          continue
        self.assertIsInstance(e['ts'], (int, float))
        self.assertGreaterEqual(e['ts'], 0)
        if e['ph'] == 'X':
          self.assertIsInstance(e['dur'], (int, float))
          self.assertGreater(e['dur'], 0)
        if e['ph'] == 'i':
          self.assertIn(e['s'], ('t', 'p', 'g'))
        if e['ph'] in ('s', 'f'):
          self.assertIsInstance(e['id'], int)
    json.loads(json.dumps(self.trace))  # plain JSON

  def test_flow_ids_pair_up_and_point_forward(self):
    starts, finishes = {}, {}
    for e in self.trace['traceEvents']:
      if e['ph'] == 's':
        self.assertNotIn(e['id'], starts)
        starts[e['id']] = e
      elif e['ph'] == 'f':
        self.assertNotIn(e['id'], finishes)
        self.assertEqual(e.get('bp'), 'e')
        finishes[e['id']] = e
    self.assertTrue(starts)
    self.assertEqual(set(starts), set(finishes))
    for flow_id, start in starts.items():
      self.assertLessEqual(start['ts'], finishes[flow_id]['ts'])
      self.assertEqual(start['cat'], finishes[flow_id]['cat'])
    # Each end sits on a slice of its track.
    slices = {(e['pid'], e['tid'], e['ts']) for e in self.trace['traceEvents'] if e['ph'] == 'X'}
    for f in finishes.values():
      self.assertIn((f['pid'], f['tid'], f['ts']), slices)

  def test_ts_monotonic_per_track_and_slices_do_not_overlap(self):
    last_end = {}
    for e in self.trace['traceEvents']:
      if e['ph'] != 'X':
        continue
      track = (e['pid'], e['tid'])
      self.assertGreaterEqual(e['ts'], last_end.get(track, 0))
      last_end[track] = e['ts'] + e['dur']

  def test_tracks_sessions_faults_and_failures(self):
    events = self.trace['traceEvents']
    names = {(e['pid'], e['tid']): e['args']['name'] for e in events
             if e['ph'] == 'M' and e['name'] == 'thread_name'}
    self.assertIn('task 1 "producer"', names.values())
    processes = {e['pid']: e['args']['name'] for e in events
                 if e['ph'] == 'M' and e['name'] == 'process_name'}
    self.assertEqual(processes.get(1), 'session 1')
    self.assertTrue(any(e['ph'] == 'X' and e['pid'] == 1 for e in events))
    polls = [e for e in events if e['ph'] == 'X']
    self.assertEqual(len(polls), self.run_.header['steps'])
    self.assertTrue(any(e['ph'] == 'i' and e['cat'] == 'fault' and
                        e['name'] == 'fault: buggify.fired' for e in events))
    failure = [e for e in events if e['ph'] == 'i' and e['cat'] == 'failure']
    self.assertEqual(len(failure), 1)
    self.assertEqual(failure[0]['tid'], 2)
    self.assertIn('unexpected job', failure[0]['args']['message'])
    self.assertTrue(any(e['ph'] == 's' and e['cat'] == 'wake' for e in events))
    # The virtual-time axis: the producer's Sleep(5ms) puts a poll at 5000 us.
    self.assertTrue(any(p['ts'] >= 5000 and p['args']['virtual_time_ns'] == 5000000
                        for p in polls))

  def test_cli_writes_the_file(self):
    path = os.path.join(tempfile.mkdtemp(dir=os.environ.get('TEST_TMPDIR')), 'out.json')
    code, out, _ = simctl('trace', PROBE_TEST, '--seed', '2', '--binary', PROBE, '-o', path)
    self.assertEqual(code, 0)
    self.assertIn(f'wrote {path}', out)
    with open(path) as f:
      self.assertEqual(json.load(f), self.trace)


def _png_pixels(path):
  """(width, height, rows of (r, g, b)) of an 8-bit RGB/RGBA PNG."""
  with open(path, 'rb') as f:
    data = f.read()
  assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
  pos, idat, width = 8, b'', None
  while pos < len(data):
    length, kind = struct.unpack('>I4s', data[pos:pos + 8])
    chunk = data[pos + 8:pos + 8 + length]
    if kind == b'IHDR':
      width, height, depth, color = struct.unpack('>IIBB', chunk[:10])
      assert depth == 8 and color in (2, 6), f'PNG depth {depth} color type {color}'
      channels = 3 if color == 2 else 4
    elif kind == b'IDAT':
      idat += chunk
    pos += 12 + length
  raw = zlib.decompress(idat)
  stride = width * channels
  rows, previous = [], bytearray(stride)
  for y in range(height):
    kind = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
      left = line[i - channels] if i >= channels else 0
      up = previous[i]
      if kind == 1:
        line[i] = (line[i] + left) & 255
      elif kind == 2:
        line[i] = (line[i] + up) & 255
      elif kind == 3:
        line[i] = (line[i] + (left + up) // 2) & 255
      elif kind == 4:
        corner = previous[i - channels] if i >= channels else 0
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
    rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
    previous = line
  return width, height, rows


def _rgb(color):
  return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


class ReportTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    cls.tmp = tempfile.mkdtemp(dir=os.environ.get('TEST_TMPDIR'))
    cls.path = os.path.join(cls.tmp, 'report.html')
    code, out, err = simctl('report', PROBE_TEST, '--seed', '2', '--binary', PROBE, '-o',
                            cls.path)
    assert code == 0, out + err
    with open(cls.path, encoding='utf-8') as f:
      cls.html = f.read()
    cls.run_ = replay.run_seed(PROBE, PROBE_TEST, 2)

  def test_self_contained(self):
    # Nothing to fetch: no external scripts, styles, images or fonts.
    for needle in ('<link', ' src=', '@import', 'url(', 'http://', 'https://'):
      self.assertNotIn(needle, self.html.replace('xmlns="http://www.w3.org/2000/svg"', ''))
    self.assertIn('<style>', self.html)
    self.assertIn('<script>', self.html)
    self.assertIn('<svg id="chart"', self.html)

  def test_rows_bars_and_failures(self):
    tasks = {e['task'] for e in self.run_.events if e['event'] == 'poll'}
    self.assertEqual(self.html.count('class="task-row"'), len(tasks))
    self.assertEqual(self.html.count('<rect class="poll"'), self.run_.header['steps'])
    self.assertEqual(self.html.count('class="failure-mark"'), 1)
    self.assertGreaterEqual(self.html.count('class="fault-mark"'), 1)
    self.assertIn('the consumer received an unexpected job', self.html)
    self.assertIn('FAILED at step', self.html)

  def test_headless_chromium_renders_it(self):
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if chromium is None:
      self.skipTest('Debian\'s chromium is not installed (tools/setup.sh --with-chromium '
                    'installs it); the report was not rendered')
    profile = os.path.join(self.tmp, 'profile')
    shot = os.path.join(self.tmp, 'report.png')
    flags = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
             '--no-first-run', '--hide-scrollbars', f'--user-data-dir={profile}',
             '--window-size=1200,900']
    env = dict(os.environ, HOME=self.tmp)
    url = 'file://' + self.path
    done = subprocess.run(flags + [f'--screenshot={shot}', url], capture_output=True,
                          text=True, timeout=120, env=env)
    self.assertTrue(os.path.exists(shot), f'chromium made no screenshot: {done.stderr[-2000:]}')
    width, height, rows = _png_pixels(shot)
    self.assertEqual((width, height), (1200, 900))
    counts = {}
    for row in rows:
      for pixel in row:
        counts[pixel] = counts.get(pixel, 0) + 1
    white = counts.get((255, 255, 255), 0)
    self.assertLess(white, width * height * 0.97, 'the screenshot is (nearly) blank')
    # The chart drew: the poll bars and the failure mark are on screen.
    self.assertGreater(counts.get(_rgb(report.POLL_COLOR), 0), 100)
    self.assertGreater(counts.get(_rgb(report.FAILURE_COLOR), 0), 50)
    dom = subprocess.run(flags + ['--dump-dom', url], capture_output=True, text=True,
                         timeout=120, env=env).stdout
    tasks = {e['task'] for e in self.run_.events if e['event'] == 'poll'}
    self.assertEqual(dom.count('class="task-row"'), len(tasks))
    self.assertIn('id="event-table"', dom)


if __name__ == '__main__':
  unittest.main()
