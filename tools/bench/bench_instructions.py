"""tools/bench/report --instructions: issue 16's workloads counted in
instructions (callgrind) rather than time, in one command.

  tools/bench/report --instructions            build (-c opt), count, print the table
  tools/bench/report --instructions --write    the same, and put the table into
                                               docs/performance.md
  tools/bench/report --instructions --from-dir DIR
                                               no build or run: the table from the
                                               files a previous run left in DIR

Time ratios on a shared host scatter 2x between runs; instruction counts do
not. It builds //tools/bench:scheduler_bench with --config=opt (as the time
report does), copies it out of bazel-bin, and runs each benchmark alone in its
own process under

  valgrind --tool=callgrind --toggle-collect='*BM_NAME*' scheduler_bench \\
    --benchmark_filter='^BM_NAME$' --benchmark_min_time=0

so the count is the benchmark function's, inclusive, over one iteration (the
inputs are made at start-up, outside it: scheduler_bench.cc). It divides that
by the items of the iteration (the benchmark's `items_per_iteration` counter:
polls, timers fired, messages, seeds) and reports separately the part inside
libc's mem* functions, whose `rep movsb` / `rep stosb` callgrind counts one
instruction a byte copied or set. With --write the table replaces the lines
between `<!-- bench-instructions:begin -->` and `<!-- bench-instructions:end -->`.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.bench import bench_report
from tools.bench import callgrind
from tools.bench.bench_report import BenchmarkError

BEGIN = "<!-- bench-instructions:begin -->"
END = "<!-- bench-instructions:end -->"
INSTALL_HINT = "apt-get install -y valgrind"


class Row:
    """One line of the table: simsched's benchmark against a reference's,
    instructions per item; met when the ratio is at most `target` (None: for
    information)."""

    def __init__(self, workload, simsched, reference, target):
        self.workload = workload
        self.simsched = simsched
        self.reference = reference
        self.target = target


ROWS = [
    Row("W1 spawn+yield, per poll, vs RandomReference", "BM_W1_SpawnYield_TestScheduler",
        "BM_W1_SpawnYield_RandomReference", 1.5),
    Row("W1 spawn+yield, per poll, vs FifoReference", "BM_W1_SpawnYield_TestScheduler",
        "BM_W1_SpawnYield_FifoReference", None),
    Row("W2 100k timers, per timer, vs RandomReference", "BM_W2_Timers_TestScheduler",
        "BM_W2_Timers_RandomReference", 1.5),
    Row("W2 100k timers, per timer, vs FifoReference", "BM_W2_Timers_TestScheduler",
        "BM_W2_Timers_FifoReference", None),
    Row("W3 ping-pong, per message, vs RandomReference", "BM_W3_PingPong_TestScheduler",
        "BM_W3_PingPong_RandomReference", 1.5),
    Row("W3 ping-pong, per message, vs FifoReference", "BM_W3_PingPong_TestScheduler",
        "BM_W3_PingPong_FifoReference", None),
    Row("sweep (10 tasks x 100 steps), per seed, through the harness vs a bare scheduler",
        "BM_SeedSweep_SmallScenario_Harness", "BM_SeedSweep_SmallScenario_BareScheduler", None),
    Row("sweep, per seed, through the harness vs the bare random loop",
        "BM_SeedSweep_SmallScenario_Harness", "BM_SeedSweep_SmallScenario_RandomReference", None),
]


def benchmarks(rows=ROWS):
    """Every benchmark the rows need, each once, in the rows' order."""
    return list(dict.fromkeys(n for r in rows for n in (r.simsched, r.reference)))


class Count:
    """One benchmark's callgrind count over its measured run."""

    def __init__(self, name, ir, string_ir, items):
        self.name = name
        self.ir = ir                # Ir collected in the benchmark function
        self.string_ir = string_ir  # of which inside libc's mem* functions
        self.items = items          # items over the run (per iteration x iterations)

    @property
    def per_item(self):
        return self.ir / self.items

    @property
    def string_per_item(self):
        return self.string_ir / self.items


def read_items(json_text, name, source):
    """Items over the benchmark's run, from its Google Benchmark JSON output:
    `items_per_iteration` x iterations. Raises BenchmarkError if the run
    reported an error or the counter is missing or zero."""
    results = bench_report.parse_results(json_text, source)  # raises on an error
    try:
        runs = [b for b in json.loads(json_text)["benchmarks"]
                if b.get("run_type", "iteration") == "iteration" and
                bench_report.base_name(b.get("run_name", b["name"])) == name]
    except (KeyError, TypeError) as e:
        raise BenchmarkError(f"{source}: not Google Benchmark JSON ({e})") from e
    if name not in results or len(runs) != 1:
        raise BenchmarkError(f"{source}: expected one run of {name}, found {len(runs)}")
    run = runs[0]
    if not run.get("items_per_iteration") or not run.get("iterations"):
        raise BenchmarkError(f"{source}: {name} reported no items_per_iteration (or no "
                             f"iterations); it cannot be divided into items")
    return round(run["items_per_iteration"]) * int(run["iterations"])


def read_count(directory, name):
    """The Count of benchmark `name` from the files its run left in `directory`."""
    json_path, out_path = directory / f"{name}.json", directory / f"{name}.callgrind"
    for path in (json_path, out_path):
        if not path.exists():
            raise BenchmarkError(f"{path} does not exist (was {name} run?)")
    items = read_items(json_path.read_text(), name, json_path)
    try:
        profile = callgrind.parse(out_path.read_text(), out_path)
    except ValueError as e:
        raise BenchmarkError(str(e)) from e
    if profile.total == 0:
        raise BenchmarkError(f"{out_path}: callgrind counted 0 instructions in {name} (did "
                             f"--toggle-collect='*{name}*' match no function?)")
    return Count(name, profile.total, callgrind.string_function_ir(profile), items)


def _fig(x):
    return f"{x:,.1f}" if x < 10_000 else f"{x:,.0f}"


def compute_rows(counts, rows=ROWS):
    """[(workload, simsched, reference, ratio, string part, ratio without,
    target, met)] as table cells."""
    cells = []
    for row in rows:
        s, r = counts[row.simsched], counts[row.reference]
        ratio = s.per_item / r.per_item
        without = (s.per_item - s.string_per_item) / (r.per_item - r.string_per_item)
        met = None if row.target is None else ratio <= row.target
        cells.append((row.workload, _fig(s.per_item), _fig(r.per_item), f"{ratio:.2f}x",
                      f"{_fig(s.string_per_item)} / {_fig(r.string_per_item)}",
                      f"{without:.2f}x", "(info)" if row.target is None else
                      f"≤ {row.target}x", met))
    return cells


def render_table(cells, stamp):
    """The Markdown that goes between the markers."""
    lines = [BEGIN,
             "<!-- Written by tools/bench/report --instructions --write; edit the script, "
             "not these lines. -->",
             "", stamp, "",
             "| workload | simsched | reference | ratio | of which mem* (1/byte), simsched / "
             "reference | ratio without mem* | target | met |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for workload, simsched, reference, ratio, string, without, target, met in cells:
        verdict = "—" if met is None else ("**yes**" if met else "**no**")
        lines.append(f"| {workload} | {simsched} | {reference} | {ratio} | {string} | "
                     f"{without} | {target} | {verdict} |")
    counted = [c[7] for c in cells if c[7] is not None]
    lines += ["", f"{sum(counted)} of {len(counted)} targets met in instructions.", END]
    return "\n".join(lines)


def make_stamp(machine):
    """The paragraph above the table; `machine` is the run's stamp.json."""
    def get(key):
        return machine.get(key, "unknown")
    sizes = machine.get("sizes") or {}
    size_note = ("default sizes" if not sizes else "smaller than the defaults: " +
                 ", ".join(f"`{k}={v}`" for k, v in sorted(sizes.items())))
    return (f"Counted by `tools/bench/report --instructions` on {get('date')} at commit "
            f"`{get('commit')}`: callgrind ({get('valgrind')}) on `scheduler_bench` built "
            f"with `--config=opt` (-O2) by {get('compiler')}, {size_note}. Each benchmark "
            f"runs alone in its own process; the count is its benchmark function's, "
            f"inclusive (`--toggle-collect`), over one iteration (`--benchmark_min_time=0`; "
            f"the inputs are made at start-up, outside it), divided by the items of that "
            f"iteration. \"of which mem*\" is the part inside libc's mem* functions, whose "
            f"`rep movsb`/`rep stosb` callgrind counts one instruction a byte; the target is "
            f"judged on the raw ratio.")


def replace_between_markers(text, block, path):
    """`text` with the instruction table's markers and what is between them
    replaced by `block`."""
    return bench_report.replace_between_markers(text, block, path, BEGIN, END,
                                                "the instruction table")


def _first_line(command):
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError:
        return None
    lines = result.stdout.strip().splitlines()
    return lines[0].strip() if result.returncode == 0 and lines else None


def _compiler(binary):
    """Which compiler built `binary`, from its .comment section (the C runtime's
    objects add GCC's line to a clang build too, so clang's wins)."""
    try:
        result = subprocess.run(["readelf", "-p", ".comment", str(binary)],
                                capture_output=True, text=True, check=False)
    except OSError:
        return "unknown compiler"
    comments = [re.sub(r"^\s*\[\s*\w+\]\s*", "", line).strip()
                for line in result.stdout.splitlines() if "]" in line]
    for mark in ("clang version", "GCC:"):
        for comment in comments:
            if mark in comment:
                return comment
    return "unknown compiler"


def run_count(binary, name, out_dir, env):
    """Runs benchmark `name` alone under callgrind, leaving NAME.callgrind,
    NAME.json and NAME.log in `out_dir`."""
    print(f"report: counting {name} under callgrind", flush=True)
    command = ["valgrind", "--tool=callgrind", f"--toggle-collect=*{name}*",
               f"--callgrind-out-file={out_dir / (name + '.callgrind')}",
               str(binary), f"--benchmark_filter=^{name}$", "--benchmark_min_time=0",
               f"--benchmark_out={out_dir / (name + '.json')}", "--benchmark_out_format=json"]
    log = out_dir / f"{name}.log"
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                              check=False).returncode
    if code != 0:
        raise BenchmarkError(f"{name} exited with status {code} under callgrind (its output: "
                             f"{log}): " + " ".join(command))


def main(argv):
    parser = argparse.ArgumentParser(prog="tools/bench/report --instructions",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true",
                        help="put the table into the document (default: print it only)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the table only (the default; refused with --write)")
    parser.add_argument("--from-dir", metavar="DIR",
                        help="use DIR's NAME.callgrind, NAME.json and stamp.json; no build, "
                        "no run")
    parser.add_argument("--out-dir", metavar="DIR",
                        help="where to keep the binary and the runs' output (default: a new "
                        "temporary directory)")
    parser.add_argument("--doc", default=None, help="the document to update "
                        "(default: docs/performance.md of this source tree)")
    parser.add_argument("--w1-tasks", type=int, metavar="N",
                        help="SIMSCHED_BENCH_W1_TASKS for the run (default: the benchmark's "
                        "10,000)")
    parser.add_argument("--sweep-seeds", type=int, metavar="N",
                        help="SIMSCHED_BENCH_SWEEP_SEEDS for the run (default: the benchmark's "
                        "2,000)")
    args = parser.parse_args(argv)
    if args.write and args.dry_run:
        parser.error("--write and --dry-run contradict each other")
    for flag in ("w1_tasks", "sweep_seeds"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    root = Path(__file__).resolve().parent.parent.parent
    doc = Path(args.doc) if args.doc else root / "docs" / "performance.md"

    out_dir = None
    try:
        doc_text = None
        if args.write:
            doc_text = doc.read_text()
            replace_between_markers(doc_text, "", doc)  # fail before the runs
        if args.from_dir:
            out_dir = Path(args.from_dir)
            stamp_path = out_dir / "stamp.json"
            machine = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        else:
            valgrind = _first_line(["valgrind", "--version"])
            if valgrind is None:
                raise BenchmarkError(f"valgrind is not installed (or does not run): the "
                                     f"instruction counts need callgrind. Install it with "
                                     f"`{INSTALL_HINT}` (Debian's package).")
            out_dir = Path(args.out_dir) if args.out_dir else Path(
                tempfile.mkdtemp(prefix="bench-instructions."))
            out_dir.mkdir(parents=True, exist_ok=True)
            bench_dir = bench_report.build(root, ["//tools/bench:scheduler_bench"])
            # bazel-bin follows the last build's configuration: keep this one's binary.
            binary = out_dir / "scheduler_bench"
            shutil.copyfile(bench_dir / "scheduler_bench", binary)
            binary.chmod(0o755)
            env = dict(os.environ)
            sizes = {}
            for key, value in (("SIMSCHED_BENCH_W1_TASKS", args.w1_tasks),
                               ("SIMSCHED_BENCH_SWEEP_SEEDS", args.sweep_seeds)):
                env.pop(key, None)
                if value is not None:
                    env[key] = sizes[key] = str(value)
            machine = {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
                           "%Y-%m-%d %H:%M UTC"),
                       "commit": bench_report.commit_of(root), "compiler": _compiler(binary),
                       "valgrind": valgrind, "sizes": sizes}
            for name in benchmarks():
                run_count(binary, name, out_dir, env)
            (out_dir / "stamp.json").write_text(json.dumps(machine, indent=1) + "\n")
        counts = {name: read_count(out_dir, name) for name in benchmarks()}
        cells = compute_rows(counts)
    except (BenchmarkError, OSError, ValueError, subprocess.CalledProcessError) as e:
        print(f"report: FAILED: {e}", file=sys.stderr)
        if out_dir is not None and not args.from_dir:
            print(f"report: the runs' output is in {out_dir}", file=sys.stderr)
        if args.write:
            print(f"report: {doc} was not changed.", file=sys.stderr)
        return 1

    table = render_table(cells, make_stamp(machine))
    print(table)
    if args.write:
        doc.write_text(replace_between_markers(doc_text, table, doc))
        print(f"report: wrote the table into {doc}")
    if not args.from_dir:
        print(f"report: the runs' output is in {out_dir}")
    return 0
