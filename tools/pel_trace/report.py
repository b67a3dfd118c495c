# SPDX-License-Identifier: MIT
"""pel_trace.report - pel-trace's text report, --json object and --tau profile files."""
import json
import os

from .core import PCTS, public

PCT_LABELS = ("p50", "p90", "p99", "p99.9", "p99.99", "max")
PCT_KEYS = tuple(k for k, _ in PCTS) + ("max",)


def _us(ns):
    return "-" if ns is None else f"{ns / 1000.0:.3f}"


def _latency_table(out, title, workers, key, nkey):
    out.append(title)
    out.append(f"{'worker':>6} {'samples':>9} " + " ".join(f"{h:>11}" for h in PCT_LABELS))
    for w in workers:
        p = w[key]
        out.append(f"{w['worker']:>6} {len(w[nkey]):>9} " + " ".join(f"{_us(p[k]):>11}" for k in PCT_KEYS))
    if not workers:
        out.append("  (no workers in the trace)")


def pprof_table(rows, total_ns):
    """pprof's function table: rows of {name, calls, subrs, exclusive_ns, inclusive_ns};
    %Time = inclusive / total_ns (pprof: the largest inclusive time of the thread)."""
    out = ["-" * 87,
           "%Time    Exclusive    Inclusive       #Call      #Subrs  Inclusive Name",
           "              msec   total msec                          usec/call ",
           "-" * 87]
    for r in rows:
        incl, excl = r["inclusive_ns"], r["exclusive_ns"]
        pct = 100.0 * incl / total_ns if total_ns else 0.0
        per = incl / 1000.0 / r["calls"] if r["calls"] else 0.0
        out.append(f"{pct:5.1f} {excl / 1e6:12.3f} {incl / 1e6:12.3f} {r['calls']:11d} "
                   f"{r['subrs']:11d} {per:10.3f} {r['name']}")
    return out


def _thread_label(th):
    w = f"worker {th['worker']}" if th["worker"] >= 0 else "not a worker"
    return f"{w}, vtid {th['vtid']}" if th["vtid"] is not None else w


def text(res, trace_dir):
    out = []
    ws = res["workers"]
    span = ((res["_last_ts"] - res["_first_ts"]) / 1e9) if res["_first_ts"] is not None else 0.0
    out.append(f"pel-trace {trace_dir}: {res['events']:,} events ({res['_pel_events']:,} pel:*), "
               f"{span:.6f} s, {len(ws)} worker(s)")
    if res["lost_events"] or res["_lost_unknown"] or res["_lost_packets"]:
        parts = []
        if res["lost_events"]:
            parts.append(f"{res['lost_events']:,} events")
        if res["_lost_unknown"]:
            parts.append(f"an unknown number of events in {res['_lost_unknown']} run(s)")
        if res["_lost_packets"]:
            parts.append(f"{res['_lost_packets']:,} packets")
        out.append("WARNING: LTTng DISCARDED " + " and ".join(parts) + " (its buffers were full): "
                   "the figures below miss them. Record with larger or more sub-buffers "
                   "(lttng enable-channel --subbuf-size/--num-subbuf) or fewer events.")
    else:
        out.append("lost events: none (LTTng discarded nothing)")
    out.append("")
    _latency_table(out, "Queue wait, enqueue -> dequeue, usec (nearest rank):", ws, "_queue_wait",
                   "_qwait_values")
    stamp = sum(w["queue_wait_source"]["stamp"] for w in ws)
    matched = sum(w["queue_wait_source"]["matched"] for w in ws)
    out.append(f"  samples: {stamp:,} from the runtime's enqueue stamp (pel:dequeue queue_wait_ns), "
               f"{matched:,} matched submit/spawn -> dequeue of the same (worker, src, seq)")
    out.append("")
    _latency_table(out, "Service time, task_start -> task_end on the worker, usec (nearest rank):",
                   ws, "_service", "_service_values")
    out.append("")
    if any(w["rt_tasks"] for w in ws):
        _latency_table(out, "Real-time tasks (pel/rt.h), start -> end on the worker, usec "
                       "(nearest rank):", ws, "_rt_service", "_rt_service_values")
        out.append("")
    if any(w["io_callbacks"] for w in ws):
        _latency_table(out, "I/O completion callbacks (pel/io.h), start -> end on the worker, usec "
                       "(nearest rank):", ws, "_io_service", "_io_service_values")
        out.append("")
    out.append("Utilisation over each worker's traced span (worker_start .. worker_stop):")
    out.append(f"{'worker':>6} {'cpu':>4} {'tasks':>9} {'stats':>9} {'span ms':>11} {'busy ms':>11} "
               f"{'busy':>7} {'idle periods':>12} {'parks':>7}")
    for w in ws:
        bf = w["busy_fraction"]
        busy_ms = (w["_span_ns"] - w["_idle_ns"]) / 1e6
        out.append(f"{w['worker']:>6} {'-' if w['_cpu'] is None else w['_cpu']:>4} {w['tasks']:>9} "
                   f"{'-' if w['_stop_tasks'] is None else w['_stop_tasks']:>9} "
                   f"{w['_span_ns'] / 1e6:>11.3f} {busy_ms:>11.3f} "
                   f"{'-' if bf is None else f'{100 * bf:.2f}%':>7} {w['_idle_periods']:>12} {w['_parks']:>7}")
    out.append("  tasks = pel:task_end events of tasks from the rings traced; stats = the runtime's "
               "own count in pel:worker_stop")
    if any(w["rt_tasks"] or w["io_callbacks"] for w in ws):
        out.append("  beside them: " + "; ".join(
            f"worker {w['worker']}: {w['rt_tasks']:,} real-time tasks, {w['io_callbacks']:,} I/O "
            "callbacks" for w in ws if w["rt_tasks"] or w["io_callbacks"]))
    out.append("")
    if res["_io_events"] == 0:
        out.append("I/O completion -> callback or task start latency: none (no pel:io_* events in "
                   "this trace)")
    elif res["_io_latency"] is None:
        out.append(f"I/O completion -> callback or task start latency: {res['_io_events']} pel:io_* "
                   f"events, but no completion followed by a task start on its worker")
    else:
        p = res["_io_latency"]
        out.append(f"I/O completion -> callback or task start latency, usec ({res['_io_latency_n']} "
                   "samples): "
                   + ", ".join(f"{lab} {_us(p[k])}" for lab, k in zip(PCT_LABELS, PCT_KEYS)))
    if res.get("_io_ops"):
        out.append("")
        out.append("I/O operations, submit -> result (a multishot one: from its previous result), "
                   "usec (nearest rank):")
        out.append(f"{'op':<9} {'samples':>9} {'errors':>7} "
                   + " ".join(f"{lab:>11}" for lab in PCT_LABELS))
        for kind, p in res["_io_ops"].items():
            out.append(f"{kind:<9} {p['n']:>9} {p['errors']:>7} "
                       + " ".join(f"{_us(p[k]):>11}" for k in PCT_KEYS))
        if res.get("_io_open"):
            out.append(f"  {res['_io_open']} operation(s) submitted without a final result in "
                       "the trace (still in flight when it stopped)")
    out.append("")
    threads = [t for t in res["_threads"] if t["timers"]]
    if not threads:
        out.append("TAU profile: no pel:timer_* events (PEL_TIMER_START/STOP) in this trace")
    else:
        out.append("TAU profile of the PEL_TIMER_START/STOP timers (pel:timer_entry/exit), "
                   "as pprof prints it:")
        grand = 0
        for th in threads:
            top = max(r["inclusive_ns"] for r in th["timers"])
            grand += top
            out.append("")
            out.append(f"THREAD {_thread_label(th)}:")
            out.extend(pprof_table(th["timers"], top))
        out.append("")
        out.append("FUNCTION SUMMARY (total):")
        rows = [{"name": t["name"], "calls": t["calls"], "subrs": t["subrs"],
                 "exclusive_ns": t["_exclusive_ns"], "inclusive_ns": t["_inclusive_ns"]}
                for t in res["timers"]]
        out.extend(pprof_table(rows, grand))
        out.append("  %Time: inclusive time over the largest inclusive time of the thread "
                   "(pprof's rule; summed over threads in the summary)")
    warn = []
    if res["_timer_open"]:
        warn.append(f"{res['_timer_open']} timer(s) still open at the end of the trace (not counted)")
    if res["_timer_unmatched_exit"]:
        warn.append(f"{res['_timer_unmatched_exit']} timer exit(s) without an open entry (ignored)")
    if res["_timer_out_of_order"]:
        warn.append(f"{res['_timer_out_of_order']} timer exit(s) out of nesting order (the inner "
                    f"timers were closed with them)")
    if res["_negative_waits"]:
        warn.append(f"{res['_negative_waits']} dequeue(s) stamped before their submit (counted as 0)")
    um = sum(w["_unmatched_dequeue"] for w in ws)
    if um:
        warn.append(f"{um} dequeue(s) with neither an enqueue stamp nor their submit/spawn in the "
                    f"trace (no queue wait)")
    ue = sum(w["_unmatched_end"] for w in ws)
    if ue:
        warn.append(f"{ue} task_end(s) without their task_start in the trace (no service time)")
    multi = [str(w["worker"]) for w in ws if w["_starts"] > 1]
    if multi:
        warn.append(f"worker(s) {', '.join(multi)} started more than once (several runtimes or "
                    f"processes in one trace): their figures are merged")
    if res["_pool_alloc_fail"]:
        warn.append(f"{res['_pool_alloc_fail']} pel:pool_alloc_fail event(s)")
    if warn:
        out.append("")
        out.append("Notes:")
        out.extend("  " + x for x in warn)
    return "\n".join(out) + "\n"


def json_text(res):
    return json.dumps(public(res), indent=2) + "\n"


def _usec_exact(ns):
    """ns as microseconds in decimal, exactly (1405198 -> "1405.198", 2000 -> "2")."""
    q, r = divmod(abs(ns), 1000)
    return ("-" if ns < 0 else "") + (f"{q}.{r:03d}".rstrip("0") if r else str(q))


def tau_files(res, outdir):
    """One TAU profile.0.0.T per thread with timers. T = the worker id for a worker thread;
    threads that are not workers (or a second thread of a worker) get numbers after the last
    worker. Returns [(path, thread dict)]."""
    os.makedirs(outdir, exist_ok=True)
    threads = [t for t in res["_threads"] if t["timers"]]
    used = set()
    nxt = max([t["worker"] for t in threads] + [w["worker"] for w in res["workers"]] + [-1]) + 1
    written = []
    for th in threads:
        if th["worker"] >= 0 and th["worker"] not in used:
            n = th["worker"]
        else:
            n = nxt
            nxt += 1
        used.add(n)
        path = os.path.join(outdir, f"profile.0.0.{n}")
        lines = [f"{len(th['timers'])} templated_functions_MULTI_TIME",
                 "# Name Calls Subrs Excl Incl ProfileCalls #"]
        for r in th["timers"]:
            name = r["name"].replace('"', "'")
            lines.append(f'"{name}" {r["calls"]} {r["subrs"]} {_usec_exact(r["exclusive_ns"])} '
                         f'{_usec_exact(r["inclusive_ns"])} 0 GROUP="TAU_USER"')
        lines.append("0 aggregates")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        written.append((path, th))
    return written
