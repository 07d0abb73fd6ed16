"""simctl's Python subcommands.

tools/simctl runs setup and hands these to `python3 -m tools.simctl_lib.main`:
sweep, fuzz and merge work on the user's own targets; replay, trace and
report on one run. Each subcommand is a module with register(subparsers),
which adds its parser and sets `run` (args -> exit code). Bad input raises
common.UsageError: printed as one clear line, exit code 2.
"""

import argparse
import os
import sys

from tools.simctl_lib import common
from tools.simctl_lib import fuzz
from tools.simctl_lib import merge
from tools.simctl_lib import replay
from tools.simctl_lib import report
from tools.simctl_lib import sweep
from tools.simctl_lib import trace

# One entry per subcommand module, in the order --help lists them.
MODULES = [
    sweep,
    fuzz,
    merge,
    replay,
    trace,
    report,
]

_EPILOG = """\
Also (tools/simctl itself): test [TARGETS...] runs tests and ends with
"N passed, N failed"; check, bench, setup. `tools/simctl sweep` with no
target sweeps the bundled bank example. See docs/simctl.md and
docs/trace-format.md.
"""


def build_parser():
  parser = argparse.ArgumentParser(
      prog='simctl',
      description='Seed sweeps, fuzzing, merged reports and timelines for simsched sim_tests.',
      epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
  subparsers.required = True
  for module in MODULES:
    module.register(subparsers)
  return parser


def main(argv=None):
  # tools/simctl runs us from the repository root; paths are the user's.
  if os.environ.get('SIMCTL_CWD'):
    os.chdir(os.environ['SIMCTL_CWD'])
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    return args.run(args)
  except common.UsageError as e:
    print(f'simctl {args.command}: error: {e}', file=sys.stderr)
    return 2
  except common.BuildFailed as e:
    print(f'simctl {args.command}: {e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(f'\nsimctl {args.command}: interrupted', file=sys.stderr)
    return 130


if __name__ == '__main__':
  sys.exit(main())
