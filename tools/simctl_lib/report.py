"""simctl report: a self-contained HTML timeline of one run.

  simctl report --failures simsched_failures.jsonl --line 1 -o seed7.html

One file, nothing fetched: inline CSS, an inline SVG chart and a little
inline JavaScript (filtering the event table), so it opens from disk and
can be attached to a bug. The chart has one row per task (label, session),
one column per step, a bar for each poll, a line from each waker to the poll
it caused, red marks for failures and orange ones for faults; the virtual
time is printed over the steps where it moved. Below: the failures, and every
event of the run as a filterable table (the same text as `simctl replay`).
"""

import html

from tools.simctl_lib import replay

POLL_COLOR = '#2563eb'
FAILURE_COLOR = '#dc2626'
FAULT_COLOR = '#f59e0b'
_LEFT = 240  # px for the task names
_ROW = 22
_TOP = 46  # px above the first row: time ticks and the faults row

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111827; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
.verdict { font-weight: 600; padding: 6px 10px; border-radius: 4px; display: inline-block; }
.verdict.failed { background: #fee2e2; color: #991b1b; }
.verdict.passed { background: #dcfce7; color: #166534; }
.meta { color: #4b5563; } code { background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
#chart-box { overflow-x: auto; border: 1px solid #e5e7eb; border-radius: 4px; }
svg text { font: 12px system-ui, sans-serif; fill: #374151; }
svg .tick { font-size: 10px; fill: #6b7280; }
svg .life { fill: #eff6ff; }
svg .row-line { stroke: #f3f4f6; }
svg .wake { stroke: #9ca3af; stroke-width: 1; }
svg rect.poll:hover { stroke: #111827; }
.legend span { display: inline-block; margin-right: 16px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; margin-right: 4px; }
ul.failures li { color: #991b1b; margin-bottom: 6px; white-space: pre-wrap; }
table { border-collapse: collapse; font: 12px ui-monospace, monospace; }
td { padding: 1px 8px; vertical-align: top; white-space: pre-wrap; }
tr.failure td { color: #991b1b; font-weight: 600; } tr.fault td { color: #92400e; }
tr.hidden { display: none; } tr.lit td { background: #fef9c3; }
#filter { margin: 4px 0 8px; width: 320px; padding: 4px; }
"""

_JS = """
const filter = document.getElementById('filter');
filter.addEventListener('input', () => {
  const words = filter.value.toLowerCase().split(/\\s+/).filter(w => w);
  for (const row of document.querySelectorAll('#event-table tr.ev')) {
    const text = row.textContent.toLowerCase();
    row.classList.toggle('hidden', !words.every(w => text.includes(w)));
  }
});
for (const bar of document.querySelectorAll('rect.poll')) {
  bar.addEventListener('click', () => {
    for (const lit of document.querySelectorAll('tr.lit')) lit.classList.remove('lit');
    const row = document.getElementById('step-' + bar.dataset.step);
    if (row) { row.classList.add('lit'); row.scrollIntoView({block: 'center'}); }
  });
}
"""


def _e(text):
  return html.escape(str(text), quote=True)


def _task_rows(run):
  """Tasks in order of first appearance: id -> info (label, session, first/last step)."""
  tasks = {}
  for event in run.events:
    task = event.get('task')
    if event['event'] not in ('spawn', 'poll', 'complete', 'cancel') or not task:
      continue
    if event['event'] == 'poll' and event.get('internal'):
      continue
    info = tasks.setdefault(task, {'label': event.get('label'), 'session': event.get('session'),
                                   'first': event.get('step', 0), 'last': None})
    info['last'] = event.get('step', 0)
    if event['event'] in ('complete', 'cancel'):
      info['ended'] = event['event']
  return tasks


def _chart(run):
  steps = max(1, int(run.header.get('steps') or 0))
  px = max(2.0, min(24.0, 1100.0 / steps))
  tasks = _task_rows(run)
  row_of = {task: i for i, task in enumerate(tasks)}
  width = int(_LEFT + steps * px + 40)
  height = _TOP + _ROW * max(1, len(tasks)) + 10
  x = lambda step: _LEFT + (max(step, 1) - 1) * px
  y = lambda task: _TOP + _ROW * row_of[task]
  parts = [f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" role="img" aria-label="timeline">']
  parts.append(f'<text x="4" y="14" class="tick">virtual time</text>')
  parts.append(f'<text x="4" y="{_TOP - 8}">faults; the test body</text>')
  # Rows: the task's name and the span of its life.
  for task, info in tasks.items():
    top = y(task)
    name = f'task {task}' + (f' "{info["label"]}"' if info['label'] else '')
    if info['session'] is not None:
      name += f' [s{info["session"]}]'
    end = info['last'] if info.get('ended') else steps
    parts.append(f'<g class="task-row" data-task="{task}">'
                 f'<line class="row-line" x1="0" x2="{width}" y1="{top + _ROW - 1}" '
                 f'y2="{top + _ROW - 1}"/>'
                 f'<rect class="life" x="{x(info["first"]):.1f}" y="{top + 2}" '
                 f'width="{max(px, (end - max(info["first"], 1) + 1) * px):.1f}" '
                 f'height="{_ROW - 4}"/>'
                 f'<text x="4" y="{top + 15}">{_e(name[:34])}</text></g>')
  # Time ticks where virtual time moved, far enough apart to read.
  last_time, last_tick_x = None, -1e9
  poll_at = {}
  for event in run.events:
    if event['event'] != 'poll':
      continue
    poll_at[event['step']] = event
    if event['t_ns'] != last_time:
      last_time = event['t_ns']
      tx = x(event['step'])
      if tx - last_tick_x >= 60:
        parts.append(f'<text class="tick" x="{tx:.1f}" y="28">'
                     f'{_e(replay.format_time(last_time))}</text>')
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="31" y2="{height}" '
                     f'stroke="#e5e7eb" stroke-dasharray="2,3"/>')
        last_tick_x = tx
  # Wake lines under the bars, then the bars.
  for step, event in poll_at.items():
    waker = event.get('woken_by')
    if waker in row_of and event['task'] in row_of:
      previous = [s for s in poll_at if s < step and poll_at[s]['task'] == waker]
      if previous:
        x1 = x(max(previous)) + px / 2
        parts.append(f'<line class="wake" x1="{x1:.1f}" y1="{y(waker) + _ROW / 2}" '
                     f'x2="{x(step) + px / 2:.1f}" y2="{y(event["task"]) + _ROW / 2}"/>')
  for step, event in poll_at.items():
    if event['task'] not in row_of:
      continue
    tip = (f'step {step} {replay.format_time(event["t_ns"])} {replay.task_name(event)}: '
           f'{replay.describe_wake(event)}')
    parts.append(f'<rect class="poll" data-step="{step}" x="{x(step):.1f}" '
                 f'y="{y(event["task"]) + 4}" width="{max(2.0, px - 1):.1f}" '
                 f'height="{_ROW - 8}" fill="{POLL_COLOR}"><title>{_e(tip)}</title></rect>')
  for event in run.events:
    kind = event['event']
    if kind not in ('fault', 'failure'):
      continue
    step = event.get('step', 0)
    cx = x(step) + px / 2
    task = event.get('task')
    tip = (f'step {step}: ' + (f'{event.get("kind")}: {event.get("text")}' if kind == 'fault'
                                else event.get('message', '')))
    if kind == 'fault':
      cy = _TOP - 12
      parts.append(f'<path class="fault-mark" d="M{cx:.1f} {cy - 7} l7 7 l-7 7 l-7 -7 z" '
                   f'fill="{FAULT_COLOR}"><title>{_e(tip)}</title></path>')
    else:
      cy = y(task) + _ROW / 2 if task in row_of else _TOP - 12
      parts.append(f'<rect class="failure-mark" x="{cx - 6:.1f}" y="{cy - 9:.1f}" width="12" '
                   f'height="18" fill="{FAILURE_COLOR}"><title>{_e(tip)}</title></rect>')
  parts.append('</svg>')
  return ''.join(parts)


def build_html(run, replay_command=None):
  """The report for a replay.Run, as one HTML string."""
  header = run.header
  title = f'{header["test"]} seed {header["seed"]}'
  failures = [e for e in run.events if e['event'] == 'failure']
  if failures:
    first = failures[0]
    verdict = (f'<p class="verdict failed">FAILED at step {first.get("step")} '
               f'({_e(replay.format_time(first.get("t_ns", 0)))})</p>')
  else:
    verdict = '<p class="verdict passed">passed</p>'
  body = [
      '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
      f'<title>simsched: {_e(title)}</title><style>{_CSS}</style></head><body>',
      f'<h1>{_e(title)}</h1>', verdict,
      f'<p class="meta">strategy {_e(header.get("strategy"))} &middot; {header.get("steps")} '
      f'steps &middot; virtual time {_e(replay.format_time(header.get("virtual_time_ns", 0)))} '
      f'&middot; trace hash {_e(header.get("trace_hash"))}</p>',
  ]
  if replay_command:
    body.append(f'<p class="meta">replay: <code>{_e(replay_command)}</code></p>')
  if failures:
    body.append('<section id="failures"><h2>Failures</h2><ul class="failures">')
    for failure in failures:
      where = f'{failure["file"]}:{failure["line"]}' if failure.get('file') else 'the harness'
      who = failure.get('task_text') or 'outside any task'
      body.append(f'<li>step {failure.get("step")} ({_e(replay.format_time(failure.get("t_ns", 0)))}) '
                  f'at {_e(where)}, in {_e(who)}:\n{_e(failure.get("message", ""))}</li>')
    body.append('</ul></section>')
  body.append('<section id="timeline"><h2>Timeline</h2><p class="legend">'
              f'<span><i class="swatch" style="background:{POLL_COLOR}"></i>a poll (step)</span>'
              f'<span><i class="swatch" style="background:#9ca3af"></i>who woke it</span>'
              f'<span><i class="swatch" style="background:{FAILURE_COLOR}"></i>failure</span>'
              f'<span><i class="swatch" style="background:{FAULT_COLOR}"></i>fault</span>'
              '<span>click a poll to find its row below</span></p>'
              f'<div id="chart-box">{_chart(run)}</div></section>')
  body.append('<section id="events"><h2>Every event</h2>'
              '<input id="filter" placeholder="filter: words all rows must contain">'
              '<table id="event-table">')

  class _AllArgs:  # timeline_lines' filters: show everything
    task = label = session = None
    internal = True
  lines = replay.timeline_lines(run, _AllArgs())[2:]
  shown = [e for e in run.events if e['event'] in ('poll', 'spawn', 'complete', 'cancel',
                                                   'fault', 'failure')]
  for event, line in zip(shown, lines):
    kind = event['event']
    row_id = f' id="step-{event["step"]}"' if kind == 'poll' else ''
    body.append(f'<tr class="ev {kind}"{row_id}><td>{_e(line)}</td></tr>')
  body.append('</table></section>')
  body.append(f'<script>{_JS}</script></body></html>\n')
  return '\n'.join(body)


def register(subparsers):
  parser = subparsers.add_parser(
      'report', help='write a self-contained HTML timeline of one run',
      description='Runs one seed (or reads --trace-file) and writes one HTML file with '
      'everything inline (opens from disk, no network): the failures, a chart of every '
      'task\'s polls, wakes, faults and failures over the steps, and the event table.')
  replay.add_run_arguments(parser)
  parser.add_argument('-o', '--output', metavar='FILE',
                      help='where to write it (default: TEST.seedN.html)')
  parser.set_defaults(run=_run)


def _run(args):
  run = replay.obtain_run(args)
  command = run.command
  output = args.output or f'{run.header["test"]}.seed{run.header["seed"]}.html'
  try:
    with open(output, 'w', encoding='utf-8') as f:
      f.write(build_html(run, command))
  except OSError as e:
    raise replay.UsageError(f'-o {output}: cannot write it ({e.strerror})')
  print(f'simctl report: wrote {output} ({"failed" if run.failed else "passed"}); open it in a '
        f'browser (everything is inline)')
  return 0
