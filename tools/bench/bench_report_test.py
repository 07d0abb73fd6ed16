"""Tests of tools/bench/report's parsing, ratios, error handling and page
rewrite, on benchmark output recorded in tools/bench/testdata/ (no benchmark
runs here)."""

import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

# The workspace root: Bazel's runfiles tree, or the source tree under CTest.
ROOT = Path(__file__).absolute().parent.parent.parent
sys.path.insert(0, str(ROOT))
from tools.bench import bench_instructions  # pylint: disable=wrong-import-position
from tools.bench import bench_report  # pylint: disable=wrong-import-position
from tools.bench import callgrind  # pylint: disable=wrong-import-position

TESTDATA = ROOT / "tools" / "bench" / "testdata"
INSTRUCTIONS = TESTDATA / "instructions"

PAGE = """# Performance

Intro that must survive.

<!-- bench-report:begin -->
old figures
<!-- bench-report:end -->

## Running

The rest, also untouched.
"""


def _results(**rates):
    """{name: Result} with the given items_per_second."""
    return {name: bench_report.Result(name, 1, rate, {}) for name, rate in rates.items()}


class BenchReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.addCleanup(shutil.rmtree, self.dir)
        self.json_dir = self.dir / "json"
        shutil.copytree(TESTDATA, self.json_dir, ignore=shutil.ignore_patterns("instructions"))
        self.doc = self.dir / "performance.md"
        self.doc.write_text(PAGE)

    def report(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = bench_report.main(["--from-json", str(self.json_dir), "--doc", str(self.doc),
                                      *args])
        return code, out.getvalue(), err.getvalue()

    def edit_json(self, binary, edit):
        path = self.json_dir / f"{binary}_bench.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))

    def test_recorded_output_becomes_the_table_between_the_markers(self):
        code, out, err = self.report()
        self.assertEqual(code, 0, err)
        page = self.doc.read_text()
        before, rest = page.split("<!-- bench-report:begin -->")
        table, after = rest.split("<!-- bench-report:end -->")
        self.assertEqual(before, PAGE.split("<!-- bench-report:begin -->")[0])
        self.assertEqual(after, PAGE.split("<!-- bench-report:end -->")[1])
        self.assertNotIn("old figures", table)
        for row in bench_report.ROWS:
            self.assertIn(f"| {row.workload} |", table)
        # The stamp comes from the run's stamp.json.
        stamp = json.loads((TESTDATA / "stamp.json").read_text())
        self.assertIn(f"at commit `{stamp['commit']}`", table)
        self.assertIn(stamp["cpu"], table)
        self.assertIn("Medians of 2 repetitions (scheduler_bench", table)
        self.assertIn(table.strip(), out)
        # A second run replaces the table instead of adding one.
        self.assertEqual(self.report()[0], 0)
        self.assertEqual(self.doc.read_text(), page)

    def test_benchmarks_run_with_their_repetitions_interleaved(self):
        commands = []

        class Done:
            returncode = 0

        def fake_run(command, check=False):
            commands.append(command)
            return Done()

        real_run = bench_report.subprocess.run
        bench_report.subprocess.run = fake_run
        try:
            bench_report.run_benchmark(Path("/bin/scheduler_bench"), "^BM_", 3, 0.5,
                                       Path("/tmp/out.json"))
        finally:
            bench_report.subprocess.run = real_run
        self.assertEqual(len(commands), 1)
        self.assertIn("--benchmark_enable_random_interleaving=true", commands[0])
        self.assertIn("--benchmark_repetitions=3", commands[0])

    def test_the_stamp_says_whether_repetitions_were_interleaved(self):
        repetitions = {"scheduler": 3, "pool": 5}
        machine = {"date": "d", "commit": "c", "cpu": "x", "cores": 2, "load_start": 0.1,
                   "load_end": 0.2}
        self.assertNotIn("random order", bench_report.make_stamp(machine, repetitions))
        machine["interleaved"] = True
        stamp = bench_report.make_stamp(machine, repetitions)
        self.assertIn("(pool_bench, wall time), each binary's repetitions run in random order",
                      stamp)

    def test_medians_and_ratios_of_the_recorded_output(self):
        results = {}
        for binary in ("scheduler", "pool"):
            results.update(bench_report.parse_results(
                (TESTDATA / f"{binary}_bench.json").read_text(), binary))
        # Computed by hand from testdata/scheduler_bench.json: the median of
        # the two repetitions' items_per_second.
        w1 = results["BM_W1_SpawnYield_TestScheduler"]
        reps = [b["items_per_second"] for b in json.loads(
            (TESTDATA / "scheduler_bench.json").read_text())["benchmarks"]
            if b["name"] == "BM_W1_SpawnYield_TestScheduler"]
        self.assertEqual(len(reps), 2)
        self.assertAlmostEqual(w1.items_per_second, (reps[0] + reps[1]) / 2)
        # Recorded as BM_MemoryPerSuspendedTask_Reference/iterations:3.
        memory = results["BM_MemoryPerSuspendedTask_Reference"].counters
        self.assertAlmostEqual(memory["bytes_per_task"], 119.663, places=2)
        self.assertAlmostEqual(memory["allocs_per_task"], 1.0, places=4)
        cells = {c[0]: c for c in bench_report.compute_rows(results)}
        row = cells["W1 spawn+yield vs RandomReference"]
        reference = results["BM_W1_SpawnYield_RandomReference"]
        self.assertEqual(row[3], f"{w1.ns_per_item / reference.ns_per_item:.2f}x")

    def test_the_sweep_rows_against_the_bare_scheduler_and_the_bare_loop(self):
        results = bench_report.parse_results((TESTDATA / "scheduler_bench.json").read_text(),
                                             "scheduler")
        results.update(bench_report.parse_results((TESTDATA / "pool_bench.json").read_text(),
                                                  "pool"))
        harness = results["BM_SeedSweep_SmallScenario_Harness"].items_per_second
        bare = results["BM_SeedSweep_SmallScenario_BareScheduler"].items_per_second
        loop = results["BM_SeedSweep_SmallScenario_RandomReference"].items_per_second
        # testdata/scheduler_bench.json: the harness's edited runs, 61,234.5
        # and 65,432.1 seeds/s; the bare loop's as recorded, faster.
        self.assertAlmostEqual(harness, (61_234.5 + 65_432.1) / 2)
        self.assertGreater(loop, 1.1 * harness)
        cells = {c[0]: c for c in bench_report.compute_rows(results)}
        # The target row is as it was: the harness, the bare scheduler beside it.
        target = cells["sweep, 10 tasks x 100 steps, through the harness (reference: bare "
                       "scheduler)"]
        self.assertEqual(target[1:], (f"{harness:,.0f} seeds/s", f"{bare:,.0f} seeds/s",
                                      f"{bare / harness:.2f}x", "≥ 150,000 seeds/s", False))
        # The bare loop's row: information only, and its ratio is how many
        # times slower the harness is (the table's "simsched's cost over the
        # reference's"), so above 1 here.
        row = cells["sweep through the harness vs the bare random loop"]
        self.assertEqual(row[1:], (f"{harness:,.0f} seeds/s", f"{loop:,.0f} seeds/s",
                                   f"{loop / harness:.2f}x", "(info)", None))
        self.assertGreater(float(row[3].rstrip("x")), 1.1)

    def test_the_run_filters_select_every_benchmark_a_row_needs(self):
        for row in bench_report.ROWS:
            for name in (row.simsched, row.reference):
                bench_filter = (bench_report.POOL_FILTER if name.startswith("BM_Pool_")
                                else bench_report.SCHEDULER_FILTER)
                self.assertRegex(name, bench_filter)
        self.assertNotRegex("BM_SeedSweep_EmptyScenario_Harness", bench_report.SCHEDULER_FILTER)

    def test_the_recorded_harness_error_fails_the_report(self):
        # As recorded on 2026-11-29: the harness benchmark's ERROR OCCURRED.
        shutil.copy(TESTDATA / "scheduler_bench.harness_error.json",
                    self.json_dir / "scheduler_bench.json")
        code, out, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("2 benchmark run(s) reported an error", err)
        self.assertIn("BM_SeedSweep_SmallScenario_Harness: the sweep did not run every seed", err)
        self.assertEqual(out, "")
        self.assertEqual(self.doc.read_text(), PAGE)

    def test_option_suffixes_are_dropped_from_names(self):
        self.assertEqual(bench_report.base_name("BM_M/iterations:3"), "BM_M")
        self.assertEqual(bench_report.base_name("BM_Pool_X/real_time"), "BM_Pool_X")
        self.assertEqual(bench_report.base_name("BM_A/1000/threads:2"), "BM_A/1000")

    def test_an_error_in_one_repetition_fails_and_names_it(self):
        def fail_harness(data):
            run = next(b for b in data["benchmarks"]
                       if b["name"] == "BM_SeedSweep_SmallScenario_Harness")
            run["error_occurred"] = True
            run["error_message"] = "the sweep did not run every seed"
        self.edit_json("scheduler", fail_harness)
        code, out, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("BM_SeedSweep_SmallScenario_Harness: the sweep did not run every seed", err)
        self.assertIn("was not changed", err)
        self.assertEqual(out, "")
        self.assertEqual(self.doc.read_text(), PAGE)

    def test_an_error_in_every_repetition_fails_too(self):
        # Google Benchmark computes no aggregates for it; the report must not
        # mistake that for a missing row it can skip.
        def fail_all(data):
            for b in data["benchmarks"]:
                if b["run_name"] == "BM_Pool_SpawnComplete_AsioThreadPool/real_time":
                    b["error_occurred"] = True
                    b["error_message"] = "boom"
        self.edit_json("pool", fail_all)
        code, _, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("BM_Pool_SpawnComplete_AsioThreadPool: boom", err)

    def test_a_missing_benchmark_fails_and_is_named(self):
        self.edit_json("scheduler", lambda data: data.update(benchmarks=[
            b for b in data["benchmarks"] if not b["name"].startswith("BM_W2_Timers_Fifo")]))
        code, _, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("no result for BM_W2_Timers_FifoReference", err)
        self.assertEqual(self.doc.read_text(), PAGE)

    def test_truncated_output_fails_clearly(self):
        path = self.json_dir / "pool_bench.json"
        path.write_text(path.read_text()[:200])
        code, _, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("not Google Benchmark JSON", err)

    def test_a_page_without_markers_is_refused_before_anything_runs(self):
        for page in ("no markers\n", PAGE + PAGE,
                     "<!-- bench-report:end -->\n<!-- bench-report:begin -->\n"):
            self.doc.write_text(page)
            # No --from-json: it must fail on the page before building.
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = bench_report.main(["--doc", str(self.doc)])
            self.assertEqual(code, 1)
            self.assertIn("exactly one <!-- bench-report:begin -->", err.getvalue())
            self.assertNotIn("building", out.getvalue())
            self.assertEqual(self.doc.read_text(), page)

    def test_dry_run_leaves_the_page_alone(self):
        code, out, _ = self.report("--dry-run")
        self.assertEqual(code, 0)
        self.assertIn("| W1 spawn+yield vs RandomReference |", out)
        self.assertEqual(self.doc.read_text(), PAGE)

    def test_targets_are_met_at_the_boundary_and_missed_past_it(self):
        cost = [bench_report.Row("w", "cost", "S", "R", 1.5, "ns")]
        self.assertTrue(bench_report.compute_rows(_results(S=100.0, R=150.0), cost)[0][5])
        self.assertFalse(bench_report.compute_rows(_results(S=100.0, R=151.0), cost)[0][5])
        info = [bench_report.Row("w", "cost", "S", "R", None, "ns")]
        self.assertIsNone(bench_report.compute_rows(_results(S=1.0, R=9.0), info)[0][5])
        rate = [bench_report.Row("w", "rate", "S", "R", 150_000, "seeds/s")]
        self.assertTrue(bench_report.compute_rows(_results(S=150_000.0, R=1.0), rate)[0][5])
        self.assertFalse(bench_report.compute_rows(_results(S=149_999.0, R=1.0), rate)[0][5])
        rate_info = [bench_report.Row("w", "rate", "S", "R", None, "seeds/s")]
        cells = bench_report.compute_rows(_results(S=50_000.0, R=200_000.0), rate_info)
        self.assertEqual(cells[0][1:], ("50,000 seeds/s", "200,000 seeds/s", "4.00x", "(info)",
                                        None))
        speedup = [bench_report.Row("w", "speedup", "S", "R", 1.5, "tasks/s")]
        cells = bench_report.compute_rows(_results(S=3e6, R=2e6), speedup)
        self.assertEqual((cells[0][3], cells[0][5]), ("1.50x ahead", True))
        self.assertFalse(bench_report.compute_rows(_results(S=2.9e6, R=2e6), speedup)[0][5])
        memory = [bench_report.Row("m", "memory", "S", "R", 192)]

        def mem(bytes_, allocs):
            return {"S": bench_report.Result("S", 1, None, {"bytes_per_task": bytes_,
                                                            "allocs_per_task": allocs}),
                    "R": bench_report.Result("R", 1, None, {"bytes_per_task": 120.0,
                                                            "allocs_per_task": 1.0})}
        self.assertTrue(bench_report.compute_rows(mem(192.0, 1.0), memory)[0][5])
        self.assertFalse(bench_report.compute_rows(mem(193.0, 1.0), memory)[0][5])
        self.assertFalse(bench_report.compute_rows(mem(150.0, 2.0), memory)[0][5])
        self.assertEqual(bench_report.compute_rows(mem(480.0, 2.0), memory)[0][3], "4.00x")

    def test_the_table_counts_the_targets_met(self):
        cells = [("a", "1", "1", "1.00x", "≤ 1.5x", True), ("b", "1", "1", "2.00x", "≤ 1.5x", False),
                 ("c", "1", "1", "1.00x", "(info)", None)]
        table = bench_report.render_table(cells, "stamp")
        self.assertIn("| a | 1 | 1 | 1.00x | ≤ 1.5x | **yes** |", table)
        self.assertIn("| b | 1 | 1 | 2.00x | ≤ 1.5x | **no** |", table)
        self.assertIn("| c | 1 | 1 | 1.00x | (info) | — |", table)
        self.assertIn("1 of 2 targets met.", table)


# A callgrind file written by hand with what the parser must get right: name
# compression (a name first given on a `cfn=` line, then used by number), the
# cost line after `calls=` (the callee's inclusive cost, not the caller's
# own), relative positions, a second object, and a function named twice.
HAND_MADE = """# callgrind format
version: 1
creator: callgrind-3.19.0
cmd: scheduler_bench --benchmark_filter=^BM_X$

positions: line
events: Ir
summary: 1111

ob=(1) /tmp/scheduler_bench
fl=(1) bench.cc
fn=(1) BM_X(benchmark::State&)
10 100
+2 20
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfi=(2) ???
cfn=(2) __memcpy_avx_unaligned_erms
calls=3 0
* 9000
-1 3

ob=(2)
fl=(2)
fn=(2)
0 900
fn=(3) memalign
0 80
fn=(4) __memset_avx2_unaligned_erms
0 8

ob=(1)
fl=(1)
fn=(1)
12 0
fn=(5) Helper()
3 0

totals: 1111
"""


def _count(name, ir, string_ir, items):
    return bench_instructions.Count(name, ir, string_ir, items)


class CallgrindParseTest(unittest.TestCase):
    def test_hand_made_file(self):
        profile = callgrind.parse(HAND_MADE)
        self.assertEqual(profile.total, 1111)
        bench, libc = "/tmp/scheduler_bench", "/usr/lib/x86_64-linux-gnu/libc.so.6"
        # 100 + 20 + 3 of its own; the 9,000 after calls= is memcpy's, inclusive.
        self.assertEqual(profile.self_ir[(bench, "BM_X(benchmark::State&)")], 123)
        self.assertEqual(profile.self_ir[(libc, "__memcpy_avx_unaligned_erms")], 900)
        self.assertEqual(profile.self_ir[(bench, "Helper()")], 0)
        # memcpy and memset, not memalign (an allocator).
        self.assertEqual(callgrind.string_function_ir(profile), 908)

    def test_recorded_file_agrees_with_callgrind_annotate(self):
        # The figures callgrind_annotate gave for this file (testdata/README.md).
        path = INSTRUCTIONS / "BM_W2_Timers_TestScheduler.callgrind"
        profile = callgrind.parse(path.read_text(), path)
        self.assertEqual(profile.total, 152_169_595)
        self.assertEqual(callgrind.string_function_ir(profile), 2_067_671 + 126)

    def test_a_string_function_outside_libc_is_not_counted(self):
        profile = callgrind.parse(HAND_MADE.replace("libc.so.6", "libfoo.so"))
        self.assertEqual(callgrind.string_function_ir(profile), 0)

    def test_malformed_files_are_refused(self):
        for text, message in (
                ("<html>not callgrind</html>", "not a callgrind output file"),
                (HAND_MADE.replace("events: Ir", "events: Dr"), "no Ir event"),
                (HAND_MADE.replace("totals: 1111", "totals: 1112").replace(
                    "summary: 1111", "summary: 1112"), "add up to 1,111 Ir but it declares 1,112"),
                (HAND_MADE.replace("fn=(5) Helper()", "fn=(6)"), "(6) used before it is named"),
                (HAND_MADE.replace("calls=3 0", "jump=3 0"), "jump lines")):
            with self.assertRaisesRegex(ValueError, re.escape(message)):
                callgrind.parse(text)


class InstructionReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.addCleanup(shutil.rmtree, self.dir)
        self.runs = self.dir / "runs"
        shutil.copytree(INSTRUCTIONS, self.runs)
        self.doc = self.dir / "performance.md"
        self.page = PAGE.replace("## Running", "<!-- bench-instructions:begin -->\nold counts\n"
                                 "<!-- bench-instructions:end -->\n\n## Running")
        self.doc.write_text(self.page)

    def report(self, *args, from_dir=True):
        out, err = io.StringIO(), io.StringIO()
        argv = ["--instructions", "--doc", str(self.doc), *args]
        if from_dir:
            argv += ["--from-dir", str(self.runs)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = bench_report.main(argv)
        return code, out.getvalue(), err.getvalue()

    def edit_json(self, name, edit):
        path = self.runs / f"{name}.json"
        data = json.loads(path.read_text())
        edit(data["benchmarks"][0])
        path.write_text(json.dumps(data))

    def test_recorded_runs_become_the_table_between_the_markers(self):
        code, out, err = self.report("--write")
        self.assertEqual(code, 0, err)
        page = self.doc.read_text()
        before, rest = page.split(bench_instructions.BEGIN)
        table, after = rest.split(bench_instructions.END)
        self.assertEqual(before, self.page.split(bench_instructions.BEGIN)[0])
        self.assertEqual(after, self.page.split(bench_instructions.END)[1])
        self.assertNotIn("old counts", table)
        # The time report's table is another's: untouched.
        self.assertIn("<!-- bench-report:begin -->\nold figures\n<!-- bench-report:end -->",
                      page)
        for row in bench_instructions.ROWS:
            self.assertIn(f"| {row.workload} |", table)
        # W2 from the recorded full file: 152,169,595 Ir, 2,067,797 of it in
        # mem*, over the 100,000 timers of its JSON; the reference's from its
        # cut-down file.
        reference = callgrind.parse((self.runs / "BM_W2_Timers_RandomReference.callgrind")
                                    .read_text())
        simsched_per_timer = 152_169_595 / 100_000
        reference_per_timer = reference.total / 100_000
        reference_string = callgrind.string_function_ir(reference) / 100_000
        self.assertIn(f"| W2 100k timers, per timer, vs RandomReference | 1,521.7 | "
                      f"{reference_per_timer:,.1f} | "
                      f"{simsched_per_timer / reference_per_timer:.2f}x | 20.7 / "
                      f"{reference_string:,.1f} | "
                      f"{(simsched_per_timer - 20.67797) / (reference_per_timer - reference_string):.2f}x"
                      f" | ≤ 1.5x | **no** |", table)
        stamp = json.loads((INSTRUCTIONS / "stamp.json").read_text())
        self.assertIn(f"at commit `{stamp['commit']}`", table)
        self.assertIn(stamp["compiler"], table)
        self.assertIn(stamp["valgrind"], table)
        # The sweep per seed through the harness against the bare random loop:
        # information only, the harness's count over the loop's (not inverted).
        harness = bench_instructions.read_count(self.runs, "BM_SeedSweep_SmallScenario_Harness")
        loop = bench_instructions.read_count(self.runs,
                                             "BM_SeedSweep_SmallScenario_RandomReference")
        self.assertEqual((harness.items, loop.items), (20, 20))
        # Apart enough that the inverted ratio would print differently.
        self.assertGreater(abs(harness.per_item / loop.per_item - 1), 0.02)
        row = next(line for line in table.splitlines()
                   if line.startswith("| sweep, per seed, through the harness vs the bare random "
                                      "loop |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        self.assertEqual(cells[1:4], [bench_instructions._fig(harness.per_item),
                                      bench_instructions._fig(loop.per_item),
                                      f"{harness.per_item / loop.per_item:.2f}x"])
        self.assertEqual(cells[6:], ["(info)", "—"])
        # The smaller sizes of that run are said.
        self.assertIn("`SIMSCHED_BENCH_SWEEP_SEEDS=20`, `SIMSCHED_BENCH_W1_TASKS=100`", table)
        self.assertIn(table.strip(), out)
        # A second run replaces the table instead of adding one.
        self.assertEqual(self.report("--write")[0], 0)
        self.assertEqual(self.doc.read_text(), page)

    def test_without_write_the_page_is_left_alone(self):
        for args in ((), ("--dry-run",)):
            code, out, _ = self.report(*args)
            self.assertEqual(code, 0)
            self.assertIn("| W1 spawn+yield, per poll, vs RandomReference |", out)
            self.assertEqual(self.doc.read_text(), self.page)

    def test_items_are_the_counter_times_the_iterations(self):
        name = "BM_W3_PingPong_TestScheduler"
        self.assertEqual(bench_instructions.read_count(self.runs, name).items, 1_000_000)

        def two_iterations(run):
            run["iterations"] = 2
        self.edit_json(name, two_iterations)
        count = bench_instructions.read_count(self.runs, name)
        self.assertEqual(count.items, 2_000_000)
        self.assertEqual(count.per_item, count.ir / 2_000_000)

    def test_a_benchmark_without_items_fails(self):
        self.edit_json("BM_W1_SpawnYield_FifoReference", lambda run: run.pop("items_per_iteration"))
        code, out, err = self.report("--write")
        self.assertEqual(code, 1)
        self.assertIn("BM_W1_SpawnYield_FifoReference reported no items_per_iteration", err)
        self.assertEqual(out, "")
        self.assertEqual(self.doc.read_text(), self.page)

    def test_a_benchmark_error_fails_and_is_named(self):
        def fail(run):
            run["error_occurred"] = True
            run["error_message"] = "timers fired: expected 100000, got 99999"
        self.edit_json("BM_W2_Timers_FifoReference", fail)
        code, out, err = self.report("--write")
        self.assertEqual(code, 1)
        self.assertIn("BM_W2_Timers_FifoReference: timers fired: expected 100000, got 99999", err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(out, "")
        self.assertEqual(self.doc.read_text(), self.page)

    def test_a_zero_count_fails(self):
        # What a --toggle-collect pattern that matches no function leaves.
        path = self.runs / "BM_SeedSweep_SmallScenario_Harness.callgrind"
        path.write_text(HAND_MADE.replace("1111", "0").replace("100\n", "0\n").replace(
            " 20\n", " 0\n").replace(" 3\n", " 0\n").replace(" 900\n", " 0\n").replace(
            " 80\n", " 0\n").replace(" 8\n", " 0\n"))
        code, _, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("callgrind counted 0 instructions in BM_SeedSweep_SmallScenario_Harness",
                      err)

    def test_a_missing_or_unreadable_run_fails(self):
        (self.runs / "BM_W3_PingPong_FifoReference.callgrind").unlink()
        code, _, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("BM_W3_PingPong_FifoReference.callgrind does not exist", err)
        shutil.copy(INSTRUCTIONS / "BM_W3_PingPong_FifoReference.json",
                    self.runs / "BM_W3_PingPong_FifoReference.callgrind")
        code, _, err = self.report()
        self.assertEqual(code, 1)
        self.assertIn("not a callgrind output file", err)

    def test_a_page_without_markers_is_refused_before_anything_runs(self):
        for page in (PAGE, self.page + self.page):
            self.doc.write_text(page)
            code, out, err = self.report("--write", from_dir=False)
            self.assertEqual(code, 1)
            self.assertIn("exactly one <!-- bench-instructions:begin -->", err)
            self.assertNotIn("building", out)
            self.assertEqual(self.doc.read_text(), page)

    def test_missing_valgrind_fails_with_how_to_install_it(self):
        empty = self.dir / "empty-path"
        empty.mkdir()
        with mock.patch.dict(os.environ, {"PATH": str(empty)}):
            code, out, err = self.report("--out-dir", str(self.dir / "out"), from_dir=False)
        self.assertEqual(code, 1)
        self.assertIn("valgrind is not installed", err)
        self.assertIn("apt-get install -y valgrind", err)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("building", out)

    def test_write_and_dry_run_together_are_refused(self):
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            bench_report.main(["--instructions", "--write", "--dry-run"])

    def test_ratios_with_and_without_string_functions(self):
        rows = [bench_instructions.Row("w", "S", "R", 1.5)]
        # 150 vs 100 a item: met at the boundary; without mem* (30 and 0 a
        # item) 120 vs 100.
        cells = bench_instructions.compute_rows(
            {"S": _count("S", 15_000, 3_000, 100), "R": _count("R", 10_000, 0, 100)}, rows)
        self.assertEqual(cells[0][1:], ("150.0", "100.0", "1.50x", "30.0 / 0.0", "1.20x",
                                        "≤ 1.5x", True))
        cells = bench_instructions.compute_rows(
            {"S": _count("S", 15_100, 3_000, 100), "R": _count("R", 10_000, 0, 100)}, rows)
        self.assertFalse(cells[0][7])
        info = [bench_instructions.Row("w", "S", "R", None)]
        cells = bench_instructions.compute_rows(
            {"S": _count("S", 2_000_000, 0, 10), "R": _count("R", 1_000_000, 0, 10)}, info)
        self.assertEqual(cells[0][1:4], ("200,000", "100,000", "2.00x"))
        self.assertIsNone(cells[0][7])
        table = bench_instructions.render_table(cells, "stamp")
        self.assertIn("0 of 0 targets met", table)


if __name__ == "__main__":
    unittest.main(verbosity=2)
