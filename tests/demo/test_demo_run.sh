#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/demo/test_demo_run.sh - tools/demo.sh itself, on the build under test (PEL_DEMO_BUILD: no
# install, no release build), briefly:
#   1. a short sweep (loads 5 and 10 %, 0.3 s each, the feed mode at 2000/s, no trace): exit 0,
#      the table and the four ratios printed, the results folder's last line, results.json in
#      pel-bench's form, report.md; every run accounted for on both sides (pel-load: sent =
#      answered + late + rejected + lost; the server: received = answered + late + rejected +
#      malformed + dropped). Figures are not checked: this is the machinery, on a debug build.
#      It runs from another directory with a relative --out, which names a folder there;
#   2. Ctrl-C (SIGINT to its process group, as a terminal sends it) during the second run: exit
#      130, no server, generator or demo.sh left, the report written with the runs that finished
#      and the interrupted one marked; a second demo.sh on the same build meanwhile exits 1 at
#      once (the lock), leaving the first to finish;
#   3. a pel-load that fails every run (a fake one): each failure shows pel-load's own error
#      line, not its usage; the report is written and says no run finished; exit 1 with that;
#   4. SIGTERM to demo.sh while it stops a server whose pel-load had finished (a server that
#      takes 1.5 s to stop): that run counts as finished, not interrupted;
#   5. when the build has tracepoints: SIGTERM while lttng-sessiond --daemonize starts (a slow
#      fake around the real one): the session daemon demo.sh started is stopped, its home gone.
#
#	test_demo_run.sh DEMO_SH BUILD_DIR
set -u

DEMO=$(readlink -f "${1:?usage: test_demo_run.sh DEMO_SH BUILD_DIR}")
BUILD=${2:?usage: test_demo_run.sh DEMO_SH BUILD_DIR}
tmp=$(mktemp -d) || exit 1
pgid=
cleanup()
{
	[ -n "$pgid" ] && kill -9 -- "-$pgid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	[ -f "$tmp/log" ] && { echo "--- demo.sh output"; tail -40 "$tmp/log"; }
	exit 1
}

[ "$(nproc)" -ge 2 ] || { echo "skip: the demo needs two CPUs"; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export PEL_DEMO_BUILD=$BUILD

# ---- 1. a short sweep ----

mkdir "$tmp/cwd" || exit 1
(cd "$tmp/cwd" && exec "$DEMO" --quick --loads 5,10 --seconds 0.3 --feed-rate 2000 --no-trace \
	--out ../r1 >"$tmp/log" 2>&1 </dev/null)
rc=$?
[ "$rc" -eq 0 ] || fail "demo.sh exit $rc"
[ "$(tail -1 "$tmp/log")" = "$(cd "$tmp/r1" && pwd)" ] ||
	fail "the last line is not the results folder (--out ../r1 from $tmp/cwd)"
for r in p50_vs_epoll_pool p99_vs_epoll_pool p50_vs_ideal_fcfs max_load_p99_100us_vs_epoll_pool; do
	grep -q "^$r " "$tmp/log" || fail "no $r line"
done
grep -q '^10 % ' "$tmp/log" || fail "no 10 % row in the table"
[ -s "$tmp/r1/report.md" ] || fail "no report.md"
"$PY" - "$tmp/r1" <<'PY' || fail "results or accounting"
import glob, json, os, sys
d = sys.argv[1]
doc = json.load(open(os.path.join(d, "results.json")))
assert doc["bench"] == "demo" and doc["cpu"], doc.keys()
names = {r["name"] for r in doc["ratios"]}
assert names == {"p50_vs_epoll_pool", "p99_vs_epoll_pool", "p50_vs_ideal_fcfs",
                 "max_load_p99_100us_vs_epoll_pool"}, names
for r in doc["ratios"]:
    assert {"name", "value", "target", "better", "met", "how"} <= set(r), r
assert all({"name", "value", "unit"} <= set(m) for m in doc["metrics"]), doc["metrics"][:3]
loads = sorted(glob.glob(os.path.join(d, "runs", "*.load.json")))
stats = sorted(glob.glob(os.path.join(d, "runs", "*.stats.json")))
assert len(loads) == 6 and len(stats) == 6, (loads, stats)	# 2 loads x 2 servers + 2 feed runs
for p in loads:
    m = {x["name"]: x["value"] for x in json.load(open(p))["metrics"]}
    assert m["sent"] > 0 and m["answered"] > 0, (p, m["sent"], m["answered"])
    assert m["sent"] == m["answered"] + m["late_dropped"] + m["rejected"] + m["lost"], p
for p in stats:
    s = json.load(open(p))
    assert s["received"] > 0, p
    assert s["received"] == sum(s[k] for k in ("answered", "late", "rejected", "malformed",
                                               "dropped")), (p, s)
    assert s["malformed"] == 0, (p, s)
print("ok: results.json, report.md and %d runs accounted for" % len(loads))
PY

# ---- 2. Ctrl-C in the middle ----

# A command run in the background by a non-interactive shell starts with SIGINT ignored, and an
# ignored signal cannot be trapped: env puts the default back, as a terminal's shell has it.
env --default-signal=INT true 2>/dev/null ||
	{ echo "ok: sweep; skip Ctrl-C: env has no --default-signal (coreutils < 8.31)"; exit 0; }
: >"$tmp/log"	# part 1's lines would answer the wait for "[2/" below
setsid env --default-signal=INT "$DEMO" --quick --loads 10,20,30 --seconds 2 --feed-rate 0 \
	--no-trace --out "$tmp/r2" >"$tmp/log" 2>&1 </dev/null &
pid=$!
pgid=$pid	# setsid: the new session's leader, and its process group
for _ in $(seq 600); do
	grep -q '^\[2/' "$tmp/log" && break
	kill -0 "$pid" 2>/dev/null || fail "demo.sh ended before its second run"
	sleep 0.05
done
grep -q '^\[2/' "$tmp/log" || fail "no second run started"
# a second demo on the same build: refused at once, the first one untouched
timeout 20 "$DEMO" --quick --loads 10 --seconds 0.3 --feed-rate 0 --no-trace --out "$tmp/r2b" \
	>"$tmp/log2" 2>&1 </dev/null
rc=$?
[ "$rc" -eq 1 ] || fail "a second demo.sh on the same build: exit $rc, expected 1"
grep -q 'another demo is running' "$tmp/log2" || fail "second demo.sh: $(cat "$tmp/log2")"
kill -0 "$pid" 2>/dev/null || fail "the first demo.sh ended when the second started"
kill -INT -- "-$pgid"
for _ in $(seq 200); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$pid" 2>/dev/null && fail "demo.sh still running 10 s after Ctrl-C"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || fail "demo.sh exit $rc after Ctrl-C, expected 130"
for _ in $(seq 40); do	# what it stopped is gone by the time it exits; 2 s for the reaping
	left=$(pgrep -g "$pgid" 2>/dev/null | tr '\n' ' ')
	[ -z "$left" ] && break
	sleep 0.05
done
[ -z "$left" ] || fail "left running after Ctrl-C: $(ps -o pid,comm -p $left 2>/dev/null)"
pgid=
[ -s "$tmp/r2/report.md" ] || fail "no report.md after Ctrl-C"
grep -q interrupted "$tmp/r2/points.tsv" || fail "the run under way is not marked interrupted"
grep -q interrupted "$tmp/log" || fail "no word of the interruption"
echo "ok: Ctrl-C during run 2: exit 130, nothing left running, the report of what finished"
echo "ok: a second demo.sh on the same build refused while the first ran"

# A build folder of links to the build under test, for the fakes below.
fake_build()
{
	local d=$1 f
	mkdir -p "$d/examples" "$d/bench" "$d/tools" || exit 1
	for f in examples/pel-feed examples/feed-pool bench/pel-load tools/pel-check pel_config.h; do
		ln -s "$BUILD/$f" "$d/$f" || exit 1
	done
}

# ---- 3. every run fails ----

fake_build "$tmp/b3"
rm "$tmp/b3/bench/pel-load"
printf '%s\n' '#!/bin/sh' \
	"[ \"\$1\" = --help ] && exec '$BUILD/bench/pel-load' --help" \
	'echo "pel-load: cannot reach the server (a fake failure)" >&2' \
	"'$BUILD/bench/pel-load' --help >&2" \
	'exit 2' >"$tmp/b3/bench/pel-load"
chmod +x "$tmp/b3/bench/pel-load"
PEL_DEMO_BUILD=$tmp/b3 "$DEMO" --quick --loads 10 --seconds 0.1 --feed-rate 0 --no-trace \
	--out "$tmp/r3" >"$tmp/log" 2>&1 </dev/null
rc=$?
[ "$rc" -eq 1 ] || fail "every run failed: exit $rc, expected 1"
[ "$(grep -c 'failed: pel-load exit 2: pel-load: cannot reach the server' "$tmp/log")" -eq 2 ] ||
	fail "pel-load's error line not shown for each failed run"
grep -q 'no run finished: report.md and results.json say so' "$tmp/log" ||
	fail "no word that no run finished"
grep -q 'could not be written' "$tmp/log" && fail "says the report could not be written"
[ -s "$tmp/r3/report.md" ] && [ -s "$tmp/r3/results.json" ] || fail "no report after no run"
echo "ok: every run failed: pel-load's error line each time, the report written, exit 1"

# ---- 4. a signal while a finished run's server stops ----

mkdir -p "$tmp/slow" || exit 1
printf '%s\n' '#!/bin/bash' \
	"trap 'touch \"$tmp/stopping\"; sleep 1.5; kill -TERM \$child; wait \$child; exit 0' TERM" \
	"'$BUILD/examples/pel-feed' \"\$@\" &" \
	'child=$!' \
	'wait $child' >"$tmp/slow/pel-feed"
chmod +x "$tmp/slow/pel-feed"
PEL_DEMO_PEL=$tmp/slow/pel-feed "$DEMO" --quick --loads 10 --seconds 0.3 --feed-rate 0 \
	--no-trace --out "$tmp/r4" >"$tmp/log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 600); do
	[ -e "$tmp/stopping" ] && break
	kill -0 "$pid" 2>/dev/null || fail "demo.sh ended before its first server stopped"
	sleep 0.05
done
[ -e "$tmp/stopping" ] || fail "the first server was never stopped"
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || fail "SIGTERM while stopping a server: exit $rc, expected 130"
st=$(awk -F '\t' 'NR == 2 { print $7 }' "$tmp/r4/points.tsv")
[ "$st" = ok ] || fail "the finished run is marked '$st', not ok"
echo "ok: a signal while a finished run's server stopped: the run counts, exit 130"

# ---- 5. SIGTERM while lttng-sessiond starts ----

if ! grep -q "PEL_HAVE_LTTNG 1" "$BUILD/pel_config.h" 2>/dev/null ||
   ! command -v lttng-sessiond >/dev/null 2>&1 || ! command -v babeltrace2 >/dev/null 2>&1; then
	echo "ok: skip the session daemon check: no tracepoints in this build or no LTTng tools"
	exit 0
fi
mkdir -p "$tmp/fakebin" "$tmp/lttng-home" || exit 1
printf '%s\n' '#!/bin/sh' \
	"'$(command -v lttng-sessiond)' \"\$@\"" \
	'rc=$?' \
	"echo \"\$@\" >'$tmp/sessiond-args'" \
	'sleep 1.5' \
	'exit $rc' >"$tmp/fakebin/lttng-sessiond"
chmod +x "$tmp/fakebin/lttng-sessiond"
# a home of its own: no session daemon answers there, so demo.sh starts one
LTTNG_HOME=$tmp/lttng-home PATH=$tmp/fakebin:$PATH "$DEMO" --quick --loads 10 --seconds 0.1 \
	--feed-rate 2000 --out "$tmp/r5" >"$tmp/log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 600); do
	[ -s "$tmp/sessiond-args" ] && break
	kill -0 "$pid" 2>/dev/null || fail "demo.sh ended before it started lttng-sessiond"
	sleep 0.05
done
[ -s "$tmp/sessiond-args" ] || fail "lttng-sessiond never started"
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || fail "SIGTERM while lttng-sessiond started: exit $rc, expected 130"
pidfile=$(sed -n 's/.*--pidfile=\([^ ]*\).*/\1/p' "$tmp/sessiond-args")
[ -n "$pidfile" ] || fail "no --pidfile in lttng-sessiond's arguments"
for _ in $(seq 40); do
	left=$(pgrep -f -- "--pidfile=$pidfile" | tr '\n' ' ')
	[ -z "$left" ] && break
	sleep 0.05
done
if [ -n "$left" ]; then
	# shellcheck disable=SC2086 # pids
	kill $left 2>/dev/null
	fail "lttng-sessiond left running after SIGTERM: $left"
fi
[ -e "$(dirname "$pidfile")" ] && fail "the session daemon's home $(dirname "$pidfile") is left"
grep -q 'interrupted while recording' "$tmp/r5/meta.tsv" || fail "the trace is not marked"
echo "ok: SIGTERM while lttng-sessiond started: no session daemon left, its home removed"
