"""Tests of tools/bench/report's parsing, ratios, error handling and page
rewrite, on benchmark output recorded in tools/bench/testdata/ (no benchmark
runs here)."""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

# The workspace root: Bazel's runfiles tree, or the source tree under CTest.
ROOT = Path(__file__).absolute().parent.parent.parent
sys.path.insert(0, str(ROOT))
from tools.bench import bench_report  # pylint: disable=wrong-import-position

TESTDATA = ROOT / "tools" / "bench" / "testdata"

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
        shutil.copytree(TESTDATA, self.json_dir)
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
