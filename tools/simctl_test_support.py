"""Shared by simctl's tests: runfiles paths, scratch folders, shard runs.

run_machines() runs K shards of //testing/internal:simctl_probe_sim_test at
once, each with its own output folder, as K machines of a distributed sweep
would; simctl merge reads what they write.
"""

import os
import subprocess
import tempfile

RUNFILES = os.path.join(os.environ.get('TEST_SRCDIR', ''), os.environ.get('TEST_WORKSPACE', ''))
PROBE = os.path.join(RUNFILES, 'testing/internal/simctl_probe_sim_test')
PROPERTY_REPORT = os.path.join(RUNFILES, 'testing/property_report')


def new_dir(name):
  return tempfile.mkdtemp(prefix=name + '-', dir=os.environ.get('TEST_TMPDIR'))


def run_shard(out_dir, env, gtest_filter):
  """One shard of the probe, as one machine of a distributed sweep runs it."""
  os.makedirs(out_dir, exist_ok=True)
  full_env = {k: v for k, v in os.environ.items()
              if not k.startswith(('SIMSCHED_', 'GTEST_', 'TEST_SHARD', 'TEST_TOTAL'))
              and k not in ('XML_OUTPUT_FILE', 'TEST_PREMATURE_EXIT_FILE')}
  full_env.update({k: str(v) for k, v in env.items()}, TEST_UNDECLARED_OUTPUTS_DIR=out_dir)
  return subprocess.Popen([PROBE, f'--gtest_filter={gtest_filter}'], env=full_env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=RUNFILES)


def run_machines(base, count, env, gtest_filter='SimctlProbe.Passes', index_variable=None):
  """K shard processes at once, each with its own output folder."""
  dirs, processes = [], []
  for k in range(count):
    shard_env = dict(env, SIMSCHED_TOTAL_SHARDS=count)
    shard_env[index_variable or 'SIMSCHED_SHARD_INDEX'] = k
    d = os.path.join(base, f'machine_{k}')
    dirs.append(d)
    processes.append(run_shard(d, shard_env, gtest_filter))
  for p in processes:
    p.wait()
  return dirs
