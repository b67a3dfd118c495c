#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/demo/test_feed_syscalls.sh - pel-feed's worker makes no syscall of its own: under load
# (book updates with fan-outs, real-time tasks, replies), every syscall its thread makes is the
# ring's io_uring_enter (the receives and the replies of a pass together). strace follows the
# worker thread alone while pel-load sends 1.5 s of updates at 2000/s.
#
#	test_feed_syscalls.sh PEL_FEED PEL_LOAD
#
# Exit 77 without strace or ptrace (a container that forbids it).
set -u

FEED=${1:?usage: test_feed_syscalls.sh PEL_FEED PEL_LOAD}
LOAD=${2:?}
command -v strace >/dev/null || { echo "skip: no strace"; exit 77; }
tmp=$(mktemp -d) || exit 1
server=
tracer=
cleanup()
{
	[ -n "$tracer" ] && kill "$tracer" 2>/dev/null
	[ -n "$server" ] && kill -9 "$server" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	for f in srv out strace.err; do
		[ -s "$tmp/$f" ] && { echo "--- $f"; head -40 "$tmp/$f"; }
	done
	exit 1
}

last_cpu=$(($(nproc) - 1))
load_cpu=0
[ "$last_cpu" -gt 0 ] || { echo "skip: one CPU (the worker spins)"; exit 77; }

# one spinning worker on the last CPU, the generator on CPU 0: never two busy loops on one CPU
"$FEED" --port 0 --cpus "$last_cpu" --idle spin --instruments 100 --fanout-every 5 \
	--stats "$tmp/stats" >"$tmp/srv" 2>&1 &
server=$!
port=
for _ in $(seq 200); do
	port=$(sed -n 's/^pel-feed: serving UDP port \([0-9]*\) on .*$/\1/p' "$tmp/srv")
	[ -n "$port" ] && break
	kill -0 "$server" 2>/dev/null || fail "pel-feed died"
	sleep 0.05
done
[ -n "$port" ] || fail "pel-feed printed no ready line"
worker=
for t in /proc/"$server"/task/*; do
	[ "$(cat "$t/comm" 2>/dev/null)" = pel-w0 ] && worker=${t##*/}
done
[ -n "$worker" ] || fail "no thread named pel-w0 in pel-feed"

# warm up first (books allocated, rings and pools touched), then trace the worker thread only
"$LOAD" --port "$port" --mode feed --rate 2000 --seconds 0.3 --warmup 0 --instruments 100 \
	--cpu "$load_cpu" >/dev/null 2>&1 || fail "warm-up: pel-load exit $?"
strace -qq -p "$worker" -o "$tmp/strace" 2>"$tmp/strace.err" &
tracer=$!
for _ in $(seq 250); do	# attached: the worker thread names a tracer
	[ "$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$server/task/$worker/status")" != 0 ] &&
		break
	kill -0 "$tracer" 2>/dev/null || break
	sleep 0.02
done
if ! kill -0 "$tracer" 2>/dev/null; then
	grep -qi "operation not permitted" "$tmp/strace.err" &&
		{ echo "skip: ptrace not permitted here"; exit 77; }
	fail "strace did not attach"
fi
[ "$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$server/task/$worker/status")" != 0 ] ||
	fail "strace did not attach within 5 s"
"$LOAD" --port "$port" --mode feed --rate 2000 --seconds 1.5 --warmup 0 --instruments 100 \
	--cpu "$load_cpu" --json "$tmp/json" >"$tmp/out" 2>&1 || fail "pel-load exit $?"
kill "$tracer"
wait "$tracer" 2>/dev/null
tracer=
kill -TERM "$server"
wait "$server" || fail "pel-feed exit $? on SIGTERM"
server=

answered=$(/usr/bin/python3 -c 'import json,sys; m={x["name"]: x["value"] for x in json.load(open(sys.argv[1]))["metrics"]}; print(int(m["answered"] + m["late_dropped"]))' "$tmp/json") ||
	fail "pel-load JSON"
[ "$answered" -gt 2000 ] || fail "only $answered replies while traced"
# every line is a syscall: name(args) = result, or an unfinished/resumed pair of one
calls=$(grep -cE '^(<\.\.\. )?[a-z_0-9]+' "$tmp/strace")
others=$(grep -vE '^(<\.\.\. )?io_uring_enter[ (]|^\+\+\+|^---' "$tmp/strace" | head -20)
[ -z "$others" ] || fail "the worker made other syscalls than io_uring_enter: $others"
[ "$calls" -gt 0 ] || fail "no syscall traced at all (was strace attached?)"
echo "ok: $answered replies while traced; the worker's $calls syscalls are all io_uring_enter" \
	"($(awk "BEGIN { printf \"%.2f\", $calls / $answered }") per reply)"
