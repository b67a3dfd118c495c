# SPDX-License-Identifier: MIT
"""pel_trace.core - the statistics of pel-trace, in pure Python (no bt2, no matplotlib).

Feed events in timestamp order, one call each, to Analyzer.event(name, ts_ns, fields):

    name    "pel:submit", "pel:dequeue", ... (events of other providers are counted and ignored)
    ts_ns   int, nanoseconds on one clock (LTTng's own)
    fields  a mapping from field name to value: the event's payload as trace/tp.h declares it,
            plus "vtid" (the LTTng vtid context) when it was recorded. Values go through int()
            or str(), so bt2 field objects work as they are.

then call Analyzer.discarded(count) for each run of events LTTng discarded, and finally
Analyzer.result(), a plain dict (the shape of `pel-trace --json`, plus private "_"-prefixed
detail the text, plot and TAU writers use). analyze(iterable of (name, ts_ns, fields)) does it all.

A task's queue wait is the runtime's own measure when the trace has it: the queue_wait_ns field of
pel:dequeue (enqueue stamp -> dequeue), when it is >= 0. It is -1 when the runtime wrote no stamp
for that task, and absent in traces older than that field; then the wait is pel:dequeue minus the
pel:submit/pel:spawn of the same (worker, src, seq). Each worker counts its waits by source.

Only what the statistics need is kept: per worker, one int64 per task for queue wait and one for
service time (array('q')), the submits not yet dequeued and the tasks not yet ended, the open
timers of each thread, and (when asked for, for the timeline plot) the idle periods.
"""
from array import array

PCTS = (("p50", 5000), ("p90", 9000), ("p99", 9900), ("p999", 9990), ("p9999", 9999))
JSON_PCTS = ("p50", "p90", "p99", "p999")


def percentiles(values):
    """Nearest-rank percentiles of a sequence of ints: {"p50": ..., ..., "p9999": ..., "max": ...}.

    p-th percentile = the value of rank ceil(p/100 * n) in ascending order (1-based); None
    everywhere when values is empty. Exact: the rank is computed in integers.
    """
    n = len(values)
    if n == 0:
        return dict({k: None for k, _ in PCTS}, max=None)
    s = _sorted(values)
    out = {}
    for key, per10k in PCTS:
        rank = (n * per10k + 9999) // 10000
        out[key] = int(s[max(rank, 1) - 1])
    out["max"] = int(s[n - 1])
    return out


def _sorted(values):
    try:
        import numpy
        return numpy.sort(numpy.frombuffer(values, dtype=numpy.int64)
                          if isinstance(values, array) else numpy.asarray(values, dtype=numpy.int64))
    except ImportError:
        return sorted(values)


class _Worker:
    __slots__ = ("id", "first", "last", "start", "stop", "stop_tasks", "cpu", "tasks", "qwait",
                 "service", "idle", "parked", "idle_since", "idle_ns", "idle_periods", "parks",
                 "first_idle_evt", "periods", "unmatched_dequeue", "unmatched_end", "running",
                 "dequeues", "ring_full", "submits", "seg", "seg_implicit", "span", "starts",
                 "qwait_stamp", "qwait_matched", "rt_tasks", "rt_service", "io_callbacks",
                 "io_service")

    def __init__(self, wid, keep_periods):
        self.id = wid
        self.first = None          # first event of this worker (ts)
        self.last = None
        self.start = None          # pel:worker_start ts
        self.stop = None           # pel:worker_stop ts
        self.stop_tasks = None     # the runtime's own count, from pel:worker_stop
        self.cpu = None
        self.tasks = 0             # pel:task_end events
        self.dequeues = 0
        self.submits = 0           # submit/spawn events aimed at this worker
        self.ring_full = 0
        self.qwait = array("q")
        self.qwait_stamp = 0       # waits taken from pel:dequeue's queue_wait_ns
        self.qwait_matched = 0     # waits from submit/spawn -> dequeue of the same triple
        self.service = array("q")
        self.rt_tasks = 0          # task_end of real-time tasks (src SRC_RT)
        self.rt_service = array("q")
        self.io_callbacks = 0      # task_end of I/O completion callbacks (src SRC_IO)
        self.io_service = array("q")
        self.idle = False          # between idle_enter and idle_exit
        self.parked = False        # between park and unpark
        self.idle_since = None     # start of the current idle period (idle or parked)
        self.idle_ns = 0
        self.idle_periods = 0
        self.parks = 0
        self.first_idle_evt = None  # name of the first idle-state event seen
        self.periods = array("q") if keep_periods else None  # start, end, start, end, ...
        self.unmatched_dequeue = 0
        self.unmatched_end = 0
        self.running = {}          # (src, seq) -> task_start ts
        self.seg = None            # start of the current running segment (worker_start..stop)
        self.seg_implicit = True   # seg is the worker's first event, not a worker_start
        self.span = 0              # sum of the closed segments
        self.starts = 0            # pel:worker_start events (more than 1: merged runtimes)


class _Thread:
    """Timer state of one thread: its stack and its per-name totals."""
    __slots__ = ("key", "worker", "vtid", "stack", "depth", "stats")

    def __init__(self, key, worker, vtid):
        self.key = key
        self.worker = worker
        self.vtid = vtid
        self.stack = []            # frames: [id, name, start_ts, child_incl_ns, nsubrs]
        self.depth = {}            # name -> how many frames of that name are open (recursion)
        self.stats = {}            # name -> [calls, subrs, excl_ns, incl_ns]


class Analyzer:
    def __init__(self, keep_periods=False):
        self.events = 0
        self.pel_events = 0
        self.lost_events = 0
        self.lost_unknown = 0      # DiscardedEvents messages without a count
        self.lost_packets = 0
        self.first_ts = None
        self.last_ts = None
        self.counts = {}           # event name -> count (pel:* only)
        self.workers = {}
        self.keep_periods = keep_periods
        self.pending = {}          # (worker, src, seq) -> submit/spawn ts
        self.threads = {}
        self.timer_names = {}      # id -> name
        self.timer_unmatched_exit = 0
        self.timer_out_of_order = 0
        self.negative_waits = 0
        self.io_events = 0
        self.io_pending = {}       # worker -> [completion ts, ...] not yet followed by a task start
        self.io_latency = array("q")
        self.io_inflight = {}      # handle -> ts of its submit, or of its last multishot result
        self.io_ops = {}           # op name -> {"lat": array of submit -> completion ns, "errors": n}
        self.pool_alloc_fail = 0
        self._dispatch = {
            "pel:submit": self._submit, "pel:spawn": self._submit,
            "pel:dequeue": self._dequeue,
            "pel:task_start": self._task_start, "pel:task_end": self._task_end,
            "pel:idle_enter": self._idle_enter, "pel:idle_exit": self._idle_exit,
            "pel:park": self._park, "pel:unpark": self._unpark,
            "pel:worker_start": self._worker_start, "pel:worker_stop": self._worker_stop,
            "pel:ring_full": self._ring_full,
            "pel:timer_entry": self._timer_entry, "pel:timer_exit": self._timer_exit,
            "pel:pool_alloc_fail": self._pool_alloc_fail,
        }

    # -- input ---------------------------------------------------------------------------------

    def event(self, name, ts, fields):
        self.events += 1
        if not name.startswith("pel:"):
            return
        self.pel_events += 1
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        self.counts[name] = self.counts.get(name, 0) + 1
        fn = self._dispatch.get(name)
        if fn is not None:
            fn(ts, fields)
        elif name.startswith("pel:io_"):
            self._io(name, ts, fields)

    def discarded(self, count):
        if count is None:
            self.lost_unknown += 1
        else:
            self.lost_events += int(count)

    def discarded_packets(self, count):
        self.lost_packets += int(count) if count is not None else 1

    def _w(self, wid, ts):
        w = self.workers.get(wid)
        if w is None:
            w = self.workers[wid] = _Worker(wid, self.keep_periods)
            w.first = w.seg = ts
        w.last = ts
        return w

    # -- tasks ---------------------------------------------------------------------------------

    def _submit(self, ts, f):
        wid = int(f["worker"])
        self._w(wid, ts).submits += 1
        # a later submit of the same triple (a retry after ring_full) replaces the earlier one
        self.pending[(wid, int(f["src"]), int(f["seq"]))] = ts

    def _dequeue(self, ts, f):
        wid = int(f["worker"])
        w = self._w(wid, ts)
        w.dequeues += 1
        # the submit is consumed either way, so a stamped task leaves nothing pending
        t = self.pending.pop((wid, int(f["src"]), int(f["seq"])), None)
        stamp = f.get("queue_wait_ns")   # absent in traces older than the field
        if stamp is not None and int(stamp) >= 0:
            # the runtime's own measure wins over the match: it does not depend on when the
            # producer's event was written relative to its push
            w.qwait.append(int(stamp))
            w.qwait_stamp += 1
            return
        if t is None:
            w.unmatched_dequeue += 1
            return
        d = ts - t
        if d < 0:
            self.negative_waits += 1
            d = 0
        w.qwait.append(d)
        w.qwait_matched += 1

    def _task_start(self, ts, f):
        wid = int(f["worker"])
        w = self._w(wid, ts)
        w.running[(int(f["src"]), int(f["seq"]))] = ts
        if self.io_pending:
            done = self.io_pending.pop(wid, None)
            if done:
                for t in done:
                    self.io_latency.append(ts - t)

    # task_start / task_end's src of work that did not come off a task ring (trace/tp.h)
    SRC_RT = 2000000
    SRC_IO = 3000000

    def _task_end(self, ts, f):
        wid = int(f["worker"])
        w = self._w(wid, ts)
        src = int(f["src"])
        if src == self.SRC_RT:
            w.rt_tasks += 1
            service = w.rt_service
        elif src == self.SRC_IO:
            w.io_callbacks += 1
            service = w.io_service
        else:
            w.tasks += 1       # the runtime's own count (pel:worker_stop) is of these
            service = w.service
        t = w.running.pop((src, int(f["seq"])), None)
        if t is None:
            w.unmatched_end += 1
            return
        service.append(ts - t)

    def _ring_full(self, ts, f):
        self._w(int(f["worker"]), ts).ring_full += 1

    # -- utilisation ---------------------------------------------------------------------------

    def _idle_change(self, w, ts, idle, parked):
        was = w.idle or w.parked
        if w.first_idle_evt is None:
            w.first_idle_evt = (idle, parked)
            # the first transition we see leaves idleness: the worker was idle since its span
            # began (the trace started while it idled)
            if not was and not (idle or parked) and w.start is None:
                was = True
                w.idle_since = w.first
        w.idle, w.parked = idle, parked
        now = idle or parked
        if now and not was:
            w.idle_since = ts
            w.idle_periods += 1
        elif was and not now:
            self._close_idle(w, ts)

    def _close_idle(self, w, ts):
        if w.idle_since is None:
            return
        w.idle_ns += ts - w.idle_since
        if w.periods is not None:
            w.periods.append(w.idle_since)
            w.periods.append(ts)
        w.idle_since = None

    def _idle_enter(self, ts, f):
        w = self._w(int(f["worker"]), ts)
        self._idle_change(w, ts, True, w.parked)

    def _idle_exit(self, ts, f):
        w = self._w(int(f["worker"]), ts)
        # leaving idle ends a park too (a worker that runs is not parked)
        self._idle_change(w, ts, False, False)

    def _park(self, ts, f):
        w = self._w(int(f["worker"]), ts)
        w.parks += 1
        self._idle_change(w, ts, w.idle, True)

    def _unpark(self, ts, f):
        w = self._w(int(f["worker"]), ts)
        self._idle_change(w, ts, w.idle, False)

    def _worker_start(self, ts, f):
        w = self._w(int(f["worker"]), ts)
        if w.start is None:
            w.start = ts
        w.starts += 1
        if w.seg is not None and not w.seg_implicit:
            w.span += ts - w.seg   # started twice without a stop between: count up to here
        w.seg, w.seg_implicit = ts, False
        w.cpu = int(f["cpu"])

    def _worker_stop(self, ts, f):
        w = self._w(int(f["worker"]), ts)
        w.stop = ts
        w.stop_tasks = int(f["tasks"]) if w.stop_tasks is None else w.stop_tasks + int(f["tasks"])
        if w.seg is not None:
            w.span += ts - w.seg
            w.seg = None
        if w.idle or w.parked:          # stopped while idle: the idle period ends here
            self._close_idle(w, ts)
            w.idle = w.parked = False

    def _pool_alloc_fail(self, ts, f):
        self.pool_alloc_fail += 1

    # -- I/O ------------------------------------------------------------------------------------

    IO_OPS = ("nop", "read", "write", "recv", "send", "recvmsg", "sendmsg", "accept", "connect",
              "close", "timeout", "cancel", "poll")
    CQE_F_MORE = 2

    def _io(self, name, ts, f):
        """pel:io_submit / pel:io_complete (trace/tp.h). Per operation kind, the time from the
        submission to each result, joined by the operation's handle (a multishot operation's next
        result counts from its previous one). A completion that carries a worker is also matched
        with that worker's next task start (completions that become tasks)."""
        self.io_events += 1
        handle = f.get("handle") if hasattr(f, "get") else None
        if name == "pel:io_submit" and handle is not None:
            self.io_inflight[int(handle)] = ts
            return
        if "complete" not in name:
            return
        try:
            wid = int(f["worker"])
        except (KeyError, TypeError, ValueError):
            return
        self.io_pending.setdefault(wid, []).append(ts)
        if handle is None:
            return
        h = int(handle)
        try:
            op = int(f["op"])
            kind = self.IO_OPS[op] if 0 <= op < len(self.IO_OPS) else f"op{op}"
        except (KeyError, TypeError, ValueError):
            kind = "?"
        st = self.io_ops.setdefault(kind, {"lat": array("q"), "errors": 0})
        try:
            if int(f["res"]) < 0:
                st["errors"] += 1
        except (KeyError, TypeError, ValueError):
            pass
        t0 = self.io_inflight.get(h)
        if t0 is not None and ts >= t0:
            st["lat"].append(ts - t0)
        more = False
        try:
            more = bool(int(f["flags"]) & self.CQE_F_MORE)
        except (KeyError, TypeError, ValueError):
            pass
        if more:
            self.io_inflight[h] = ts
        else:
            self.io_inflight.pop(h, None)

    # -- timers --------------------------------------------------------------------------------

    def _thread(self, f):
        try:
            vtid = f["vtid"]
        except (KeyError, TypeError):
            vtid = None
        wid = int(f["worker"])
        if vtid is not None:
            vtid = int(vtid)
            key = ("tid", vtid)
        else:
            key = ("worker", wid)
        th = self.threads.get(key)
        if th is None:
            th = self.threads[key] = _Thread(key, wid, vtid)
        elif th.worker < 0 <= wid:
            th.worker = wid
        return th

    def _timer_entry(self, ts, f):
        th = self._thread(f)
        tid = int(f["id"])
        name = self.timer_names.get(tid)
        if name is None:
            name = self.timer_names[tid] = str(f["name"])
        th.stack.append([tid, name, ts, 0, 0])
        th.depth[name] = th.depth.get(name, 0) + 1

    def _timer_exit(self, ts, f):
        th = self._thread(f)
        tid = int(f["id"])
        st = th.stack
        if not st:
            self.timer_unmatched_exit += 1
            return
        if st[-1][0] != tid:
            # not the innermost open timer: close the frames above it (lost exits or misuse)
            for i in range(len(st) - 1, -1, -1):
                if st[i][0] == tid:
                    break
            else:
                self.timer_unmatched_exit += 1
                return
            self.timer_out_of_order += 1
            while st[-1][0] != tid:
                self._pop(th, ts)
        self._pop(th, ts)

    def _pop(self, th, ts):
        tid, name, start, child, subrs = th.stack.pop()
        incl = ts - start
        s = th.stats.get(name)
        if s is None:
            s = th.stats[name] = [0, 0, 0, 0]
        s[0] += 1
        s[1] += subrs
        s[2] += incl - child
        d = th.depth[name] - 1
        th.depth[name] = d
        if d == 0:                 # TAU: a recursive call's time counts once, in the outermost
            s[3] += incl
        if th.stack:
            parent = th.stack[-1]
            parent[3] += incl
            parent[4] += 1

    # -- output --------------------------------------------------------------------------------

    def result(self):
        workers = []
        for wid in sorted(self.workers):
            w = self.workers[wid]
            end = w.stop if w.stop is not None else w.last
            begin = w.start if w.start is not None else w.first
            if w.idle_since is not None:     # still idle when the trace ended
                self._close_idle(w, end)
            if w.seg is not None:            # running when the trace ended
                w.span += w.last - w.seg
                w.seg = None
            span = w.span
            busy = None
            if span > 0:
                busy = max(0.0, min(1.0, (span - w.idle_ns) / span))
            q, s = percentiles(w.qwait), percentiles(w.service)
            rs, cs = percentiles(w.rt_service), percentiles(w.io_service)
            workers.append({
                "worker": wid,
                "tasks": w.tasks,
                "rt_tasks": w.rt_tasks,
                "io_callbacks": w.io_callbacks,
                "rt_service_ns": {k: rs[k] for k in JSON_PCTS + ("max",)},
                "io_callback_ns": {k: cs[k] for k in JSON_PCTS + ("max",)},
                "_rt_service": rs, "_io_service": cs, "_rt_service_values": w.rt_service,
                "_io_service_values": w.io_service,
                "queue_wait_ns": {k: q[k] for k in JSON_PCTS + ("max",)},
                "queue_wait_source": {"stamp": w.qwait_stamp, "matched": w.qwait_matched},
                "service_ns": {k: s[k] for k in JSON_PCTS + ("max",)},
                "busy_fraction": busy,
                "_queue_wait": q, "_service": s, "_qwait_values": w.qwait,
                "_service_values": w.service, "_span_ns": span, "_begin": begin, "_end": end,
                "_idle_ns": w.idle_ns, "_idle_periods": w.idle_periods, "_parks": w.parks,
                "_stop_tasks": w.stop_tasks, "_cpu": w.cpu, "_dequeues": w.dequeues,
                "_submits": w.submits, "_ring_full": w.ring_full,
                "_unmatched_dequeue": w.unmatched_dequeue, "_unmatched_end": w.unmatched_end,
                "_unended": len(w.running), "_periods": w.periods, "_starts": w.starts,
            })
        threads = []
        total = {}
        for th in sorted(self.threads.values(),
                         key=lambda t: (t.worker < 0, t.worker, t.vtid if t.vtid is not None else -1)):
            rows = []
            for name, (calls, subrs, excl, incl) in th.stats.items():
                rows.append({"name": name, "calls": calls, "subrs": subrs,
                             "exclusive_ns": excl, "inclusive_ns": incl})
                t = total.setdefault(name, [0, 0, 0, 0])
                t[0] += calls
                t[1] += subrs
                t[2] += excl
                t[3] += incl
            rows.sort(key=lambda r: (-r["inclusive_ns"], r["name"]))
            threads.append({"worker": th.worker, "vtid": th.vtid, "timers": rows,
                            "open": len(th.stack)})
        timers = [{"name": n, "calls": c, "subrs": s, "exclusive_us": e / 1000.0,
                   "inclusive_us": i / 1000.0, "_exclusive_ns": e, "_inclusive_ns": i}
                  for n, (c, s, e, i) in total.items()]
        timers.sort(key=lambda r: (-r["_inclusive_ns"], r["name"]))
        return {
            "events": self.events,
            "lost_events": self.lost_events,
            "workers": workers,
            "timers": timers,
            "_pel_events": self.pel_events,
            "_lost_unknown": self.lost_unknown,
            "_lost_packets": self.lost_packets,
            "_first_ts": self.first_ts, "_last_ts": self.last_ts,
            "_counts": dict(sorted(self.counts.items())),
            "_threads": threads,
            "_timer_unmatched_exit": self.timer_unmatched_exit,
            "_timer_out_of_order": self.timer_out_of_order,
            "_timer_open": sum(len(t.stack) for t in self.threads.values()),
            "_negative_waits": self.negative_waits,
            "_pending_submits": len(self.pending),
            "_io_events": self.io_events,
            "_io_latency": percentiles(self.io_latency) if self.io_latency else None,
            "_io_latency_n": len(self.io_latency),
            "_io_ops": {k: dict(percentiles(v["lat"]), n=len(v["lat"]), errors=v["errors"])
                        for k, v in sorted(self.io_ops.items())},
            "_io_open": len(self.io_inflight),
            "_pool_alloc_fail": self.pool_alloc_fail,
        }


def analyze(events, keep_periods=False, discarded=()):
    """events: iterable of (name, ts_ns, fields); discarded: iterable of lost-event counts."""
    a = Analyzer(keep_periods=keep_periods)
    for name, ts, fields in events:
        a.event(name, ts, fields)
    for c in discarded:
        a.discarded(c)
    return a.result()


def public(result):
    """The --json object: result without its "_" keys, at every level."""
    if isinstance(result, dict):
        return {k: public(v) for k, v in result.items() if not k.startswith("_")}
    if isinstance(result, list):
        return [public(v) for v in result]
    return result
