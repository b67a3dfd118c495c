# SPDX-License-Identifier: MIT
"""tests/trace/test_pel_trace.py - tests of tools/pel-trace.

    /usr/bin/python3 tests/trace/test_pel_trace.py [PEL_TRACE]

1. The statistics core (tools/pel_trace/core.py) on synthetic (name, ts_ns, fields) events with
   exact expected results: nearest-rank percentiles, queue wait and service time, busy fractions
   (idle/park transitions, a worker stopped while idle, a trace begun while idle), TAU exclusive
   and inclusive times under nesting and recursion with #Subrs, per-thread stacks, lost events,
   the I/O latency and the --json shape, the TAU profile files.
2. The error cases of the command: no such directory, an empty one, a file, a corrupt CTF.
3. With lttng-tools, gcc and lttng-ust: tests/trace/emit.c (the event schema of trace/tp.h) is
   recorded in a uniquely named session (a session daemon is started if none runs, and stopped
   after), and pel-trace's counts are checked against the known sequence and its timer sums
   against sums computed independently from `babeltrace2` text output, to the nanosecond; then
   --plots, --tau, a trace with discarded events, and a CTF trace with no pel:* events. This part
   is skipped, saying so, when the tools are missing.

Prints one line per check; exits 1 if any failed, else 0.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tools", "pel-trace")
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tools"))

from pel_trace import core, report  # noqa: E402

failed = 0


def check(name, cond, why=""):
    global failed
    print(("ok   " if cond else "FAIL ") + name + ("" if cond or not why else ": " + str(why)))
    if not cond:
        failed += 1
    return cond


def run(*args, env=None):
    p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600, env=env)
    return p.returncode, p.stdout, p.stderr


# -- 1. the core ------------------------------------------------------------------------------

def test_percentiles():
    p = core.percentiles(list(range(1000, 0, -1)))      # 1..1000, unsorted
    check("percentiles: nearest rank of 1..1000",
          p == {"p50": 500, "p90": 900, "p99": 990, "p999": 999, "p9999": 1000, "max": 1000}, p)
    p = core.percentiles([7])
    check("percentiles: one value", set(p.values()) == {7}, p)
    p = core.percentiles([])
    check("percentiles: none", set(p.values()) == {None}, p)
    p = core.percentiles([10, 20, 30, 40])
    check("percentiles: 4 values (p50 = 2nd, p90 = 4th)", p["p50"] == 20 and p["p90"] == 40, p)
    vals = list(range(1, 20001))
    p = core.percentiles(vals)
    check("percentiles: p99.99 of 1..20000 = 19998", p["p9999"] == 19998 and p["p999"] == 19980, p)


def E(_event, _ts, **f):
    return ("pel:" + _event, _ts, f)


def test_tasks():
    ev = [E("worker_start", 0, worker=0, cpu=2), E("worker_start", 0, worker=1, cpu=3)]
    # worker 0: five tasks from producer 1 with waits 10, 20, 30, 40, 1000 and services 5..9
    t = 100
    for i, wait in enumerate([10, 20, 30, 40, 1000]):
        ev.append(E("submit", t, worker=0, src=1, seq=i))
        ev.append(E("dequeue", t + wait, worker=0, src=1, seq=i, burst=1))
        ev.append(E("task_start", t + wait + 1, worker=0, fn=0xabc, src=1, seq=i))
        ev.append(E("task_end", t + wait + 1 + 5 + i, worker=0, fn=0xabc, src=1, seq=i))
        t += 2000
    # worker 1: a spawn from worker 0 and a submit of the same seq from producer 2 (distinct
    # triples), a retried submit (ring full: the later submit counts), a dequeue whose submit
    # is not in the trace
    ev += [E("spawn", 20000, worker=1, src=1000000, seq=0),
           E("submit", 20001, worker=1, src=2, seq=0),
           E("submit", 20002, worker=1, src=2, seq=1), E("ring_full", 20002, worker=1, src=2),
           E("submit", 20050, worker=1, src=2, seq=1),
           E("dequeue", 20100, worker=1, src=1000000, seq=0, burst=3),
           E("dequeue", 20100, worker=1, src=2, seq=0, burst=3),
           E("dequeue", 20100, worker=1, src=2, seq=1, burst=3),
           E("dequeue", 20100, worker=1, src=3, seq=9, burst=3)]
    ev += [E("task_start", 20200, worker=1, fn=1, src=1000000, seq=0),
           E("task_start", 20300, worker=1, fn=1, src=2, seq=1)]
    ev += [E("task_end", 20250, worker=1, fn=1, src=1000000, seq=0),
           E("task_end", 20350, worker=1, fn=1, src=2, seq=1),
           E("worker_stop", 30000, worker=0, tasks=5), E("worker_stop", 30000, worker=1, tasks=2)]
    ev.sort(key=lambda e: e[1])
    res = core.analyze(ev)
    w0, w1 = res["workers"]
    check("tasks: worker 0 runs 5", w0["tasks"] == 5, w0["tasks"])
    check("tasks: worker 0 queue wait", w0["queue_wait_ns"] ==
          {"p50": 30, "p90": 1000, "p99": 1000, "p999": 1000, "max": 1000}, w0["queue_wait_ns"])
    check("tasks: worker 0 service", w0["service_ns"] ==
          {"p50": 7, "p90": 9, "p99": 9, "p999": 9, "max": 9}, w0["service_ns"])
    check("tasks: worker 1 waits: spawn 100, submit 99, retried submit 50",
          sorted(w1["_qwait_values"]) == [50, 99, 100], list(w1["_qwait_values"]))
    check("tasks: worker 1 dequeue without submit counted", w1["_unmatched_dequeue"] == 1)
    check("tasks: worker 1 services", sorted(w1["_service_values"]) == [50, 50], list(w1["_service_values"]))
    check("tasks: runtime's own count kept", (w0["_stop_tasks"], w1["_stop_tasks"]) == (5, 2))
    check("tasks: no idle events: busy 1.0", w0["busy_fraction"] == 1.0, w0["busy_fraction"])
    check("tasks: no I/O events", res["_io_events"] == 0 and res["_io_latency"] is None)


def test_queue_wait_source():
    # worker 0: stamped dequeues and no submit at all (a session that records only pel:dequeue)
    ev = [E("dequeue", 100, worker=0, src=1, seq=0, burst=1, queue_wait_ns=70),
          E("dequeue", 200, worker=0, src=1, seq=1, burst=1, queue_wait_ns=0),
          E("dequeue", 300, worker=0, src=1, seq=2, burst=1, queue_wait_ns=900)]
    # worker 1: -1 with its submit (matched), -1 without (unmatched), no field at all with its
    # submit (an older trace: matched), and a stamp of 5 where the match says 400 (stamp wins)
    ev += [E("submit", 1000, worker=1, src=2, seq=0),
           E("dequeue", 1030, worker=1, src=2, seq=0, burst=1, queue_wait_ns=-1),
           E("dequeue", 1040, worker=1, src=2, seq=1, burst=1, queue_wait_ns=-1),
           E("submit", 1100, worker=1, src=2, seq=2),
           E("dequeue", 1160, worker=1, src=2, seq=2, burst=1),
           E("submit", 1200, worker=1, src=3, seq=0),
           E("dequeue", 1600, worker=1, src=3, seq=0, burst=1, queue_wait_ns=5)]
    res = core.analyze(ev)
    w0, w1 = res["workers"]
    check("queue wait: stamps without submits give samples",
          sorted(w0["_qwait_values"]) == [0, 70, 900] and w0["queue_wait_ns"]["max"] == 900,
          list(w0["_qwait_values"]))
    check("queue wait: stamps counted as such",
          w0["queue_wait_source"] == {"stamp": 3, "matched": 0} and w0["_unmatched_dequeue"] == 0,
          (w0["queue_wait_source"], w0["_unmatched_dequeue"]))
    check("queue wait: -1 or no field falls back to the match; the stamp wins over it",
          sorted(w1["_qwait_values"]) == [5, 30, 60], list(w1["_qwait_values"]))
    check("queue wait: worker 1 sources 1 stamp, 2 matched",
          w1["queue_wait_source"] == {"stamp": 1, "matched": 2}, w1["queue_wait_source"])
    check("queue wait: -1 without submit is unmatched", w1["_unmatched_dequeue"] == 1,
          w1["_unmatched_dequeue"])
    check("queue wait: a stamped task's submit is not left pending", res["_pending_submits"] == 0,
          res["_pending_submits"])
    doc = json.loads(report.json_text(res))
    check("queue wait: json has queue_wait_source per worker",
          [w["queue_wait_source"] for w in doc["workers"]]
          == [{"stamp": 3, "matched": 0}, {"stamp": 1, "matched": 2}], doc["workers"])
    txt = report.text(res, "X")
    check("queue wait: text says where the samples came from",
          "samples: 4 from the runtime's enqueue stamp" in txt and "2 matched submit/spawn" in txt
          and "1 dequeue(s) with neither an enqueue stamp nor their submit/spawn" in txt, txt)


def test_busy():
    ev = [E("worker_start", 1000, worker=0, cpu=0),
          E("idle_enter", 1100, worker=0), E("idle_exit", 1300, worker=0),        # 200 idle
          E("idle_enter", 1500, worker=0), E("park", 1550, worker=0),
          E("unpark", 1700, worker=0), E("idle_exit", 1800, worker=0),            # 300 idle
          E("idle_enter", 1900, worker=0), E("worker_stop", 2000, worker=0, tasks=0),  # 100 idle
          # worker 1: trace begins while it idles (no worker_start), a park without idle_enter
          E("task_end", 5000, worker=1, fn=0, src=0, seq=0),
          E("idle_exit", 5100, worker=1),                                          # 100 idle
          E("park", 5500, worker=1), E("unpark", 5600, worker=1),                  # 100 idle
          E("task_end", 6000, worker=1, fn=0, src=0, seq=1)]
    res = core.analyze(ev, keep_periods=True)
    w0, w1 = res["workers"]
    check("busy: idle and park periods, stopped while idle: 0.4",
          abs(w0["busy_fraction"] - 0.4) < 1e-12, w0["busy_fraction"])
    check("busy: 3 idle periods, 1 park", (w0["_idle_periods"], w0["_parks"]) == (3, 1))
    check("busy: idle periods kept for the timeline",
          list(w0["_periods"]) == [1100, 1300, 1500, 1800, 1900, 2000], list(w0["_periods"]))
    check("busy: trace begun while idle: 0.8", abs(w1["busy_fraction"] - 0.8) < 1e-12, w1["busy_fraction"])
    # a worker started twice (two runtimes in one trace): span = both segments, not the gap;
    # a submit aimed at it before its worker_start does not start its span
    ev = [E("submit", 0, worker=0, src=1, seq=0), E("worker_start", 10, worker=0, cpu=0),
          E("worker_stop", 110, worker=0, tasks=1), E("worker_start", 1000, worker=0, cpu=0),
          E("idle_enter", 1050, worker=0), E("idle_exit", 1100, worker=0),
          E("worker_stop", 1100, worker=0, tasks=2)]
    w = core.analyze(ev)["workers"][0]
    check("busy: two start..stop segments: span 200, busy 0.75, stats summed",
          (w["_span_ns"], w["busy_fraction"], w["_stop_tasks"], w["_starts"]) == (200, 0.75, 3, 2),
          (w["_span_ns"], w["busy_fraction"], w["_stop_tasks"], w["_starts"]))


def test_timers():
    def T(kind, ts, tid, name=None, worker=0, vtid=None):
        f = {"id": tid, "worker": worker}
        if kind == "entry":
            f["name"] = name
        if vtid is not None:
            f["vtid"] = vtid
        return ("pel:timer_" + kind, ts, f)

    A, B, C, R = 0x10, 0x20, 0x30, 0x40
    ev = [T("entry", 0, A, "A", vtid=7), T("entry", 10, B, "B", vtid=7),
          T("entry", 12, A, "A", worker=-1, vtid=8),            # another thread, interleaved
          T("entry", 20, C, "C", vtid=7), T("exit", 50, C, vtid=7),
          T("exit", 55, A, worker=-1, vtid=8),
          T("exit", 60, B, vtid=7), T("entry", 70, B, "B", vtid=7), T("exit", 100, B, vtid=7),
          T("exit", 150, A, vtid=7),
          # recursion: R inside R counts its inclusive time once
          T("entry", 200, R, "R", vtid=7), T("entry", 210, R, "R", vtid=7),
          T("exit", 240, R, vtid=7), T("exit", 300, R, vtid=7)]
    res = core.analyze(ev)
    th = {t["vtid"]: {r["name"]: r for r in t["timers"]} for t in res["_threads"]}
    a, b, c, r = th[7]["A"], th[7]["B"], th[7]["C"], th[7]["R"]
    check("timers: A incl 150 excl 70 calls 1 subrs 2",
          (a["inclusive_ns"], a["exclusive_ns"], a["calls"], a["subrs"]) == (150, 70, 1, 2), a)
    check("timers: B incl 80 excl 50 calls 2 subrs 1",
          (b["inclusive_ns"], b["exclusive_ns"], b["calls"], b["subrs"]) == (80, 50, 2, 1), b)
    check("timers: C incl 30 excl 30 calls 1 subrs 0",
          (c["inclusive_ns"], c["exclusive_ns"], c["calls"], c["subrs"]) == (30, 30, 1, 0), c)
    check("timers: recursion R incl 100 excl 100 calls 2 subrs 1",
          (r["inclusive_ns"], r["exclusive_ns"], r["calls"], r["subrs"]) == (100, 100, 2, 1), r)
    check("timers: thread 8 has its own stack (A 43 ns)",
          th[8]["A"]["inclusive_ns"] == 43 and th[8]["A"]["exclusive_ns"] == 43, th[8])
    tot = {t["name"]: t for t in res["timers"]}
    check("timers: totals over threads in usec",
          tot["A"]["inclusive_us"] == 0.193 and tot["A"]["exclusive_us"] == 0.113
          and tot["A"]["calls"] == 2 and tot["A"]["subrs"] == 2, tot["A"])
    check("timers: totals sorted by inclusive time",
          [t["name"] for t in res["timers"]] == ["A", "R", "B", "C"], [t["name"] for t in res["timers"]])
    # exclusive sums to the top-level inclusive: nothing double counted
    excl = sum(x["exclusive_ns"] for x in th[7].values())
    check("timers: sum of exclusive = sum of top-level inclusive", excl == 150 + 100, excl)

    # no vtid: one stack per worker field; a lost exit is closed with its parent; stray exits
    ev = [T("entry", 0, A, "A", worker=3), T("entry", 5, B, "B", worker=3),
          T("exit", 9, A, worker=3),               # B's exit lost: closed at 9 with A
          T("exit", 12, C, worker=3),              # never entered
          T("entry", 20, A, "A", worker=4), T("entry", 21, C, "C", worker=4)]  # left open
    res = core.analyze(ev)
    th = {t["worker"]: {r["name"]: r for r in t["timers"]} for t in res["_threads"]}
    check("timers: by worker without vtid", th[3]["A"]["inclusive_ns"] == 9 and th[3]["A"]["exclusive_ns"] == 5
          and th[3]["B"]["inclusive_ns"] == 4, th[3])
    check("timers: out-of-order / stray exits / open timers counted",
          (res["_timer_out_of_order"], res["_timer_unmatched_exit"], res["_timer_open"]) == (1, 1, 2),
          (res["_timer_out_of_order"], res["_timer_unmatched_exit"], res["_timer_open"]))


def test_json_tau_lost_io():
    a = core.Analyzer()
    for e in [E("worker_start", 0, worker=0, cpu=0), E("submit", 1, worker=0, src=1, seq=0),
              E("dequeue", 4, worker=0, src=1, seq=0, burst=1),
              ("pel:io_complete", 10, {"worker": 0, "op": 1, "result": 0}),
              E("task_start", 17, worker=0, fn=1, src=1, seq=0),
              E("timer_entry", 18, id=1, name='say "hi"', worker=0),
              E("timer_exit", 20, id=1, worker=0),
              E("task_end", 25, worker=0, fn=1, src=1, seq=0), ("other:thing", 26, {}),
              E("worker_stop", 30, worker=0, tasks=1)]:
        a.event(*e)
    a.discarded(5)
    a.discarded(7)
    res = a.result()
    doc = json.loads(report.json_text(res))
    check("json: top-level keys", set(doc) == {"events", "lost_events", "workers", "timers"}, sorted(doc))
    check("json: events counts every event, lost events summed",
          (doc["events"], doc["lost_events"]) == (10, 12), (doc["events"], doc["lost_events"]))
    w = doc["workers"][0]
    check("json: worker keys", set(w) == {"worker", "tasks", "queue_wait_ns", "queue_wait_source",
                                          "service_ns", "busy_fraction", "rt_tasks", "io_callbacks",
                                          "rt_service_ns", "io_callback_ns"}, sorted(w))
    check("json: percentile keys", set(w["queue_wait_ns"]) == {"p50", "p90", "p99", "p999", "max"}
          and set(w["service_ns"]) == set(w["queue_wait_ns"]), w)
    check("json: values", w["queue_wait_ns"]["p50"] == 3 and w["service_ns"]["max"] == 8, w)
    check("json: timer keys", set(doc["timers"][0]) == {"name", "calls", "subrs", "exclusive_us", "inclusive_us"},
          doc["timers"])
    check("io: completion -> next task start on the worker", res["_io_latency"]["max"] == 7, res["_io_latency"])
    txt = report.text(res, "X")
    check("text: says events were discarded", "DISCARDED 12 events" in txt, txt[:300])
    with tempfile.TemporaryDirectory() as d:
        files = report.tau_files(res, d)
        check("tau: one file per thread with timers", [os.path.basename(p) for p, _ in files] == ["profile.0.0.0"])
        ok, why = parse_tau(files[0][0], {"say 'hi'": (1, 0, 0.002, 0.002)})
        check("tau: format and values", ok, why)


def test_io_ops():
    # a read (op 1) 1000 ns submit -> result; a multishot recv (op 3): results at +500, +800
    # (MORE), final at +1000; a failed connect (op 8); a submit never completed
    ev = [("pel:io_submit", 100, {"worker": 0, "op": 1, "fd": 3, "handle": 11}),
          ("pel:io_submit", 200, {"worker": 0, "op": 3, "fd": 4, "handle": 22}),
          ("pel:io_complete", 700, {"worker": 0, "op": 3, "res": 64, "flags": 2, "handle": 22}),
          ("pel:io_complete", 1100, {"worker": 0, "op": 1, "res": 10, "flags": 0, "handle": 11}),
          ("pel:io_complete", 1500, {"worker": 0, "op": 3, "res": 64, "flags": 2, "handle": 22}),
          ("pel:io_complete", 2500, {"worker": 0, "op": 3, "res": 0, "flags": 0, "handle": 22}),
          ("pel:io_submit", 3000, {"worker": 1, "op": 8, "fd": 5, "handle": 33}),
          ("pel:io_complete", 3400, {"worker": 1, "op": 8, "res": -111, "flags": 0, "handle": 33}),
          ("pel:io_submit", 4000, {"worker": 1, "op": 0, "fd": -1, "handle": 44})]
    res = core.analyze(ev)
    ops = res["_io_ops"]
    check("io ops: kinds seen", sorted(ops) == ["connect", "read", "recv"], sorted(ops))
    check("io ops: read submit -> result", ops["read"]["n"] == 1 and ops["read"]["max"] == 1000,
          ops["read"])
    check("io ops: multishot results count from the previous one",
          ops["recv"]["n"] == 3 and ops["recv"]["p50"] == 800 and ops["recv"]["max"] == 1000,
          ops["recv"])
    check("io ops: errors counted", ops["connect"]["errors"] == 1 and ops["read"]["errors"] == 0,
          ops)
    check("io ops: the nop never completed is open", res["_io_open"] == 1, res["_io_open"])
    txt = report.text(res, "X")
    check("io ops: text table", "I/O operations, submit -> result" in txt and "recv" in txt
          and "still in flight" in txt, txt[-800:])


def parse_tau(path, want=None):
    """Parse a TAU profile.N.C.T file; compare rows with want {name: (calls, subrs, excl, incl)}."""
    with open(path) as f:
        lines = f.read().splitlines()
    m = re.fullmatch(r"(\d+) templated_functions_MULTI_TIME", lines[0])
    if not m:
        return False, f"header {lines[0]!r}"
    n = int(m.group(1))
    if lines[1] != "# Name Calls Subrs Excl Incl ProfileCalls #":
        return False, f"column line {lines[1]!r}"
    rows = {}
    for ln in lines[2:2 + n]:
        m = re.fullmatch(r'"([^"]*)" (\d+) (\d+) (\S+) (\S+) 0 GROUP="[^"]*"', ln)
        if not m:
            return False, f"timer line {ln!r}"
        rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), float(m.group(4)), float(m.group(5)))
    if lines[2 + n:] != ["0 aggregates"]:
        return False, f"trailer {lines[2 + n:]!r}"
    for name, (calls, subrs, excl, incl) in rows.items():
        if excl > incl + 1e-9 or excl < 0:
            return False, f"{name}: exclusive {excl} > inclusive {incl}"
    if want is not None and rows != want:
        return False, f"{rows} != {want}"
    return True, rows


def test_plot_bins():
    try:
        import numpy as np
        from pel_trace import plots
    except ImportError as e:
        print(f"SKIP histogram bins: {e}")
        return
    for a in ([0.24] * 50 + [3.0, 80000.0, 0.0], [5.0, 5.0], [1.0, 2.0, 3.0]):
        a = np.array(a)
        vals, bins, _ = plots._bins(np, a)
        n = int(np.histogram(vals, bins=bins)[0].sum())
        check(f"plots: every sample lands in a histogram bin ({len(a)} values)", n == len(a), n)


# -- 2. errors --------------------------------------------------------------------------------

def test_errors():
    with tempfile.TemporaryDirectory() as d:
        empty = os.path.join(d, "empty")
        os.mkdir(empty)
        cases = [("missing directory", os.path.join(d, "nope"), "no such directory"),
                 ("empty directory", empty, "no CTF trace")]
        f = os.path.join(d, "file")
        open(f, "w").close()
        cases.append(("a file", f, "not a directory"))
        bad = os.path.join(d, "bad", "ust", "uid", "0", "64-bit")
        os.makedirs(bad)
        with open(os.path.join(bad, "metadata"), "w") as m:
            m.write("/* CTF 1.8 */\ntrace { this is not TSDL; };\n")
        cases.append(("corrupt CTF metadata", os.path.dirname(os.path.dirname(os.path.dirname(bad))),
                      "babeltrace2 cannot open the trace"))
        for name, path, msg in cases:
            rc, out, err = run(path)
            check(f"error: {name}: exit 2, says {msg!r}, no traceback",
                  rc == 2 and msg in err and "Traceback" not in err and out == "", (rc, err[-500:]))
    rc, out, err = run()
    check("error: no argument: usage, exit 2", rc == 2 and "usage" in err, (rc, err))


# -- 3. real LTTng traces -------------------------------------------------------------------------

class Lttng:
    def __init__(self, tmp):
        self.tmp = tmp
        self.daemon = None
        self.n = 0

    def __enter__(self):
        if subprocess.run(["lttng", "list"], capture_output=True).returncode != 0:
            print("     (no session daemon runs: starting lttng-sessiond --no-kernel)")
            self.daemon = subprocess.Popen(["lttng-sessiond", "--no-kernel"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                time.sleep(0.1)
                if subprocess.run(["lttng", "list"], capture_output=True).returncode == 0:
                    break
        return self

    def __exit__(self, *exc):
        if self.daemon is not None:
            self.daemon.terminate()
            self.daemon.wait(timeout=30)

    def record(self, argv, events="pel:*", channel_opts=(), vtid=True):
        """Record argv in a new session; return the output directory."""
        self.n += 1
        name = f"pel-trace-test-{os.getpid()}-{self.n}"
        out = os.path.join(self.tmp, name)
        lt = lambda *a: subprocess.run(["lttng", *a], check=True, capture_output=True, text=True)  # noqa: E731
        lt("create", name, f"--output={out}")
        try:
            lt("enable-channel", "-u", "ch", "-s", name, *channel_opts)
            lt("enable-event", "-u", events, "-c", "ch", "-s", name)
            if vtid:
                lt("add-context", "-u", "-t", "vtid", "-c", "ch", "-s", name)
            # Only argv's process records: another pel program running meanwhile (a benchmark, a
            # second test run) would add its events to a session that traces every process. The
            # child waits on its stdin until it is tracked, then execs argv (same pid).
            child = subprocess.Popen(["/bin/sh", "-c", 'read _ && exec "$@"', "sh", *argv],
                                     stdin=subprocess.PIPE)
            try:
                lt("untrack", "-u", "-s", name, "--all", "--vpid")
                lt("track", "-u", "-s", name, f"--vpid={child.pid}")
                lt("start", name)
                child.stdin.write(b"go\n")
                child.stdin.close()
                if child.wait(timeout=300) != 0:
                    raise subprocess.CalledProcessError(child.returncode, argv)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            lt("stop", name)
        finally:
            lt("destroy", name)
        return out


def bt_events(path):
    """(name, ts_ns, {field: value}) from babeltrace2's text output, independently of bt2."""
    p = subprocess.run(["babeltrace2", "--clock-seconds", "--no-delta", path], capture_output=True,
                       text=True, check=True)
    rx = re.compile(r"\[(\d+)\.(\d{9})\] \S+ (\S+): (.*)")
    for ln in p.stdout.splitlines():
        m = rx.match(ln)
        if not m:
            continue
        fields = dict(re.findall(r"(\w+) = (\"[^\"]*\"|[-\w]+)", m.group(4)))
        yield m.group(3), int(m.group(1)) * 10**9 + int(m.group(2)), fields


def test_lttng():
    missing = [t for t in ("lttng", "lttng-sessiond", "babeltrace2", "gcc") if not shutil.which(t)]
    if missing:
        print(f"SKIP real-trace tests: {', '.join(missing)} not installed")
        return
    with tempfile.TemporaryDirectory(prefix="pel-trace-test-") as tmp:
        emit = os.path.join(tmp, "emit")
        cc = subprocess.run(["gcc", "-O1", "-o", emit, os.path.join(HERE, "emit.c"), "-I" + ROOT,
                             "-I" + HERE, "-llttng-ust", "-ldl", "-lpthread"],
                            capture_output=True, text=True)
        # the tools are there: our own emitter not building (the schema in trace/tp.h changed
        # under it, or lttng-ust's headers are missing) is a failure, not a reason to skip
        check("tests/trace/emit.c builds against trace/tp.h", cc.returncode == 0,
              cc.stderr[-1000:])
        if cc.returncode != 0:
            return
        with Lttng(tmp) as lt:
            real_traces(lt, emit, tmp)


def real_traces(lt, emit, tmp):
    W, T = 3, 400
    path = lt.record([emit, "pel", str(W), str(T)])
    rc, out, err = run(path, "--json")
    check("lttng: pel-trace --json exits 0", rc == 0, err[-800:])
    doc = json.loads(out)
    evs = list(bt_events(path))
    names = {e[0] for e in evs}
    want = {"pel:" + n for n in ("worker_start", "worker_stop", "submit", "dequeue", "task_start",
                                 "task_end", "idle_enter", "idle_exit", "park", "unpark",
                                 "timer_entry", "timer_exit")}
    check("lttng: babeltrace2 sees every emitted event type", want <= names, want - names)
    check("lttng: event count = babeltrace2's", doc["events"] == len(evs), (doc["events"], len(evs)))
    check("lttng: nothing lost", doc["lost_events"] == 0)
    check("lttng: workers 0..W-1", [w["worker"] for w in doc["workers"]] == list(range(W)), doc["workers"])
    for w in doc["workers"]:
        check(f"lttng: worker {w['worker']}: {T} tasks, percentiles ordered, busy in (0, 1)",
              w["tasks"] == T and w["queue_wait_ns"]["p50"] <= w["queue_wait_ns"]["p99"] <= w["queue_wait_ns"]["max"]
              and w["service_ns"]["p50"] <= w["service_ns"]["max"] and 0 < w["busy_fraction"] < 1, w)
    tm = {t["name"]: t for t in doc["timers"]}
    check("lttng: timer calls and subrs", (tm["outer"]["calls"], tm["outer"]["subrs"], tm["inner"]["calls"],
                                           tm["inner"]["subrs"], tm["lonely"]["calls"])
          == (W * T, 2 * W * T, 2 * W * T, 0, 1), tm)

    # independent sums from babeltrace2's text: per thread, exit - entry of each call
    incl = {"outer": 0, "inner": 0, "lonely": 0}
    open_ = {}
    idname = {}
    for name, ts, f in evs:
        if name == "pel:timer_entry":
            idname[f["id"]] = f["name"].strip('"')
            open_.setdefault(f["vtid"], []).append((f["id"], ts))
        elif name == "pel:timer_exit":
            tid, t0 = open_[f["vtid"]].pop()
            incl[idname[tid]] += ts - t0
    ns = lambda us: round(us * 1000)  # noqa: E731
    check("lttng: inclusive times = babeltrace2's sums, to the ns",
          all(ns(tm[n]["inclusive_us"]) == incl[n] for n in incl),
          ({n: ns(tm[n]["inclusive_us"]) for n in incl}, incl))
    check("lttng: outer exclusive = outer inclusive - inner inclusive, to the ns",
          ns(tm["outer"]["exclusive_us"]) == incl["outer"] - incl["inner"]
          and ns(tm["inner"]["exclusive_us"]) == incl["inner"], tm)
    # queue waits, from babeltrace2: the dequeue's queue_wait_ns when >= 0, else its submit
    sub, waits = {}, {}
    for name, ts, f in evs:
        if name == "pel:submit":
            sub[(f["worker"], f["src"], f["seq"])] = ts
        elif name == "pel:dequeue":
            k = (f["worker"], f["src"], f["seq"])
            stamp = int(f["queue_wait_ns"])
            waits.setdefault(int(f["worker"]), []).append(stamp if stamp >= 0 else ts - sub[k])
    check("lttng: queue-wait percentiles = babeltrace2's",
          all(core.percentiles(waits[w["worker"]])[k] == w["queue_wait_ns"][k]
              for w in doc["workers"] for k in w["queue_wait_ns"]), waits.keys())
    check("lttng: queue-wait sources: emit.c stamps 3 tasks in 4",
          all(w["queue_wait_source"] == {"stamp": T - T // 4, "matched": T // 4}
              for w in doc["workers"]), [w["queue_wait_source"] for w in doc["workers"]])

    env = dict(os.environ, PEL_TRACE_PUBLIC_BT2="1")
    rc2, out2, _ = run(path, "--json", env=env)
    check("lttng: bt2 public-API reader gives the same JSON", rc2 == 0 and out2 == out)

    plots, tau = os.path.join(tmp, "plots"), os.path.join(tmp, "tau")
    rc, txt, err = run(path, "--plots", plots, "--tau", tau)
    check("lttng: text report exits 0", rc == 0, err[-800:])
    for s in ("Queue wait", "Service time", "Utilisation", "I/O completion -> callback or task start latency: none",
              "%Time    Exclusive    Inclusive       #Call      #Subrs  Inclusive Name",
              "FUNCTION SUMMARY", "lost events: none"):
        check(f"lttng: text has {s!r}", s in txt)
    pngs = sorted(os.listdir(plots)) if os.path.isdir(plots) else []
    want_png = sorted([f"worker-{w}-{k}.png" for w in range(W) for k in ("hist", "cdf")] + ["timeline.png"])
    check("lttng: --plots files", pngs == want_png, pngs)
    check("lttng: --plots are PNGs", all(open(os.path.join(plots, p), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
                                         for p in pngs))
    profs = sorted(os.listdir(tau)) if os.path.isdir(tau) else []
    check("lttng: --tau one profile per thread (W workers + main)",
          profs == [f"profile.0.0.{i}" for i in range(W + 1)], profs)
    for p in profs:
        ok, rows = parse_tau(os.path.join(tau, p))
        check(f"lttng: --tau {p} parses", ok, rows)
    tot = {}
    for p in profs:
        for name, (c, s, e, i) in parse_tau(os.path.join(tau, p))[1].items():
            tot[name] = tot.get(name, 0) + c
    check("lttng: --tau calls add up", tot == {"outer": W * T, "inner": 2 * W * T, "lonely": 1}, tot)

    # only pel:dequeue recorded: the stamps alone give the queue waits
    path5 = lt.record([emit, "pel", "2", "40"], events="pel:dequeue")
    rc, out, err = run(path5, "--json")
    doc5 = json.loads(out) if rc == 0 else {}
    stamped = sorted(100 + i for i in range(40) if i % 4 != 3)
    check("lttng: dequeue events only: waits from the stamps, the unstamped unmatched",
          rc == 0 and [(w["queue_wait_source"], w["queue_wait_ns"]["p50"], w["queue_wait_ns"]["max"])
                       for w in doc5["workers"]]
          == [({"stamp": 30, "matched": 0}, core.percentiles(stamped)["p50"], max(stamped))] * 2,
          (rc, err[-300:], doc5.get("workers")))
    rc, txt, err = run(path5)
    check("lttng: dequeue events only: text counts 60 stamped, 20 without a wait",
          rc == 0 and "samples: 60 from the runtime's enqueue stamp" in txt
          and "20 dequeue(s) with neither an enqueue stamp nor" in txt, (rc, err[-300:], txt))

    # no vtid context: timers stack by worker field
    path2 = lt.record([emit, "pel", "2", "50"], vtid=False)
    rc, out, err = run(path2, "--json")
    doc2 = json.loads(out) if rc == 0 else {}
    tm2 = {t["name"]: t for t in doc2.get("timers", [])}
    check("lttng: without vtid: timers by worker", rc == 0 and tm2.get("outer", {}).get("subrs") == 200
          and tm2.get("lonely", {}).get("calls") == 1, (rc, err[-500:], tm2))

    # discarded events: tiny buffers, a flood of events
    N = 1000000
    path3 = lt.record([emit, "flood", str(N)], channel_opts=("--subbuf-size=4096", "--num-subbuf=2"))
    rc, out, err = run(path3, "--json")
    doc3 = json.loads(out) if rc == 0 else {}
    check("lttng: discarded events counted (recorded + lost = emitted)",
          rc == 0 and doc3["lost_events"] > 0 and doc3["events"] + doc3["lost_events"] == N,
          (rc, err[-300:], doc3.get("events"), doc3.get("lost_events")))
    rc, txt, err = run(path3)
    check("lttng: text says LTTng discarded events", rc == 0 and "DISCARDED" in txt, txt[:400])

    # a CTF trace without pel events
    path4 = lt.record([emit, "other"], events="notpel:*")
    rc, out, err = run(path4)
    check("lttng: non-pel trace: exit 2, 'not a pel trace', no traceback",
          rc == 2 and "not a pel trace" in err and "Traceback" not in err and out == "", (rc, err))


def test_rt_io_kinds():
    """Real-time tasks (src 2000000) and I/O callbacks (src 3000000) have tables of their own and
    stay out of the ring tasks' count, which the runtime's pel:worker_stop count is of."""
    a = core.Analyzer()
    ev = [E("worker_start", 0, worker=0, cpu=1)]
    t = 100
    for i in range(4):           # a request: receive callback, real-time task, send callback
        ev += [("pel:io_complete", t, {"worker": 0, "op": 5, "res": 56, "flags": 2, "handle": 7}),
               E("task_start", t + 2, worker=0, fn=1, src=3000000, seq=7),
               E("task_end", t + 5, worker=0, fn=1, src=3000000, seq=7),
               E("task_start", t + 10, worker=0, fn=2, src=2000000, seq=i),
               E("task_end", t + 10 + 20 * (i + 1), worker=0, fn=2, src=2000000, seq=i)]
        t += 1000
    ev += [E("submit", t, worker=0, src=1, seq=0), E("dequeue", t + 1, worker=0, src=1, seq=0, burst=1),
           E("task_start", t + 2, worker=0, fn=3, src=1, seq=0),
           E("task_end", t + 9, worker=0, fn=3, src=1, seq=0), E("worker_stop", t + 20, worker=0, tasks=1)]
    for e in ev:
        a.event(*e)
    res = a.result()
    w = res["workers"][0]
    check("kinds: ring tasks only in tasks (= the runtime's count)", (w["tasks"], w["_stop_tasks"]) == (1, 1),
          (w["tasks"], w["_stop_tasks"]))
    check("kinds: counts", (w["rt_tasks"], w["io_callbacks"]) == (4, 4), (w["rt_tasks"], w["io_callbacks"]))
    check("kinds: real-time service", sorted(w["_rt_service_values"]) == [20, 40, 60, 80],
          list(w["_rt_service_values"]))
    check("kinds: callback service", list(w["_io_service_values"]) == [3, 3, 3, 3], list(w["_io_service_values"]))
    check("kinds: ring service apart", list(w["_service_values"]) == [7], list(w["_service_values"]))
    check("kinds: completion -> callback start", res["_io_latency"]["max"] == 2, res["_io_latency"])
    check("kinds: nothing unmatched", (w["_unmatched_end"], w["_unended"]) == (0, 0))
    txt = report.text(res, "X")
    check("kinds: text tables", "Real-time tasks (pel/rt.h)" in txt and "I/O completion callbacks" in txt
          and "4 real-time tasks, 4 I/O callbacks" in txt, txt)


def main():
    print(f"pel-trace: {EXE}")
    test_percentiles()
    test_tasks()
    test_queue_wait_source()
    test_busy()
    test_timers()
    test_json_tau_lost_io()
    test_io_ops()
    test_rt_io_kinds()
    test_plot_bins()
    test_errors()
    test_lttng()
    print(f"{'FAILED: ' + str(failed) + ' check(s)' if failed else 'all checks passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
