#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/demo/test_pel_demo_report.py - tools/pel-demo-report on the fixture results folder
tests/demo/fixtures/run (what tools/demo.sh writes, with figures chosen by hand), and its max-load
rule at the edges.

    test_pel_demo_report.py PEL_DEMO_REPORT FIXTURE_DIR

The fixture, latency in us (p50 / p99), spin exp:10us:
    load   pel-feed    feed-pool    ideal FCFS
    30     20 / 40     50 / 80      14 / 45
    50     25 / 60     60 / 150     20 / 62
    70     35 / 90     90 / 600     33 / 140
    90     60 / 250    400 / 3000   90 / 450
plus a feed-pool run at 110 % that failed, and the feed mode at 20000/s for both.
"""
import importlib.machinery
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True

TOOL = FIXTURE = None


def load_tool():
    loader = importlib.machinery.SourceFileLoader("pel_demo_report", TOOL)
    spec = importlib.util.spec_from_loader("pel_demo_report", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def run(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True,
                          timeout=120)


class Fixture(unittest.TestCase):
    """The whole report on a copy of the fixture folder."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pel-demo-report.")
        self.dir = os.path.join(self.tmp, "run")
        shutil.copytree(FIXTURE, self.dir)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def ratios(self):
        with open(os.path.join(self.dir, "results.json")) as f:
            doc = json.load(f)
        return doc, {r["name"]: r for r in doc["ratios"]}

    def test_ratios(self):
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        self.assertAlmostEqual(rat["p50_vs_epoll_pool"]["value"], 25 / 60, places=6)
        self.assertAlmostEqual(rat["p99_vs_epoll_pool"]["value"], 60 / 150, places=6)
        self.assertAlmostEqual(rat["p50_vs_ideal_fcfs"]["value"], 25 / 20, places=6)
        # pel: under 100 us up to 70 % (90 us), 250 us at 90 %: 70 + 20 * 10 / 160 = 71.25
        # pool: 80 us at 30 %, 150 us at 50 %: 30 + 20 * 20 / 70 = 35.714...
        ml = rat["max_load_p99_100us_vs_epoll_pool"]
        self.assertAlmostEqual(ml["pel_load"], 71.25, places=6)
        self.assertAlmostEqual(ml["pool_load"], 30 + 20 * 20 / 70, places=6)
        self.assertEqual(ml["pel_how"], "interpolated")
        self.assertEqual(ml["pool_how"], "interpolated")
        self.assertAlmostEqual(ml["value"], 71.25 / (30 + 20 * 20 / 70), places=6)
        # targets and verdicts
        self.assertEqual((rat["p50_vs_epoll_pool"]["target"], rat["p50_vs_epoll_pool"]["met"]),
                         (0.5, True))
        self.assertEqual((rat["p99_vs_epoll_pool"]["target"], rat["p99_vs_epoll_pool"]["met"]),
                         (1.0, True))
        self.assertEqual((rat["p50_vs_ideal_fcfs"]["target"], rat["p50_vs_ideal_fcfs"]["met"]),
                         (1.5, True))
        self.assertEqual((ml["target"], ml["better"], ml["met"]), (1.5, "higher", True))
        self.assertIn("interpolated", ml["how"])

    def test_results_json_form(self):
        r = run(self.dir, "--no-plots", "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        doc, rat = self.ratios()
        # pel-bench's form: bench, cpu, metrics [{name, value, unit}], ratios [{name, value}]
        self.assertEqual(doc["bench"], "demo")
        self.assertEqual(doc["cpu"], "Fixture CPU 9000")
        self.assertIsInstance(doc["metrics"], list)
        for m in doc["metrics"]:
            self.assertEqual(set(m) >= {"name", "value", "unit"}, True, m)
            self.assertIsInstance(m["name"], str)
            self.assertIsInstance(m["value"], (int, float))
        names = {m["name"]: m for m in doc["metrics"]}
        self.assertEqual(names["pel-feed_load50_latency_p50"]["value"], 25000)
        self.assertEqual(names["pel-feed_load50_latency_p50"]["unit"], "ns")
        self.assertEqual(names["feed-pool_load90_latency_p99"]["value"], 3000000)
        self.assertEqual(names["ideal_fcfs_load50_latency_p50"]["value"], 20000)
        self.assertEqual(names["pel-feed_feed_latency_p50"]["value"], 30000)
        self.assertEqual(names["pel-feed_max_load_p99_100us"]["unit"], "%")
        self.assertEqual([r["name"] for r in doc["ratios"]],
                         ["p50_vs_epoll_pool", "p99_vs_epoll_pool", "p50_vs_ideal_fcfs",
                          "max_load_p99_100us_vs_epoll_pool"])
        for r in doc["ratios"]:
            self.assertTrue({"name", "value", "target", "better", "met", "how"} <= set(r), r)
        self.assertNotIn("interrupted", doc)

    def test_table(self):
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        head = [l for l in lines if l.startswith("load ")]
        self.assertEqual(len(head), 1, r.stdout)
        self.assertIn("pel-feed p50 / p99 / p99.9", head[0])
        self.assertIn("feed-pool p50 / p99 / p99.9", head[0])
        self.assertIn("ideal FCFS p50 / p99 / p99.9", head[0])
        self.assertLess(head[0].index("pel-feed"), head[0].index("feed-pool"))
        row = {l.split()[0]: l.split() for l in lines
               if len(l.split()) > 1 and l.split()[1] == "%"}
        self.assertEqual(sorted(row, key=int), ["30", "50", "70", "90", "110"], r.stdout)
        # "50 % 50000  25.0 / 60.0 / 95.0  60.0 / 150 / 300  20.0 / 62.0 / 95.0"
        self.assertEqual(" ".join(row["50"][2:]),
                         "50000 25.0 / 60.0 / 95.0 60.0 / 150 / 300 20.0 / 62.0 / 95.0")
        self.assertEqual(" ".join(row["90"][2:]),
                         "90000 60.0 / 250 / 900 400 / 3000 / 8000 90.0 / 450 / 700")
        # the failed run: a row without figures, and a note
        self.assertEqual(" ".join(row["110"][2:]), "110000 - - -")
        self.assertTrue(any("110 %" in l and "pel-load exit 1" in l for l in lines), r.stdout)
        self.assertTrue(any(l.startswith("p50_vs_epoll_pool") and "0.417" in l for l in lines))
        # feed mode
        feed = [l.split() for l in lines if l.startswith("pel-feed ") or
                l.startswith("feed-pool ")]
        self.assertEqual([f[0] for f in feed], ["pel-feed", "feed-pool"], r.stdout)
        self.assertEqual(feed[0][1:9], ["20000", "30.0", "/", "80.0", "/", "200", "40000",
                                        "39988"])
        # report.md: the same table in markdown, the sections, the host
        with open(os.path.join(self.dir, "report.md")) as f:
            md = f.read()
        self.assertIn("| 50 % | 50000 | 25.0 / 60.0 / 95.0 | 60.0 / 150 / 300 | "
                      "20.0 / 62.0 / 95.0 |", md)
        for sec in ("## Host", "## Latency", "## Ratios", "## Plots", "## Trace", "## Commands"):
            self.assertIn(sec, md)
        self.assertIn("Fixture CPU 9000", md)
        self.assertIn("Linux 6.1.0-fixture", md)
        self.assertIn("pel-check: not ready", md)
        self.assertIn("**4 of 4 ratios meet their target**: `p50_vs_epoll_pool` 0.417 (<= 0.5); ",
                      md)
        self.assertIn("build-demo/tools/pel-check --cpus 1", md)
        self.assertRegex(md, r"\| max_load_p99_100us_vs_epoll_pool \| (1\.99|2) \| >= 1\.5 "
                             r"\| yes \|")

    def test_plots(self):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            r = run(self.dir)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("plots skipped: matplotlib is not installed", r.stdout)
            return
        r = run(self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        for p in ("latency-vs-load.png", "cdf.png"):
            path = os.path.join(self.dir, p)
            self.assertTrue(os.path.getsize(path) > 1000, p)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with open(os.path.join(self.dir, "report.md")) as f:
            md = f.read()
        self.assertIn("](latency-vs-load.png)", md)
        self.assertIn("](cdf.png)", md)

    def rewrite_p99(self, server, p99_us):
        """Set the p99 of @server's spin runs: {load: us}."""
        for load, us in p99_us.items():
            p = os.path.join(self.dir, "runs", "spin-%d-%s.load.json" % (load, server))
            with open(p) as f:
                doc = json.load(f)
            for m in doc["metrics"]:
                if m["name"] == "latency_p99":
                    m["value"] = us * 1000
            with open(p, "w") as f:
                json.dump(doc, f)

    def set_metrics(self, server, load, **vals):
        """Set metrics of @server's spin run at @load: name=value, "_" for "." (p99_9)."""
        p = os.path.join(self.dir, "runs", "spin-%d-%s.load.json" % (load, server))
        with open(p) as f:
            doc = json.load(f)
        for m in doc["metrics"]:
            k = m["name"].replace(".", "_")
            if k in vals:
                m["value"] = vals[k]
        with open(p, "w") as f:
            json.dump(doc, f)

    def lose(self, server, load, n):
        p = os.path.join(self.dir, "runs", "spin-%d-%s.load.json" % (load, server))
        with open(p) as f:
            sent = {m["name"]: m["value"] for m in json.load(f)["metrics"]}["sent"]
        self.set_metrics(server, load, lost=n, answered=sent - n)

    def maxload(self):
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        return self.ratios()[1]["max_load_p99_100us_vs_epoll_pool"], r

    def test_maxload_lowest_usable_pool_load(self):
        # the pool's 30 % run failed: its max load lies under 50 %, the lowest load it has a
        # figure for, not under 30 %
        self.rewrite_p99("feed-pool", {50: 150, 70: 600, 90: 3000})
        with open(os.path.join(self.dir, "points.tsv")) as f:
            t = f.read().replace("\t30\t30000\tok\truns/spin-30-feed-pool",
                                 "\t30\t30000\tpel-load exit 1\truns/spin-30-feed-pool")
        with open(os.path.join(self.dir, "points.tsv"), "w") as f:
            f.write(t)
        ml, _ = self.maxload()
        self.assertAlmostEqual(ml["value"], 71.25 / 50, places=6)
        self.assertEqual(ml["bound"], "lower")
        self.assertIsNone(ml["met"])        # >= 1.43 says nothing against >= 1.5
        self.assertIn("over it already at 50 %", ml["how"])

    def test_maxload_pel_lower_bound_under_target(self):
        # pel under 100 us at every load (>= 90 %), the pool interpolated near 70 %: the ratio
        # is at least 1.29, which cannot say the 1.5 target is not met
        self.rewrite_p99("pel-feed", {90: 99})
        self.rewrite_p99("feed-pool", {30: 80, 50: 90, 70: 99, 90: 3000})
        ml, r = self.maxload()
        pool = 70 + 20 * 1 / 2901
        self.assertAlmostEqual(ml["value"], 90 / pool, places=6)
        self.assertEqual(ml["bound"], "lower")
        self.assertIsNone(ml["met"])
        self.assertIn(">= 1.29", r.stdout)

    def test_maxload_pool_lower_bound_is_upper(self):
        # the pool under 100 us at every load: its figure is a lower bound, pel's exact one
        # over it an upper bound of the ratio: at most 71.25 / 90 < 1.5, not met
        self.rewrite_p99("feed-pool", {50: 90, 70: 95, 90: 99})
        ml, r = self.maxload()
        self.assertAlmostEqual(ml["value"], 71.25 / 90, places=6)
        self.assertEqual((ml["bound"], ml["met"]), ("upper", False))
        self.assertIn("<= 0.792", r.stdout)
        self.assertIn("at most", ml["how"])

    def test_maxload_pel_none_under_is_upper(self):
        # pel over 100 us already at 30 %, the lowest: its max load is under 30 %, and the
        # ratio under 30 / 35.7
        self.rewrite_p99("pel-feed", {30: 110, 50: 140, 70: 500, 90: 2000})
        ml, _ = self.maxload()
        self.assertAlmostEqual(ml["value"], 30 / (30 + 20 * 20 / 70), places=6)
        self.assertEqual((ml["bound"], ml["met"]), ("upper", False))

    def test_maxload_both_lower_bounds(self):
        self.rewrite_p99("pel-feed", {90: 99})
        self.rewrite_p99("feed-pool", {50: 90, 70: 95, 90: 99})
        ml, _ = self.maxload()
        self.assertIsNone(ml["value"])
        self.assertIsNone(ml["met"])
        self.assertNotIn("bound", ml)
        self.assertIn("cannot combine", ml["how"])

    def test_maxload_counts_unanswered_under_one_percent(self):
        # 0.5 % of pel's requests lost at 70 %: its p99 over all sent is the answered ones'
        # 0.99 / 0.995 quantile, taken as p99.9 (160 us): over 100 us, 50 + 20 * 40 / 100
        self.lose("pel-feed", 70, 700)
        ml, r = self.maxload()
        self.assertAlmostEqual(ml["pel_load"], 58.0, places=6)
        self.assertEqual(ml["pel_how"], "interpolated")
        self.assertIn("160*", r.stdout)

    def test_quantiles_over_all_sent_at_50(self):
        # the pool lost 0.5 % at 50 %: its p50 over all sent is at most its p90 (105 us) and
        # its p99 at most its p99.9 (300 us); pel's / those are lower bounds of the ratios
        self.lose("feed-pool", 50, 500)
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        p50, p99 = rat["p50_vs_epoll_pool"], rat["p99_vs_epoll_pool"]
        self.assertAlmostEqual(p50["value"], 25 / 105, places=6)
        self.assertEqual((p50["bound"], p50["met"]), ("lower", None))
        self.assertAlmostEqual(p99["value"], 60 / 300, places=6)
        self.assertEqual((p99["bound"], p99["met"]), ("lower", None))
        self.assertIn("at most its p90 of the answered", p50["how"])
        row = [l for l in r.stdout.splitlines() if l.startswith("50 % ")][0]
        self.assertIn("105* / 300* / inf", row)
        self.assertIn("* and inf: the run left requests unanswered", r.stdout)
        with open(os.path.join(self.dir, "report.md")) as f:
            md = f.read()
        self.assertIn("| 105* / 300* / inf |", md)
        self.assertIn("* and inf: the run left requests unanswered", md)
        # an upper bound of a lower-is-better ratio under its target is met
        shutil.rmtree(self.dir)
        shutil.copytree(FIXTURE, self.dir)
        self.lose("pel-feed", 50, 500)
        r = run(self.dir, "--no-plots")
        _, rat = self.ratios()
        p50 = rat["p50_vs_epoll_pool"]
        self.assertAlmostEqual(p50["value"], 42.5 / 60, places=6)
        self.assertEqual((p50["bound"], p50["met"]), ("upper", None))   # <= 0.708 vs <= 0.5
        p99 = rat["p99_vs_epoll_pool"]
        self.assertAlmostEqual(p99["value"], 95 / 150, places=6)
        self.assertEqual((p99["bound"], p99["met"]), ("upper", True))
        self.assertAlmostEqual(rat["p50_vs_ideal_fcfs"]["value"], 42.5 / 20, places=6)
        self.assertEqual(rat["p50_vs_ideal_fcfs"]["bound"], "upper")

    def test_quantile_beyond_the_answered(self):
        # 2 % of pel's requests lost at 50 %: 0.99 / 0.98 >= 1, its p99 over all sent is
        # unbounded: no p99 ratio, and the reason
        self.lose("pel-feed", 50, 2000)
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        p99 = rat["p99_vs_epoll_pool"]
        self.assertIsNone(p99["value"])
        self.assertIsNone(p99["met"])
        self.assertIn("pel-feed left 2 % of its requests unanswered", p99["how"])
        row = [l for l in r.stdout.splitlines() if l.startswith("50 % ")][0]
        self.assertIn("42.5* / inf / inf (2 % unanswered)", row)

    def test_pool_never_under(self):
        self.rewrite_p99("feed-pool", {30: 120, 50: 150, 70: 600, 90: 3000})
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        ml = rat["max_load_p99_100us_vs_epoll_pool"]
        # pel-feed's max load over the pool's lowest measured load (30 %): a lower bound
        self.assertGreater(ml["pel_load"], 0)
        self.assertAlmostEqual(ml["value"], ml["pel_load"] / 30)
        self.assertEqual(ml["bound"], "lower")
        self.assertEqual(ml["met"], True if ml["value"] >= 1.5 else None)
        self.assertEqual((ml["pool_load"], ml["pool_how"]), (0.0, "none under"))
        self.assertIn("feed-pool reached p99 < 100 us at none of the measured loads", ml["how"])
        self.assertIn("at least", ml["how"])

    def test_neither_under(self):
        self.rewrite_p99("feed-pool", {30: 120, 50: 150, 70: 600, 90: 3000})
        self.rewrite_p99("pel-feed", {30: 110, 50: 140, 70: 500, 90: 2000})
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        ml = rat["max_load_p99_100us_vs_epoll_pool"]
        self.assertIsNone(ml["value"])
        self.assertIsNone(ml["met"])
        self.assertNotIn("bound", ml)

    def test_pel_all_under(self):
        self.rewrite_p99("pel-feed", {90: 99})
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        ml = rat["max_load_p99_100us_vs_epoll_pool"]
        self.assertEqual((ml["pel_load"], ml["pel_how"]), (90.0, "highest measured"))
        self.assertAlmostEqual(ml["value"], 90 / (30 + 20 * 20 / 70), places=6)
        self.assertEqual((ml["bound"], ml["met"]), ("lower", True))
        self.assertIn(">= 90 %", ml["how"])

    def test_unanswered_counts_as_over(self):
        # 2 % of pel's requests lost at 70 %: its p99 of the answered ones (90 us) is not the
        # true p99, so 70 % does not count as under 100 us: 50 + 20 * 40 / 190
        p = os.path.join(self.dir, "runs", "spin-70-pel-feed.load.json")
        with open(p) as f:
            doc = json.load(f)
        for m in doc["metrics"]:
            if m["name"] == "lost":
                m["value"] = 2800
            if m["name"] == "answered":
                m["value"] = 140000 - 2800
        doc["metrics"].append({"name": "sent_total", "value": 175000, "unit": "msgs"})
        with open(p, "w") as f:
            json.dump(doc, f)
        # the server's side: 1000 never reached it, 1800 it dropped
        s = os.path.join(self.dir, "runs", "spin-70-pel-feed.stats.json")
        with open(s) as f:
            st = json.load(f)
        st.update(received=174000, dropped=1800, answered=172200)
        with open(s, "w") as f:
            json.dump(st, f)
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        ml = rat["max_load_p99_100us_vs_epoll_pool"]
        self.assertEqual((ml["pel_load"], ml["pel_how"]), (50.0, "highest measured"))
        self.assertIn("2 % unanswered", r.stdout)
        self.assertIn("note: pel-feed spin 70 %: 2800 of 140000 requests unanswered (lost 2800, "
                      "dropped late 0); the server received 174000 of the 175000 sent (warm-up "
                      "included), dropped 1800 of them, and 1000 never reached it; its p99 "
                      "counts as over 100 us", r.stdout)

    def test_no_reference_load(self):
        # only 30 % and 90 %: no 50 % ratios, max_load still computed
        with open(os.path.join(self.dir, "points.tsv")) as f:
            lines = f.readlines()
        with open(os.path.join(self.dir, "points.tsv"), "w") as f:
            f.writelines(l for l in lines if "\t50\t" not in l and "\t70\t" not in l)
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, rat = self.ratios()
        for n in ("p50_vs_epoll_pool", "p99_vs_epoll_pool", "p50_vs_ideal_fcfs"):
            self.assertIsNone(rat[n]["value"], n)
        self.assertIn("no 50 % load in the sweep", r.stdout)
        ml = rat["max_load_p99_100us_vs_epoll_pool"]
        # pel 40 us at 30, 250 at 90: 30 + 60 * 60 / 210; pool 80 at 30, 3000 at 90
        self.assertAlmostEqual(ml["pel_load"], 30 + 60 * 60 / 210, places=6)
        self.assertAlmostEqual(ml["pool_load"], 30 + 60 * 20 / 2920, places=6)

    def test_generator_behind_plan(self):
        r = run(self.dir, "--no-plots")
        self.assertNotIn("fell behind its plan", r.stdout)
        p = os.path.join(self.dir, "runs", "spin-70-feed-pool.load.json")
        with open(p) as f:
            doc = json.load(f)
        for m in doc["metrics"]:
            if m["name"] == "send_late_p99":
                m["value"] = 230000
        with open(p, "w") as f:
            json.dump(doc, f)
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pel-load fell behind its plan in 1 of 10 runs", r.stdout)
        self.assertIn("worst 230 us, feed-pool spin 70 %", r.stdout)

    def test_interrupted(self):
        with open(os.path.join(self.dir, "meta.tsv"), "a") as f:
            f.write("interrupted\t1\n")
        r = run(self.dir, "--no-plots", "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc, _ = self.ratios()
        self.assertIs(doc["interrupted"], True)
        with open(os.path.join(self.dir, "report.md")) as f:
            self.assertIn("**Interrupted**", f.read())

    def test_trace_section(self):
        # demo.sh's meta says what became of the trace; report.txt is embedded only when it
        # says "recorded" and the file holds something
        os.makedirs(os.path.join(self.dir, "trace"))
        rep = os.path.join(self.dir, "trace", "report.txt")
        meta = os.path.join(self.dir, "meta.tsv")
        with open(meta) as f:
            base = [l for l in f if not l.startswith("trace\t")]

        def md_with(trace_meta, text):
            with open(meta, "w") as f:
                f.writelines(base + ["trace\t%s\n" % trace_meta])
            with open(rep, "w") as f:
                f.write(text)
            r = run(self.dir, "--no-plots", "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(self.dir, "report.md")) as f:
                md = f.read()
            return md[md.index("## Trace"):md.index("## Commands")]

        sec = md_with("recorded: trace/lttng, report trace/report.txt", "pel-trace: 12 tasks\n")
        self.assertIn("pel-trace: 12 tasks", sec)
        sec = md_with("interrupted while recording or reading the trace", "")
        self.assertIn("No trace: interrupted while recording or reading the trace", sec)
        self.assertNotIn("```", sec)
        sec = md_with("interrupted while recording or reading the trace", "half a report\n")
        self.assertNotIn("half a report", sec)
        sec = md_with("recorded: trace/lttng, report trace/report.txt", "\n")
        self.assertIn("No trace: trace/report.txt is empty", sec)

    def test_bad_input(self):
        r = run(os.path.join(self.tmp, "nothing-here"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a directory", r.stderr)
        with open(os.path.join(self.dir, "points.tsv"), "w") as f:
            f.write("server\tload\n")
        # a points.tsv it cannot read: no report (1), not bad usage
        r = run(self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("header lacks", r.stderr)
        # written, but no run finished: 3, apart from "could not write" (1)
        with open(os.path.join(self.dir, "points.tsv"), "w") as f:
            f.write("server\trole\tmode\tservice\tload\trate\tstatus\tprefix\n"
                    "pel-feed\tpel\tspin\texp:10us\t50\t50000\tpel-load exit 1\truns/x\n")
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 3)
        self.assertIn("no run finished", r.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "report.md")))
        r = run()
        self.assertEqual(r.returncode, 2)

    def test_no_spin_run(self):
        # points.tsv with its header only: the report says there was no spin run, not "None"
        with open(os.path.join(self.dir, "points.tsv"), "w") as f:
            f.write("server\trole\tmode\tservice\tload\trate\tstatus\tprefix\n")
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("no spin run in the sweep", r.stdout)
        with open(os.path.join(self.dir, "report.md")) as f:
            md = f.read()
        with open(os.path.join(self.dir, "results.json")) as f:
            js = f.read()
        for text in (r.stdout, md, js):
            self.assertNotIn("None", text)
        self.assertIn("no spin run in the sweep", md)

    def test_malformed_load_json(self):
        # each: the run is not measured, with a note saying why; the report is written (0), no
        # traceback, no results.json.tmp left
        p = os.path.join(self.dir, "runs", "spin-50-pel-feed.load.json")
        with open(p) as f:
            good = f.read()
        cases = [("[]", "a list, not pel-load's JSON object"),
                 ('{"metrics": 3}', 'no "metrics" list'),
                 (good.replace('"value": 60000,', '"value": Infinity,', 1),
                  "Infinity is not a JSON number"),
                 (good.replace('"value": 100000,', '"value": "100000",', 1),
                  'sent is "100000", not a finite number'),
                 (good.replace('"value": 100000,', '"value": -5,', 1), "sent is -5, not a count"),
                 (good.replace('"value": 100000,', '"value": true,', 1), "sent is true"),
                 ("{", "spin-50-pel-feed.load.json: Expecting")]
        for text, why in cases:
            with open(p, "w") as f:
                f.write(text)
            r = run(self.dir, "--no-plots")
            self.assertEqual(r.returncode, 0, (text[:40], r.stderr))
            self.assertEqual(r.stderr, "", text[:40])
            self.assertIn("pel-feed spin 50 %: not measured (unreadable pel-load JSON", r.stdout)
            self.assertIn(why, r.stdout)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "results.json.tmp")))
            _, rat = self.ratios()
            self.assertIsNone(rat["p50_vs_epoll_pool"]["value"])
            pr = run("--point", p)
            self.assertEqual(pr.returncode, 1, text[:40])
            self.assertNotIn("Traceback", pr.stderr)
        # a load or rate in points.tsv that is not finite: points.tsv is unreadable (1)
        with open(os.path.join(self.dir, "points.tsv")) as f:
            lines = f.read().replace("\t50\t50000\t", "\tinf\t50000\t", 1)
        with open(os.path.join(self.dir, "points.tsv"), "w") as f:
            f.write(lines)
        r = run(self.dir, "--no-plots")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not finite", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        # a pel-check.json that is not pel-check's: said so, exit 1
        with open(os.path.join(self.dir, "pel-check.json"), "w") as f:
            f.write("[1]")
        r = run("--check-summary", os.path.join(self.dir, "pel-check.json"))
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("Traceback", r.stderr)

    def test_check_summary_and_point(self):
        r = run("--check-summary", os.path.join(self.dir, "pel-check.json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("host readiness for workers on CPU 1: not ready "
                                            "(4 failed, 5 warned, 7 ok)"), lines[0])
        self.assertEqual(sum(1 for l in lines if "fix: " in l), 4)
        self.assertTrue(lines[-1].startswith("  warnings: rcu_nocbs, hugepages"))
        self.assertLessEqual(max(len(l) for l in lines[1:] if "fix: " not in l), 110)
        # the fixes whole: they are what to run
        self.assertIn("  fix: for i in 25 26 29 31 33 35 36 38; do echo 0 > "
                      "/proc/irq/$i/smp_affinity_list; done; boot with irqaffinity=0; keep "
                      "irqbalance off the workers (IRQBALANCE_BANNED_CPULIST=1) or stop it\n",
                      r.stdout)
        r = run("--point", os.path.join(self.dir, "runs", "spin-50-pel-feed.load.json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "sent 100000 answered 100000 late 0 lost 0  p50 25.0  "
                         "p99 60.0  p99.9 95.0 us  (ideal p50 20.0 p99 62.0)")


class MaxLoad(unittest.TestCase):
    """max_load_under() at its edges."""

    @classmethod
    def setUpClass(cls):
        cls.f = staticmethod(load_tool().max_load_under)

    def test_interpolates_between_last_under_and_next(self):
        self.assertEqual(self.f([(30, 40e3), (50, 60e3), (70, 90e3), (90, 250e3)]),
                         (71.25, "interpolated"))
        # any order
        self.assertEqual(self.f([(90, 250e3), (30, 40e3), (70, 90e3), (50, 60e3)]),
                         (71.25, "interpolated"))

    def test_never_under(self):
        self.assertEqual(self.f([(30, 120e3), (50, 150e3)]), (0.0, "none under"))
        self.assertEqual(self.f([(30, 100e3)]), (0.0, "none under"))   # 100 us is not under
        self.assertEqual(self.f([(30, math.inf)]), (0.0, "none under"))

    def test_all_under(self):
        self.assertEqual(self.f([(30, 10e3), (50, 20e3), (90, 99.9e3)]),
                         (90.0, "highest measured"))

    def test_one_point(self):
        self.assertEqual(self.f([(50, 60e3)]), (50.0, "highest measured"))
        self.assertEqual(self.f([(50, 160e3)]), (0.0, "none under"))

    def test_no_points(self):
        self.assertEqual(self.f([]), (None, "no points"))
        self.assertEqual(self.f([(50, None)]), (None, "no points"))

    def test_not_monotonic(self):
        # under again after a point over: the highest load under counts, towards the next one
        self.assertEqual(self.f([(30, 120e3), (50, 80e3), (70, 180e3)]),
                         (54.0, "interpolated"))

    def test_next_point_unbounded(self):
        # the next load lost requests (p99 unbounded): no slope, the measured point
        self.assertEqual(self.f([(50, 60e3), (70, math.inf)]), (50.0, "highest measured"))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: test_pel_demo_report.py PEL_DEMO_REPORT FIXTURE_DIR", file=sys.stderr)
        sys.exit(2)
    TOOL = os.path.abspath(sys.argv[1])
    FIXTURE = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[3:])
