"""simctl's subcommands that work on one run: replay, trace, report.

tools/simctl hands these to `python3 -m tools.simctl_lib.main`. Each
subcommand is a module with register(subparsers), which adds its parser and
sets `run` (args -> exit code). Bad input raises UsageError: printed as one
clear line, exit code 2.
"""

import argparse
import os
import sys

from tools.simctl_lib import replay
from tools.simctl_lib import report
from tools.simctl_lib import trace

MODULES = [replay, trace, report]


def build_parser():
  parser = argparse.ArgumentParser(
      prog='simctl', description='Timelines of one simsched sim_test run.')
  subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
  subparsers.required = True
  for module in MODULES:
    module.register(subparsers)
  return parser


def main(argv=None):
  if os.environ.get('SIMCTL_CWD'):
    os.chdir(os.environ['SIMCTL_CWD'])
  args = build_parser().parse_args(argv)
  try:
    return args.run(args)
  except replay.UsageError as e:
    print(f'simctl {args.command}: error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f'\nsimctl {args.command}: interrupted', file=sys.stderr)
    return 130


if __name__ == '__main__':
  sys.exit(main())
