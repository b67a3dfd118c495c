# SPDX-License-Identifier: MIT
"""pel_trace.ctf - read an LTTng CTF trace directory with babeltrace2's Python bindings (bt2)
and feed an Analyzer, one event at a time (nothing is kept per event)."""
import os
import sys


class TraceError(Exception):
    """What is wrong with the trace directory, said for a person (pel-trace exits 2)."""


CTF_MAGIC = (b"\xc1\x1f\xfc\xc1", b"\xc1\xfc\x1f\xc1")   # packetized metadata, either byte order


def metadata_files(root):
    """The CTF metadata files below root (the streams are their siblings)."""
    found = []
    for d, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        if "metadata" in files:
            p = os.path.join(d, "metadata")
            try:
                with open(p, "rb") as f:
                    head = f.read(64)
            except OSError:
                continue
            if head.startswith(b"/* CTF") or head[:4] in CTF_MAGIC or head.startswith(b"\x57\x1d\xd1\x75") \
                    or head.startswith(b"\x75\xd1\x1d\x57"):
                found.append(p)
    return found


def check_dir(root):
    """Raise TraceError unless root is a directory holding at least one CTF trace."""
    if not os.path.exists(root):
        raise TraceError(f"{root}: no such directory (give the directory passed to "
                         f"`lttng create --output`)")
    if not os.path.isdir(root):
        raise TraceError(f"{root}: not a directory (give the directory passed to "
                         f"`lttng create --output`)")
    meta = metadata_files(root)
    if not meta:
        raise TraceError(f"{root}: no CTF trace below it (no CTF 'metadata' file found); was the "
                         f"LTTng session started, and stopped or destroyed before reading?")
    return meta


def _import_bt2():
    try:
        import bt2
    except ImportError:
        raise TraceError("the babeltrace2 Python bindings (module bt2) are missing: install "
                         "python3-bt2 and run pel-trace with /usr/bin/python3 "
                         f"(this is {sys.executable})")
    return bt2


def read(root, analyzer, progress=False, every=1_000_000):
    """Feed every message of the CTF traces below root to analyzer. Returns the event count."""
    meta = check_dir(root)
    bt2 = _import_bt2()
    # source.ctf.fs on each trace directory found (not bt2's auto-discovery, which aborts the
    # process on a corrupt metadata file instead of raising)
    inputs = sorted({os.path.dirname(m) for m in meta})
    try:
        specs = [bt2.ComponentSpec.from_named_plugin_and_component_class("ctf", "fs", {"inputs": [d]})
                 for d in inputs]    # one per trace: per-pid buffers make traces of other UUIDs
        it = bt2.TraceCollectionMessageIterator(specs)
    except Exception as e:  # bt2 raises bt2._Error (a RuntimeError) with a chain of causes
        raise TraceError(f"{root}: babeltrace2 cannot open the trace: {_first_line(e)}")
    tty = sys.stderr.isatty()
    n = 0
    try:
        for n in _events(bt2, it, analyzer):
            if progress and n % every == 0:
                if tty:
                    sys.stderr.write(f"\rpel-trace: {n:,} events read")
                else:
                    sys.stderr.write(f"pel-trace: {n:,} events read\n")
                sys.stderr.flush()
    except TraceError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise TraceError(f"{root}: a pel:* event does not have the fields trace/tp.h declares "
                         f"({type(e).__name__}: {e}); is this trace from another pel version?")
    except Exception as e:
        if "bt2" in type(e).__module__ or isinstance(e, RuntimeError):
            raise TraceError(f"{root}: babeltrace2 cannot read the trace: {_first_line(e)}")
        raise
    finally:
        if progress and n >= every and tty:
            sys.stderr.write("\n")
    return n


def _class_info(bt2, msg):
    """(name, [(field name, member index, kind)], vtid index or None) of msg's event class."""
    ev = msg.event
    cls = ev.cls
    if ev.stream.cls.default_clock_class is None:
        raise TraceError(f"event class {cls.name} has no clock: not an LTTng trace?")
    members = []
    fc = cls.payload_field_class
    if fc is not None:
        for i, (fname, m) in enumerate(fc.items()):
            ft = m.field_class
            if isinstance(ft, bt2._SignedIntegerFieldClassConst):
                kind = "s"
            elif isinstance(ft, bt2._UnsignedIntegerFieldClassConst):
                kind = "u"
            elif isinstance(ft, bt2._StringFieldClassConst):
                kind = "str"
            else:
                kind = "other"
            members.append((fname, i, kind))
    vtid = None
    cc = ev.stream.cls.event_common_context_field_class
    if cc is not None:
        for i, (fname, m) in enumerate(cc.items()):
            if fname == "vtid":
                vtid = (i, "s" if isinstance(m.field_class, bt2._SignedIntegerFieldClassConst) else "u")
    return cls.name, members, vtid


def _events(bt2, it, analyzer):
    """Feed the analyzer; yield the running event count. Reads fields through bt2's native
    (SWIG) functions where this bt2 has them: the public wrappers cost ~20 us per event, these
    ~2 us."""
    try:
        if os.environ.get("PEL_TRACE_PUBLIC_BT2"):   # tests: check both paths agree
            raise ImportError
        from bt2 import native_bt as nb
        bev = nb.message_event_borrow_event_const
        bcs = nb.message_event_borrow_default_clock_snapshot_const
        ns_of = nb.clock_snapshot_get_ns_from_origin
        bcls = nb.event_borrow_class_const
        bpay = nb.event_borrow_payload_field_const
        bctx = nb.event_borrow_common_context_field_const
        member = nb.field_structure_borrow_member_field_by_index_const
        getters = {"u": nb.field_integer_unsigned_get_value, "s": nb.field_integer_signed_get_value,
                   "str": nb.field_string_get_value}
    except (ImportError, AttributeError):
        yield from _events_public(bt2, it, analyzer)
        return
    EventMsg = bt2._EventMessageConst
    DiscEvents = bt2._DiscardedEventsMessageConst
    DiscPackets = bt2._DiscardedPacketsMessageConst
    feed = analyzer.event
    classes = {}
    n = 0
    for msg in it:
        t = type(msg)
        if t is EventMsg:
            mp = msg._ptr
            ep = bev(mp)
            key = int(bcls(ep))
            info = classes.get(key)
            if info is None:
                name, members, vtid = _class_info(bt2, msg)
                if name.startswith("pel:"):
                    decode = tuple((f, i, getters[k]) for f, i, k in members if k in getters)
                    vt = (vtid[0], getters[vtid[1]]) if vtid else None
                else:
                    decode, vt = (), None      # not ours: only counted
                info = classes[key] = (name, decode, vt)
            name, decode, vt = info
            status, ts = ns_of(bcs(mp))
            if status:
                raise TraceError("a timestamp does not fit in 64-bit nanoseconds from the origin")
            fields = {}
            if decode:
                p = bpay(ep)
                for f, i, get in decode:
                    fields[f] = get(member(p, i))
                if vt is not None:
                    fields["vtid"] = vt[1](member(bctx(ep), vt[0]))
            feed(name, ts, fields)
            n += 1
            yield n
        elif t is DiscEvents:
            analyzer.discarded(msg.count)
        elif t is DiscPackets:
            analyzer.discarded_packets(msg.count)


def _events_public(bt2, it, analyzer):
    """The same with bt2's public API only (slower)."""
    EventMsg = bt2._EventMessageConst
    DiscEvents = bt2._DiscardedEventsMessageConst
    DiscPackets = bt2._DiscardedPacketsMessageConst
    feed = analyzer.event
    n = 0
    for msg in it:
        t = type(msg)
        if t is EventMsg:
            ev = msg.event
            name = ev.cls.name
            ts = msg.default_clock_snapshot.ns_from_origin
            fields = {}
            if name.startswith("pel:"):
                p = ev.payload_field
                for k in p.keys():
                    v = p[k]
                    fields[k] = str(v) if isinstance(v, bt2._StringFieldConst) else int(v)
                ctx = ev.common_context_field
                if ctx is not None and "vtid" in ctx:
                    fields["vtid"] = int(ctx["vtid"])
            feed(name, ts, fields)
            n += 1
            yield n
        elif t is DiscEvents:
            analyzer.discarded(msg.count)
        elif t is DiscPackets:
            analyzer.discarded_packets(msg.count)


def _first_line(e):
    """The innermost cause of a bt2 error (what the CTF reader itself said), else line 1."""
    try:
        causes = list(e)
        if causes and getattr(causes[0], "message", None):
            return causes[0].message
    except TypeError:
        pass
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__
