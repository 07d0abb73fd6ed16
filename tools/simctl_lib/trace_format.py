"""The trace file's format (docs/trace-format.md), checked line by line.

A trace file comes from SIMSCHED_TRACE_FILE, but a user may hand simctl any
file, or one cut short or edited. load_trace() checks every line here before
replay, trace or report read it, so a damaged file is one clear error naming
its line, never a Python traceback from deep inside a renderer.
"""

from tools.simctl_lib.common import UsageError, whole_number

FORMAT = 1

# Field kinds: (check, what the field must be).
_KINDS = {
    'count': (whole_number, 'a whole number from 0 to 2^64-1'),
    'count?': (lambda v: v is None or whole_number(v), 'a whole number or null'),
    'text': (lambda v: isinstance(v, str), 'a string'),
    'text?': (lambda v: v is None or isinstance(v, str), 'a string or null'),
    'flag': (lambda v: isinstance(v, bool), 'true or false'),
    'names': (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
              'a list of strings'),
}

_TASK_END = {'step': 'count', 't_ns': 'count', 'task': 'count', 'label': 'text?',
             'session': 'count?'}

# Every field of every event, as the harness writes them (all present).
FIELDS = {
    'run': {'format': 'count', 'test': 'text', 'seed': 'count', 'strategy': 'text',
            'steps': 'count', 'virtual_time_ns': 'count', 'trace_hash': 'text',
            'failed': 'flag', 'lanes': 'names'},
    'poll': {'step': 'count', 't_ns': 'count', 'task': 'count', 'label': 'text?',
             'session': 'count?', 'lane': 'count?', 'internal': 'flag', 'cause': 'text?',
             'woken_by': 'count?', 'wake_reason': 'text?', 'resumed_what': 'text?',
             'resumed_at': 'text?', 'resumed_after_task': 'count?', 'spawned_at': 'text?'},
    'spawn': {'step': 'count', 't_ns': 'count', 'task': 'count', 'label': 'text?',
              'session': 'count?', 'parent': 'count?', 'spawned_at': 'text?'},
    'complete': _TASK_END,
    'cancel': _TASK_END,
    'fault': {'step': 'count', 't_ns': 'count', 'kind': 'text', 'task': 'count?',
              'text': 'text'},
    'failure': {'step': 'count', 't_ns': 'count', 'task': 'count?', 'task_text': 'text?',
                'file': 'text?', 'line': 'count?', 'fatal': 'flag', 'message': 'text'},
}


def check_event(where, event):
  """Raises UsageError naming `where` ("path:line") if `event` breaks the format."""
  kind = event.get('event')
  if not isinstance(kind, str) or kind not in FIELDS:
    raise UsageError(f'trace file {where}: "event" is {_show(kind)}; format {FORMAT} has '
                     f'{", ".join(FIELDS)}')
  for field, field_kind in FIELDS[kind].items():
    if field not in event:
      raise UsageError(f'trace file {where}: a "{kind}" line needs "{field}"')
    check, what = _KINDS[field_kind]
    if not check(event[field]):
      raise UsageError(f'trace file {where}: "{field}" of a "{kind}" line is '
                       f'{_show(event[field])}; expected {what}')
  if kind == 'run' and event['format'] != FORMAT:
    raise UsageError(f'trace file {where}: format {event["format"]}; this simctl reads '
                     f'format {FORMAT} (use the simctl of the build that wrote it)')


def _show(value):
  text = repr(value)
  return text if len(text) <= 40 else text[:37] + '...'
