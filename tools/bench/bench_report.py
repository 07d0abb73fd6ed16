"""tools/bench/report: measure issue 16's figures in one run and write them into
docs/performance.md.

  tools/bench/report                  build (-c opt), run, rewrite the table
  tools/bench/report --dry-run        the same, but print the table only
  tools/bench/report --from-json DIR  no build or run: the table from the
                                      scheduler_bench.json, pool_bench.json and
                                      stamp.json a previous run left in DIR
                                      (--out-dir, or the path it printed)
  tools/bench/report --instructions   instructions per item under callgrind
                                      instead of time (bench_instructions.py;
                                      `--instructions --help` for its options)

It builds //tools/bench:scheduler_bench, :pool_bench and :world_bench with
--config=opt, runs scheduler_bench (W1-W3 against both references, memory per
suspended task, the seed sweep through the harness, on a bare scheduler and on
the bare random-pick loop) and pool_bench (spawn-and-complete and W1 against
asio) with JSON output, takes the median of the repetitions, and replaces the
lines between the
`<!-- bench-report:begin -->` and `<!-- bench-report:end -->` markers of
docs/performance.md with a table stamped with the date, commit, machine and
load average. A benchmark that reports an error, or that is missing from the
output, fails the run (exit 1) and leaves the document as it was.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BEGIN = "<!-- bench-report:begin -->"
END = "<!-- bench-report:end -->"

# What each binary runs. Single-threaded benchmarks are read in CPU time (the
# steadier figure on a shared machine); the pool's in wall time (UseRealTime:
# its work runs on the workers).
SCHEDULER_FILTER = ("^BM_(W1_SpawnYield|W2_Timers|W3_PingPong)_(TestScheduler|FifoReference|"
                    "RandomReference)$|^BM_MemoryPerSuspendedTask_|^BM_SeedSweep_SmallScenario_")
POOL_FILTER = "^BM_Pool_(SpawnComplete|W1_SpawnYield)_"


class Row:
    """One line of the table. `kind` says how the two figures compare:

    cost:    ns per item, simsched / reference, met when <= target
    memory:  bytes per task; met when bytes <= target and allocations <= 1
    rate:    items per second; met when simsched >= target (absolute; None: for
             information); the ratio is reference / simsched, how many times
             slower simsched is
    speedup: items per second, simsched / reference, met when >= target
    """

    def __init__(self, workload, kind, simsched, reference, target=None, unit=""):
        self.workload = workload
        self.kind = kind
        self.simsched = simsched
        self.reference = reference
        self.target = target
        self.unit = unit


ROWS = [
    Row("W1 spawn+yield vs RandomReference", "cost", "BM_W1_SpawnYield_TestScheduler",
        "BM_W1_SpawnYield_RandomReference", 1.5, "ns/poll"),
    Row("W1 spawn+yield vs FifoReference", "cost", "BM_W1_SpawnYield_TestScheduler",
        "BM_W1_SpawnYield_FifoReference", None, "ns/poll"),
    Row("W2 100k timers vs RandomReference", "cost", "BM_W2_Timers_TestScheduler",
        "BM_W2_Timers_RandomReference", 1.5, "ns/timer"),
    Row("W2 100k timers vs FifoReference", "cost", "BM_W2_Timers_TestScheduler",
        "BM_W2_Timers_FifoReference", None, "ns/timer"),
    Row("W3 ping-pong vs RandomReference", "cost", "BM_W3_PingPong_TestScheduler",
        "BM_W3_PingPong_RandomReference", 1.5, "ns/msg"),
    Row("W3 ping-pong vs FifoReference", "cost", "BM_W3_PingPong_TestScheduler",
        "BM_W3_PingPong_FifoReference", None, "ns/msg"),
    Row("memory per suspended task", "memory", "BM_MemoryPerSuspendedTask_TestScheduler",
        "BM_MemoryPerSuspendedTask_Reference", 192),
    Row("sweep, 10 tasks x 100 steps, through the harness (reference: bare scheduler)", "rate",
        "BM_SeedSweep_SmallScenario_Harness", "BM_SeedSweep_SmallScenario_BareScheduler",
        150_000, "seeds/s"),
    # The sweep target is absolute and this host's speed drifts 1.5x over hours:
    # the same sweep on W1-W3's hand-written random loop says what the machine
    # that measured it allows.
    Row("sweep through the harness vs the bare random loop", "rate",
        "BM_SeedSweep_SmallScenario_Harness", "BM_SeedSweep_SmallScenario_RandomReference",
        None, "seeds/s"),
    Row("pool spawn-and-complete vs asio (2 threads)", "speedup",
        "BM_Pool_SpawnComplete_ThreadPoolScheduler", "BM_Pool_SpawnComplete_AsioThreadPool",
        1.5, "tasks/s"),
    Row("pool W1 spawn+yield vs asio (2 threads)", "speedup",
        "BM_Pool_W1_SpawnYield_ThreadPoolScheduler", "BM_Pool_W1_SpawnYield_AsioThreadPool",
        1.0, "polls/s"),
]


class BenchmarkError(Exception):
    """A benchmark failed, is missing, or its output cannot be read."""


class Result:
    """The median over a benchmark's repetitions."""

    def __init__(self, name, repetitions, items_per_second, counters):
        self.name = name
        self.repetitions = repetitions
        self.items_per_second = items_per_second
        self.counters = counters

    @property
    def ns_per_item(self):
        return 1e9 / self.items_per_second


# The parts Google Benchmark appends to a name for the benchmark's options
# (not its arguments): "BM_X/iterations:3", "BM_Y/real_time".
_OPTION_PART = re.compile(r"^(iterations|repeats|min_time|min_warmup_time|threads):|"
                          r"^(real_time|process_time|manual_time)$")


def base_name(run_name):
    """A benchmark's name without its option suffixes: BM_X/iterations:3 -> BM_X."""
    return "/".join(p for p in run_name.split("/") if not _OPTION_PART.match(p))


def parse_results(json_text, source):
    """{benchmark name: Result} from Google Benchmark's JSON output.

    Reads the per-repetition runs (aggregate rows are ignored: Google Benchmark
    drops a benchmark whose every run errored from them) and raises
    BenchmarkError naming every benchmark that reported an error.
    """
    try:
        data = json.loads(json_text)
    except json.JSONDecodeError as e:
        raise BenchmarkError(f"{source}: not Google Benchmark JSON ({e}); did the binary "
                             f"crash before finishing its output?") from e
    runs, errors = {}, []
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        name = base_name(b.get("run_name", b["name"]))
        if b.get("error_occurred"):
            errors.append(f"{name}: {b.get('error_message', 'error (no message)')}")
            continue
        runs.setdefault(name, []).append(b)
    if errors:
        raise BenchmarkError(f"{source}: {len(errors)} benchmark run(s) reported an error:\n  " +
                             "\n  ".join(errors))
    results = {}
    for name, reps in runs.items():
        counters = {}
        for key in ("bytes_per_task", "allocs_per_task", "frame_bytes"):
            if all(key in r for r in reps):
                counters[key] = statistics.median(r[key] for r in reps)
        rates = [r["items_per_second"] for r in reps if r.get("items_per_second")]
        results[name] = Result(name, len(reps), statistics.median(rates) if rates else None,
                               counters)
    return results


def _int(x):
    return f"{x:,.0f}"


def _fig(x):
    return f"{x:,.1f}" if x < 100 else _int(x)


def _rate(x, unit):
    """4.76 M tasks/s, 785,626 tasks/s."""
    return f"{x / 1e6:,.2f} M {unit}" if x >= 1e6 else f"{_int(x)} {unit}"


def compute_rows(results, rows=ROWS):
    """[(workload, simsched, reference, ratio, target, met)] as table cells.
    Raises BenchmarkError if a benchmark a row needs is missing or lacks its
    figures."""
    missing = sorted({n for r in rows for n in (r.simsched, r.reference) if n not in results})
    if missing:
        raise BenchmarkError("no result for " + ", ".join(missing) +
                             " (not run, filtered out, or renamed in the benchmark source?)")
    cells = []
    for row in rows:
        s, r = results[row.simsched], results[row.reference]
        if row.kind == "memory":
            for res in (s, r):
                if "bytes_per_task" not in res.counters:
                    raise BenchmarkError(f"{res.name}: no bytes_per_task counter")
            sb, rb = s.counters["bytes_per_task"], r.counters["bytes_per_task"]
            sa, ra = s.counters.get("allocs_per_task", 0), r.counters.get("allocs_per_task", 0)
            # Amortized container growth adds a few millionths of an allocation.
            met = sb <= row.target and round(sa, 2) <= 1.0
            cells.append((row.workload, f"{_int(sb)} B, {sa:.2f} allocs",
                          f"{_int(rb)} B, {ra:.2f} allocs", f"{sb / rb:.2f}x",
                          f"≤ {row.target} B, 1 alloc", met))
            continue
        for res in (s, r):
            if not res.items_per_second:
                raise BenchmarkError(f"{res.name}: no items_per_second in its output")
        if row.kind == "cost":
            ratio = s.ns_per_item / r.ns_per_item
            met = None if row.target is None else ratio <= row.target
            cells.append((row.workload, f"{_fig(s.ns_per_item)} {row.unit}",
                          f"{_fig(r.ns_per_item)} {row.unit}", f"{ratio:.2f}x",
                          "(info)" if row.target is None else f"≤ {row.target}x", met))
        elif row.kind == "rate":
            ratio = r.items_per_second / s.items_per_second
            met = None if row.target is None else s.items_per_second >= row.target
            cells.append((row.workload, f"{_int(s.items_per_second)} {row.unit}",
                          f"{_int(r.items_per_second)} {row.unit}", f"{ratio:.2f}x",
                          "(info)" if row.target is None else f"≥ {_int(row.target)} {row.unit}",
                          met))
        elif row.kind == "speedup":
            ratio = s.items_per_second / r.items_per_second
            met = ratio >= row.target
            target = "ahead" if row.target == 1.0 else f"≥ {row.target}x ahead"
            cells.append((row.workload, _rate(s.items_per_second, row.unit),
                          _rate(r.items_per_second, row.unit), f"{ratio:.2f}x ahead", target, met))
        else:
            raise ValueError(f"unknown row kind {row.kind}")
    return cells


def render_table(cells, stamp):
    """The Markdown that goes between the markers."""
    lines = [BEGIN,
             "<!-- Written by tools/bench/report; edit the script, not these lines. -->",
             "", stamp, "",
             "| workload | simsched | reference | ratio | target | met |",
             "|---|---:|---:|---:|---|---|"]
    for workload, simsched, reference, ratio, target, met in cells:
        verdict = "—" if met is None else ("**yes**" if met else "**no**")
        lines.append(f"| {workload} | {simsched} | {reference} | {ratio} | {target} | {verdict} |")
    counted = [c[5] for c in cells if c[5] is not None]
    lines += ["", f"{sum(counted)} of {len(counted)} targets met.", END]
    return "\n".join(lines)


def replace_between_markers(text, block, path="docs/performance.md", begin=BEGIN, end=END,
                            what="the figures table"):
    """`text` with everything from `begin` to `end` (inclusive) replaced by `block`."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise BenchmarkError(f"{path} must hold exactly one {begin} ... {end} pair, in that "
                             f"order; put them back where {what} belongs")
    return text[:text.index(begin)] + block + text[text.index(end) + len(end):]


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# Said in the stamp of a run whose repetitions ran interleaved (stamp.json's
# "interleaved"); runs before session 20 ran each benchmark's back to back.
INTERLEAVED = (", each binary's repetitions run in random order across its benchmarks "
               "(`--benchmark_enable_random_interleaving`), so a slow spell of the host "
               "falls on several benchmarks rather than on all of one")


def make_stamp(machine, repetitions):
    """The line above the table; `machine` is the run's stamp.json."""
    def get(key, form="{}"):
        return form.format(machine[key]) if key in machine else "unknown"
    return (f"Measured by `tools/bench/report` on {get('date')} at commit `{get('commit')}`: "
            f"{get('cpu')}, {get('cores')} cores, load average {get('load_start', '{:.2f}')} at "
            f"the start and {get('load_end', '{:.2f}')} at the end; `--config=opt` (-O2). "
            f"Medians of {repetitions['scheduler']} repetitions "
            f"(scheduler_bench, CPU time) and {repetitions['pool']} (pool_bench, wall time)"
            f"{INTERLEAVED if machine.get('interleaved') else ''}. "
            f"Ratios are simsched's cost over the reference's (lower is better), except the "
            f"pool's, which say how far ahead of asio it is.")


def commit_of(root):
    """The short commit of the tree at `root`, `-dirty` if it has changes."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if dirty else "")


def _bazel_flags():
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "simsched" / \
        "bazel-disk-cache"
    return [f"--disk_cache={cache}", *os.environ.get("SIMSCHED_BAZEL_FLAGS", "").split(),
            "--config=opt"]


def _bazel_env():
    """The environment for bazel: the PATH tools/bench/report was started with
    (see there), since Bazel keys every compile on it."""
    env = dict(os.environ)
    if os.environ.get("SIMSCHED_REPORT_CALLER_PATH"):
        env["PATH"] = os.environ["SIMSCHED_REPORT_CALLER_PATH"]
    return env


def build(root, targets=("//tools/bench:scheduler_bench", "//tools/bench:pool_bench",
                         "//tools/bench:world_bench")):
    """Builds `targets` with --config=opt; returns the opt tree's tools/bench
    directory (`bazel info bazel-bin` under the same flags, whatever
    configuration the workspace's bazel-bin link points at)."""
    print("report: building " + " ".join(targets) + " with --config=opt", flush=True)
    flags = _bazel_flags()
    if subprocess.run(["bazel", "build", *flags, *targets], cwd=root, check=False,
                      env=_bazel_env()).returncode:
        raise BenchmarkError("the benchmark build failed (see bazel's output above)")
    bin_dir = subprocess.run(["bazel", "info", *flags, "bazel-bin"], cwd=root, check=True,
                             capture_output=True, text=True, env=_bazel_env()).stdout.strip()
    return Path(bin_dir) / "tools" / "bench"


def run_benchmark(binary, bench_filter, repetitions, min_time, out):
    print(f"report: running {binary.name} ({repetitions} repetition"
          f"{'' if repetitions == 1 else 's'} of each benchmark)", flush=True)
    command = [str(binary), f"--benchmark_filter={bench_filter}",
               f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time}",
               f"--benchmark_out={out}", "--benchmark_out_format=json",
               # This host's speed drifts over minutes: back-to-back repetitions
               # of one benchmark caught one spell each (one run measured the
               # harness's sweep at 134k seeds/s, the next at 75k).
               "--benchmark_enable_random_interleaving=true"]
    code = subprocess.run(command, check=False).returncode
    if code != 0:
        raise BenchmarkError(f"{binary.name} exited with status {code}: " + " ".join(command))


def main(argv):
    if "--instructions" in argv:
        # The instruction counts are a mode of their own (bench_instructions.py).
        root = str(Path(__file__).resolve().parent.parent.parent)
        if root not in sys.path:
            sys.path.insert(0, root)
        from tools.bench import bench_instructions  # pylint: disable=import-outside-toplevel
        return bench_instructions.main([a for a in argv if a != "--instructions"])
    parser = argparse.ArgumentParser(prog="tools/bench/report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-json", metavar="DIR",
                        help="use DIR's scheduler_bench.json and pool_bench.json; no build, no run")
    parser.add_argument("--out-dir", metavar="DIR",
                        help="where to keep the JSON output (default: a new temporary directory)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the table; do not touch docs/performance.md")
    parser.add_argument("--doc", default=None, help="the document to update "
                        "(default: docs/performance.md of this source tree)")
    parser.add_argument("--repetitions", type=int, default=3,
                        help="scheduler_bench repetitions (default 3)")
    parser.add_argument("--pool-repetitions", type=int, default=5,
                        help="pool_bench repetitions (default 5)")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="--benchmark_min_time in seconds (default 0.5)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent.parent
    doc = Path(args.doc) if args.doc else root / "docs" / "performance.md"
    for flag in ("repetitions", "pool_repetitions"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.min_time <= 0:
        parser.error("--min-time must be a positive number of seconds")

    out_dir = None
    try:
        doc_text = doc.read_text()
        replace_between_markers(doc_text, "", doc)  # fail before an hour of benchmarks
        load_start = os.getloadavg()[0]
        if args.from_json:
            out_dir = Path(args.from_json)
        else:
            out_dir = Path(args.out_dir) if args.out_dir else Path(
                tempfile.mkdtemp(prefix="bench-report."))
            out_dir.mkdir(parents=True, exist_ok=True)
            cores = os.cpu_count() or 1
            if load_start > 0.5 * cores:
                print(f"report: warning: load average {load_start:.2f} on {cores} cores; "
                      "figures from a loaded machine are not worth committing", file=sys.stderr)
            bench_dir = build(root)
            run_benchmark(bench_dir / "scheduler_bench", SCHEDULER_FILTER, args.repetitions,
                          args.min_time, out_dir / "scheduler_bench.json")
            run_benchmark(bench_dir / "pool_bench", POOL_FILTER, args.pool_repetitions,
                          args.min_time, out_dir / "pool_bench.json")
        stamp_path = out_dir / "stamp.json"
        if args.from_json:
            machine = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        else:
            machine = {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
                           "%Y-%m-%d %H:%M UTC"),
                       "commit": commit_of(root), "cpu": _cpu_model(), "cores": os.cpu_count(),
                       "load_start": load_start, "load_end": os.getloadavg()[0],
                       "interleaved": True}
            stamp_path.write_text(json.dumps(machine, indent=1) + "\n")
        results, repetitions = {}, {}
        for key in ("scheduler", "pool"):
            path = out_dir / f"{key}_bench.json"
            if not path.exists():
                raise BenchmarkError(f"{path} does not exist")
            parsed = parse_results(path.read_text(), path)
            results.update(parsed)
            repetitions[key] = max((r.repetitions for r in parsed.values()), default=0)
        cells = compute_rows(results)
    except (BenchmarkError, OSError, ValueError, subprocess.CalledProcessError) as e:
        print(f"report: FAILED: {e}", file=sys.stderr)
        if out_dir is not None and not args.from_json:
            print(f"report: the benchmarks' JSON output is in {out_dir}", file=sys.stderr)
        print(f"report: {doc} was not changed.", file=sys.stderr)
        return 1

    stamp = make_stamp(machine, repetitions)
    table = render_table(cells, stamp)
    print(table)
    if not args.dry_run:
        doc.write_text(replace_between_markers(doc_text, table, doc))
        print(f"report: wrote the table into {doc}")
    if not args.from_json:
        print(f"report: the JSON output is in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
