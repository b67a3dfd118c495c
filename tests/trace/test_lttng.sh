#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/trace/test_lttng.sh PROG - record PROG (tests/trace/trace_prog) with a real LTTng session
# and check the trace: every pel event type is there, task_start per worker equals the runtime's
# tasks_run, submits and spawns equal what the program counted, timers nest as written.
# Starts its own lttng-sessiond --no-kernel when none runs; exit 77 (skip) only when lttng-tools
# or babeltrace2 is not installed.
set -u
prog=$1
for t in lttng lttng-sessiond babeltrace2; do
	command -v "$t" >/dev/null || { echo "skip: $t is not installed (apt-get install lttng-tools babeltrace2)"; exit 77; }
done
work=$(mktemp -d /tmp/pel-lttng.XXXXXX)
session="pel-test-$$-$RANDOM"
started=""
cleanup()
{
	lttng destroy "$session" >/dev/null 2>&1
	lttng destroy "$session-dq" >/dev/null 2>&1
	[ -n "$started" ] && kill "$started" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if ! lttng list >/dev/null 2>&1; then
	# no session daemon for this user: start one, and stop it at the end
	export LTTNG_HOME="$work/home"
	mkdir -p "$LTTNG_HOME"
	lttng-sessiond --no-kernel --daemonize --pidfile="$work/sessiond.pid" || { echo "FAIL: cannot start lttng-sessiond"; exit 1; }
	started=$(cat "$work/sessiond.pid")
	for _ in $(seq 50); do lttng list >/dev/null 2>&1 && break; sleep 0.1; done
fi
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

lttng create "$session" --output="$work/trace" >/dev/null || { echo "FAIL: lttng create"; exit 1; }
lttng enable-event -u 'pel:*' -s "$session" >/dev/null || { echo "FAIL: enable-event"; exit 1; }
lttng add-context -u -t vtid -s "$session" >/dev/null
# Record only the program's own process: a session traces every process of the user, and another
# pel program running meanwhile (a benchmark, a second test run) would add its events. The program
# waits on a fifo until its pid is tracked, then execs (same pid).
run_tracked()
{
	local sess=$1 pid rc
	shift
	rm -f "$work/go"
	mkfifo "$work/go" || return 1
	/bin/sh -c 'read _ < "$0" && exec "$@"' "$work/go" "$@" &
	pid=$!
	if ! lttng untrack -u -s "$sess" --all --vpid >/dev/null ||
	   ! lttng track -u -s "$sess" --vpid="$pid" >/dev/null ||
	   ! lttng start "$sess" >/dev/null; then
		echo "FAIL: lttng track/start"
		kill "$pid" 2>/dev/null
		return 1
	fi
	echo go > "$work/go"
	wait "$pid"
	rc=$?
	[ $rc -eq 0 ] || echo "FAIL: $* exited $rc"
	return $rc
}
run_tracked "$session" "$prog" "$work/facts.json" || exit 1
lttng stop "$session" >/dev/null
lttng destroy "$session" >/dev/null
cat "$work/facts.json"
babeltrace2 "$work/trace" > "$work/text" 2> "$work/bt.err" || { echo "FAIL: babeltrace2"; cat "$work/bt.err"; exit 1; }
echo "$(wc -l < "$work/text") events"

count() { grep -c " pel:$1: " "$work/text"; }
for ev in worker_start worker_stop submit spawn ring_full dequeue task_start task_end idle_enter \
	  idle_exit park unpark pool_alloc_fail timer_entry timer_exit; do
	check "pel:$ev recorded" "[ \$(count $ev) -gt 0 ]"
done
fact() { /usr/bin/python3 -c "import json,sys; f=json.load(open('$work/facts.json')); print(eval(sys.argv[1]))" "$1"; }
nw=$(fact "f['workers']")
for w in $(seq 0 $((nw - 1))); do
	want=$(fact "f['tasks_run'][$w]")
	got=$(grep " pel:task_start: " "$work/text" | grep -c "worker = $w,")
	check "worker $w: task_start events ($got) = tasks_run ($want)" "[ $got -eq $want ]"
	got=$(grep " pel:task_end: " "$work/text" | grep -c "worker = $w,")
	check "worker $w: task_end events ($got) = tasks_run ($want)" "[ $got -eq $want ]"
done
# src 0 is the runtime's own slot (the pool layer's set-up steps on each worker)
user_submits=$(grep " pel:submit: " "$work/text" | grep -vc "src = 0,")
check "submit events from the program's handle ($user_submits) = tasks it had accepted ($(fact "f['submitted']"))" "[ $user_submits -eq $(fact "f['submitted']") ]"
check "spawn events = spawns ($(fact "f['spawned']"))" "[ \$(count spawn) -eq $(fact "f['spawned']") ]"
check "dequeue events = submits + spawns" "[ \$(count dequeue) -eq \$(( \$(count submit) + \$(count spawn) )) ]"
# queue_wait_ns: stamped at submit while pel:dequeue records; -1 only for tasks pushed before
# lttng-ust enabled the tracepoints in this process (its first milliseconds)
# Every task was pushed while pel:dequeue was recorded, and a refused push (the full ring above)
# must not overwrite the stamp of the oldest queued task: every dequeue carries its wait.
all_stamped()
{
	/usr/bin/python3 - "$1" "${2:-0}" <<'PY'
import re, sys
want = int(sys.argv[2])
w = []
for l in open(sys.argv[1]):
    m = re.search(r'pel:dequeue:.*queue_wait_ns = (-?\d+)', l)
    s = re.search(r'[ {]src = (\d+)', l)
    # counted against the program's submits: not the runtime's own slot (src 0), through which
    # pel_create() starts the layers every runtime has
    if m and not (want and s and int(s.group(1)) == 0):
        w.append(int(m.group(1)))
stamped = sum(1 for x in w if x >= 0)
print('   %d dequeues, %d stamped' % (len(w), stamped))
sys.exit(0 if w and stamped == len(w) and (want == 0 or len(w) == want) else 1)
PY
}
check "dequeue queue_wait_ns: every task stamped (a refused submit leaves the oldest's stamp)" "all_stamped '$work/text'"
timed=$(fact "f['timed']")
check "timer_entry events = 3 x $timed (outer, inner, inner)" "[ \$(count timer_entry) -eq $((3 * timed)) ]"
check "timer_exit events = timer_entry events" "[ \$(count timer_exit) -eq \$(count timer_entry) ]"
check "inner timers: 2 x $timed" "[ \$(grep ' pel:timer_entry: ' $work/text | grep -c 'name = \"inner\"') -eq $((2 * timed)) ]"
# nesting, per thread: every exit closes the innermost open timer of its thread
check "timers nest per thread" "/usr/bin/python3 - '$work/text' <<'PY'
import re, sys
stacks = {}
for line in open(sys.argv[1]):
    m = re.search(r'pel:timer_(entry|exit):.*vtid = (\d+).*id = (0x[0-9A-Fa-f]+)', line)
    if not m:
        continue
    kind, tid, tid_id = m.group(1), m.group(2), m.group(3)
    st = stacks.setdefault(tid, [])
    if kind == 'entry':
        st.append(tid_id)
    elif not st or st.pop() != tid_id:
        sys.exit(1)
sys.exit(0 if all(not s for s in stacks.values()) else 1)
PY"
if [ -x "$(dirname "$0")/../../tools/pel-trace" ] && /usr/bin/python3 -c 'import bt2' 2>/dev/null; then
	"$(dirname "$0")/../../tools/pel-trace" "$work/trace" --json > "$work/pt.json" 2> "$work/pt.err"
	check "pel-trace --json runs" "[ \$? -eq 0 ] && [ -s $work/pt.json ]"
	for w in $(seq 0 $((nw - 1))); do
		want=$(fact "f['tasks_run'][$w]")
		check "pel-trace: worker $w tasks = $want" "/usr/bin/python3 -c \"import json; d=json.load(open('$work/pt.json')); import sys; sys.exit(0 if [x for x in d['workers'] if x['worker']==$w][0]['tasks']==$want else 1)\""
	done
	check "pel-trace: outer calls $timed, 2 subrs each; inner 2 x $timed; inclusive = exclusive + children" "/usr/bin/python3 - '$work/pt.json' $timed <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
t = {x['name']: x for x in d['timers']}
o, i = t['outer'], t['inner']
ok = o['calls'] == n and o['subrs'] == 2 * n and i['calls'] == 2 * n and i['subrs'] == 0
ok = ok and abs(o['inclusive_us'] - (o['exclusive_us'] + i['inclusive_us'])) < 1e-6 * max(1, o['inclusive_us'])
ok = ok and abs(i['inclusive_us'] - i['exclusive_us']) < 1e-9 + 1e-9 * i['inclusive_us']
sys.exit(0 if ok else 1)
PY"
else
	echo "note: tools/pel-trace not there yet: its checks are not run"
fi

# A session recording pel:dequeue alone, and a program that submits only in bursts (a full ring
# first): the bursts stamp too, so every dequeue carries its queue wait.
session2="$session-dq"
lttng create "$session2" --output="$work/trace2" >/dev/null || { echo "FAIL: lttng create"; exit 1; }
lttng enable-event -u 'pel:dequeue' -s "$session2" >/dev/null || { echo "FAIL: enable-event"; exit 1; }
run_tracked "$session2" "$prog" "$work/facts2.json" bursts || exit 1
lttng stop "$session2" >/dev/null
lttng destroy "$session2" >/dev/null
babeltrace2 "$work/trace2" > "$work/text2" 2> "$work/bt2.err" || { echo "FAIL: babeltrace2"; cat "$work/bt2.err"; exit 1; }
submitted=$(/usr/bin/python3 -c "import json; print(json.load(open('$work/facts2.json'))['submitted'])")
check "pel:dequeue alone, bursts only: $submitted dequeues, every one stamped" "all_stamped '$work/text2' $submitted"
exit $fail
