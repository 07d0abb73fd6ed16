"""simctl trace: one run as Chrome/Perfetto Trace Event JSON.

  simctl trace BankTest.TransfersNeverOverdraw --seed 7 \
      --target //testing/examples:bank_sim_test -o seed7.trace.json
  (open it in https://ui.perfetto.dev or chrome://tracing, from disk)

The axis is virtual time (microseconds, as the format wants). Each task is a
track (tid) in the process (pid) of its session (pid 0: tasks outside any
session); each poll is an "X" slice; a wake or a spawn is a flow arrow (s/f)
from the waker's last poll to the poll it caused; failures and faults are
instant events ("i"); spawns and ends are instants on the task's track.
Polls take no virtual time, so each poll is drawn --step-width wide (100 ns
by default) and a burst of steps at one instant is laid out that far apart:
a step is drawn at its virtual time or just after the step before it,
whichever is later (the exact virtual time is in each event's args).
"""

import json
import sys

from tools.simctl_lib import replay

DEFAULT_STEP_NS = 100  # the drawing width of one poll


def _us(ns):
  return ns / 1000.0


def build_trace(run, step_ns=DEFAULT_STEP_NS):
  """The Trace Event JSON object (a dict) for a replay.Run."""
  header = run.header
  lanes = header.get('lanes') or []
  events = []
  tracks = {}  # task id -> (pid, name)
  draw_ns = {}  # step -> where its poll is drawn
  last_poll = {}  # task id -> (pid, ts of its latest poll)
  flow_id = 0
  cursor = -step_ns

  def track_of(task, session=None, label=None):
    if task not in tracks:
      name = f'task {task}' + (f' "{label}"' if label else '')
      tracks[task] = (session or 0, name)
    return tracks[task][0]

  for event in run.events:
    kind = event['event']
    step, t_ns = event.get('step', 0), event.get('t_ns', 0)
    if kind == 'poll':
      cursor = max(t_ns, cursor + step_ns)
      draw_ns[step] = cursor
      task = event['task']
      pid = track_of(task, event.get('session'), event.get('label'))
      args = {'step': step, 'virtual_time_ns': t_ns, 'what': replay.describe_wake(event)}
      if event.get('lane') is not None:
        lane = event['lane']
        args['lane'] = lanes[lane] if lane < len(lanes) else lane
      if event.get('internal'):
        args['internal'] = True
      name = event.get('label') or f'task {task}'
      events.append({'name': name, 'cat': 'poll', 'ph': 'X', 'ts': _us(cursor),
                     'dur': _us(step_ns * 0.8), 'pid': pid, 'tid': task, 'args': args})
      waker = event.get('woken_by')
      if waker and waker in last_poll:
        flow_id += 1
        waker_pid, waker_ts = last_poll[waker]
        cat = 'spawn' if event.get('cause') == 'spawned' else 'wake'
        events.append({'name': cat, 'cat': cat, 'ph': 's', 'id': flow_id, 'ts': waker_ts,
                       'pid': waker_pid, 'tid': waker})
        events.append({'name': cat, 'cat': cat, 'ph': 'f', 'bp': 'e', 'id': flow_id,
                       'ts': _us(cursor), 'pid': pid, 'tid': task})
      last_poll[task] = (pid, _us(cursor))
      continue
    # Everything else happened during (or, at step 0, before) a step: drawn
    # at that step's poll, just after it starts.
    ts = _us(draw_ns[step] + step_ns * 0.4) if step in draw_ns else _us(max(t_ns, 0))
    task = event.get('task')
    if kind in ('spawn', 'complete', 'cancel'):
      pid = track_of(task, event.get('session'), event.get('label'))
      name = {'spawn': 'spawned', 'complete': 'completed', 'cancel': 'cancelled'}[kind]
      args = {'step': step, 'virtual_time_ns': t_ns}
      if kind == 'spawn':
        args['spawned_at'] = event.get('spawned_at')
        args['parent'] = event.get('parent')
      events.append({'name': name, 'cat': 'lifecycle', 'ph': 'i', 's': 't', 'ts': ts, 'pid': pid,
                     'tid': task, 'args': args})
    elif kind in ('fault', 'failure'):
      name = (f'fault: {event.get("kind")}' if kind == 'fault' else 'FAILURE')
      args = {'step': step, 'virtual_time_ns': t_ns}
      if kind == 'fault':
        args['text'] = event.get('text')
      else:
        args.update({'message': event.get('message'), 'file': event.get('file'),
                     'line': event.get('line'), 'task': event.get('task_text')})
      if task and task in tracks:
        events.append({'name': name, 'cat': kind, 'ph': 'i', 's': 't', 'ts': ts,
                       'pid': tracks[task][0], 'tid': task, 'args': args})
      else:
        events.append({'name': name, 'cat': kind, 'ph': 'i', 's': 'g', 'ts': ts, 'pid': 0,
                       'tid': 0, 'args': args})

  metadata = []
  for pid in sorted({pid for pid, _ in tracks.values()} | {0}):
    metadata.append({'name': 'process_name', 'ph': 'M', 'pid': pid, 'tid': 0,
                     'args': {'name': f'session {pid}' if pid else 'tasks outside sessions'}})
    metadata.append({'name': 'process_sort_index', 'ph': 'M', 'pid': pid, 'tid': 0,
                     'args': {'sort_index': pid}})
  for task, (pid, name) in sorted(tracks.items()):
    metadata.append({'name': 'thread_name', 'ph': 'M', 'pid': pid, 'tid': task,
                     'args': {'name': name}})
    metadata.append({'name': 'thread_sort_index', 'ph': 'M', 'pid': pid, 'tid': task,
                     'args': {'sort_index': task}})
  return {
      'traceEvents': metadata + events,
      'displayTimeUnit': 'ns',
      'otherData': {k: str(v) for k, v in header.items() if k not in ('event', 'lanes')},
  }


def register(subparsers):
  parser = subparsers.add_parser(
      'trace', help='export one run as Chrome/Perfetto Trace Event JSON',
      description='Runs one seed (or reads --trace-file) and writes Trace Event JSON on the '
      'virtual-time axis: tasks as tracks, sessions as processes, polls as slices, wakes as '
      'flow arrows, failures and faults as instant events. Open it in ui.perfetto.dev or '
      'chrome://tracing.')
  replay.add_run_arguments(parser)
  parser.add_argument('-o', '--output', metavar='FILE',
                      help='where to write the JSON (default: TEST.seedN.trace.json; "-": stdout)')
  parser.add_argument('--step-width', type=int, default=DEFAULT_STEP_NS, metavar='NS',
                      help='how wide each poll is drawn, in ns of the axis (polls take no '
                      'virtual time; default %(default)s)')
  parser.set_defaults(run=_run)


def _run(args):
  run = replay.obtain_run(args)
  if args.step_width <= 0:
    raise replay.UsageError(f'--step-width {args.step_width}: a positive number of ns')
  trace = build_trace(run, args.step_width)
  output = args.output or f'{run.header["test"]}.seed{run.header["seed"]}.trace.json'
  if output == '-':
    json.dump(trace, sys.stdout, indent=None)
    sys.stdout.write('\n')
    return 0
  try:
    with open(output, 'w', encoding='utf-8') as f:
      json.dump(trace, f)
  except OSError as e:
    raise replay.UsageError(f'-o {output}: cannot write it ({e.strerror})')
  polls = sum(1 for e in trace['traceEvents'] if e['ph'] == 'X')
  print(f'simctl trace: wrote {output} ({polls} polls, virtual time '
        f'{replay.format_time(run.header["virtual_time_ns"])}, '
        f'{"failed" if run.failed else "passed"}); open it in https://ui.perfetto.dev '
        f'or chrome://tracing')
  return 0
