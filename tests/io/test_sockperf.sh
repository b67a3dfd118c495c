#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/io/test_sockperf.sh - examples/udp-echo and examples/tcp-echo against sockperf 3.7.
#
#	test_sockperf.sh UDP_ECHO [TCP_ECHO]
#
# The server runs on the last CPU, sockperf on CPU 0. sockperf exits 0 even when nothing was
# answered, so its summary is read: the run went to its timer, a non-zero number of observations,
# and 0 dropped, 0 duplicated, 0 out-of-order. Malformed datagrams (5 bytes; a length field that
# lies) and a TCP peer sending garbage are counted or cut off without harming sockperf's run.
# Last, SIGTERM: the server prints its summary line and exits 0. Exit 77 (skip) without sockperf.
set -u

UDP_ECHO=${1:?usage: test_sockperf.sh UDP_ECHO [TCP_ECHO]}
TCP_ECHO=${2:-}
T=3		# seconds of each ping-pong run

# Bad command lines: usage and exit 2, before anything starts (no sockperf needed).
for bin in "$UDP_ECHO" ${TCP_ECHO:+"$TCP_ECHO"}; do
	for args in "--port 1 --io shared" "--port 1 --bogus" "--cpus 0" "--port 70000" \
		"--port 1 --idle fast" "--port 1 --steer rr" "--port 1 --io dedicated --steer up" \
		"--port 1 --io dedicated --io-cpu -1"; do
		# shellcheck disable=SC2086
		"$bin" $args >/dev/null 2>&1
		rc=$?
		if [ "$rc" -ne 2 ]; then
			echo "FAIL: $bin $args: exit $rc, expected 2 (usage)"
			exit 1
		fi
	done
	"$bin" --port 1 --steer rr 2>&1 | grep -q 'go with --io dedicated' ||
		{ echo "FAIL: $bin --steer without --io dedicated does not say why"; exit 1; }
done

if ! command -v sockperf >/dev/null; then
	echo "skip: sockperf is not installed (apt-get install sockperf; tools/deps.sh lists it)"
	exit 77
fi
if ! command -v python3 >/dev/null; then
	echo "skip: python3 is needed to send malformed datagrams and TCP garbage"
	exit 77
fi

ncpu=$(nproc)
SRV_CPU=$((ncpu - 1))
CLI_CPU=0	# with one CPU both share it: the server's worker backs off and parks when idle
tmp=$(mktemp -d /tmp/pel-sockperf.XXXXXX)
pids=()
failed=0

cleanup()
{
	local p

	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	failed=1
}

# start_server NAME BINARY: runs it on port 0, sets PORT and SRV_PID from its ready line.
start_server()
{
	local name=$1 bin=$2 i

	# emptied here, not by the child's redirection: read before the child has run, the file
	# would still hold the previous server's ready line (its port, that server gone)
	: >"$tmp/$name.out"
	"$bin" --port 0 --cpus "$SRV_CPU" --idle backoff "${MODE[@]}" >"$tmp/$name.out" \
		2>"$tmp/$name.err" &
	SRV_PID=$!
	pids+=("$SRV_PID")
	for ((i = 0; i < 100; i++)); do
		PORT=$(sed -n 's/.* port \([0-9]*\) on .*/\1/p' "$tmp/$name.out" 2>/dev/null)
		[ -n "$PORT" ] && return 0
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "FAIL: $name did not say it was ready:"
	cat "$tmp/$name.out" "$tmp/$name.err"
	exit 1
}

# run_sockperf LABEL OUT ARGS...: sockperf on the client CPU, output without colour codes.
run_sockperf()
{
	local label=$1 out=$2

	shift 2
	echo "== $label: sockperf $*"
	taskset -c "$CLI_CPU" timeout 60 sockperf "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$out"
	grep -E 'Total Run|Valid Duration|avg-latency|dropped messages|observations|percentile (50|99)\.000' \
		"$out" | sed 's/^/   /'
}

# check_sockperf LABEL OUT SECONDS [no-drops]: the summary says the run was whole and clean.
check_sockperf()
{
	local label=$1 out=$2 secs=$3 drops=${4:-no-drops} run obs line

	grep -q 'Test end (interrupted by timer)' "$out" ||
		fail "$label: sockperf did not run to its timer"
	run=$(sed -n 's/.*\[Total Run\] RunTime=\([0-9.]*\) sec.*/\1/p' "$out")
	if [ -z "$run" ] || ! awk -v r="$run" -v t="$secs" 'BEGIN { exit !(r >= t - 0.05) }'; then
		fail "$label: total run time '$run' s, expected at least $secs s"
	fi
	obs=$(sed -n 's/.*Total \([0-9]*\) observations.*/\1/p' "$out")
	[ -n "$obs" ] && [ "$obs" -gt 0 ] || fail "$label: no observations (nothing was answered)"
	line=$(grep 'dropped messages' "$out")
	[ -n "$line" ] || fail "$label: no dropped/duplicated/out-of-order line"
	echo "$line" | grep -q 'duplicated messages = 0;' || fail "$label: duplicates: $line"
	if [ "$drops" = no-drops ]; then
		echo "$line" | grep -q 'dropped messages = 0;' || fail "$label: drops: $line"
		echo "$line" | grep -q 'out-of-order messages = 0' || fail "$label: out of order: $line"
	fi
}

# stop_server NAME: SIGTERM, exit 0 within 10 s, prints SUMMARY (the summary line).
stop_server()
{
	local name=$1 i rc

	kill -TERM "$SRV_PID"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$SRV_PID" 2>/dev/null; then
		fail "$name: still running 10 s after SIGTERM"
		kill -KILL "$SRV_PID"
	fi
	wait "$SRV_PID"
	rc=$?
	[ "$rc" -eq 0 ] || fail "$name: exit status $rc after SIGTERM"
	SUMMARY=$(grep "^$name: messages" "$tmp/$name.out")
	echo "== $name summary: $SUMMARY"
	[ -n "$SUMMARY" ] || { fail "$name: no summary line"; cat "$tmp/$name.out" "$tmp/$name.err"; }
	echo "$SUMMARY" | grep -q 'inflight 0$' || fail "$name: operations left in flight: $SUMMARY"
	echo "$SUMMARY" | grep -q ' errors 0 ' || fail "$name: errors: $SUMMARY"
	if grep -Eiq 'error|leak|runtime error' "$tmp/$name.err"; then
		fail "$name: its stderr has errors:"
		cat "$tmp/$name.err"
	fi
}

# field LINE NAME: the number after NAME in a summary line.
field()
{
	echo "$1" | sed -n "s/.*[: ]$2 \([0-9]*\).*/\1/p"
}

# Everything below once per I/O mode: each worker owns a ring; then the dedicated I/O thread
# (pinned to the server's CPU: the client's stays free) owns the one ring.
for mode in per-worker dedicated; do
MODE=(--io "$mode")
[ "$mode" = dedicated ] && MODE+=(--io-cpu "$SRV_CPU")
echo "==== --io $mode"

# ---- udp-echo ----
start_server udp-echo "$UDP_ECHO"
# two malformed datagrams first: 5 bytes, and 64 bytes whose header says 100
python3 - "$PORT" <<'PY' || fail "could not send the malformed datagrams"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a = ("127.0.0.1", int(sys.argv[1]))
s.sendto(b"hello", a)
s.sendto(struct.pack(">QHI", 1, 3, 100) + bytes(50), a)
PY
run_sockperf "udp ping-pong" "$tmp/udp-pp.txt" ping-pong -i 127.0.0.1 -p "$PORT" -t "$T" \
	--msg-size 64
check_sockperf "udp ping-pong" "$tmp/udp-pp.txt" "$T"
# under load the kernel may drop datagrams of a busy VM; an answer must never come twice
run_sockperf "udp under-load" "$tmp/udp-ul.txt" under-load -i 127.0.0.1 -p "$PORT" -t 2 \
	--msg-size 64 --mps 10000
check_sockperf "udp under-load" "$tmp/udp-ul.txt" 2 drops-allowed
stop_server udp-echo
[ "$(field "$SUMMARY" malformed)" = 2 ] || fail "udp-echo: malformed should be 2: $SUMMARY"
[ "$(field "$SUMMARY" replies)" -gt 0 ] 2>/dev/null || fail "udp-echo: no replies: $SUMMARY"

# ---- tcp-echo ----
if [ -n "$TCP_ECHO" ]; then
	start_server tcp-echo "$TCP_ECHO"
	# a peer sending garbage (a length of 5) loses its connection: the server closes it
	python3 - "$PORT" <<'PY' || fail "tcp-echo kept a connection that sent garbage"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(struct.pack(">QHI", 1, 3, 5) + bytes(10))
sys.exit(0 if s.recv(100) == b"" else 1)
PY
	# a peer that vanishes in the middle of a message
	python3 - "$PORT" <<'PY' || fail "could not connect to tcp-echo"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(struct.pack(">QHI", 1, 3, 64) + bytes(10))
s.close()
PY
	run_sockperf "tcp ping-pong" "$tmp/tcp-pp.txt" ping-pong --tcp -i 127.0.0.1 -p "$PORT" \
		-t "$T" --msg-size 64
	check_sockperf "tcp ping-pong" "$tmp/tcp-pp.txt" "$T"
	run_sockperf "tcp under-load" "$tmp/tcp-ul.txt" under-load --tcp -i 127.0.0.1 -p "$PORT" \
		-t 2 --msg-size 64 --mps 10000
	check_sockperf "tcp under-load" "$tmp/tcp-ul.txt" 2
	stop_server tcp-echo
	# the garbage connection and the one that went away in the middle of a message
	[ "$(field "$SUMMARY" malformed)" = 2 ] ||
		fail "tcp-echo: malformed should be 2: $SUMMARY"
	[ "$(field "$SUMMARY" connections)" = 4 ] && [ "$(field "$SUMMARY" closed)" = 4 ] ||
		fail "tcp-echo: expected 4 connections, all closed: $SUMMARY"
fi
done

if [ "$failed" -ne 0 ]; then
	echo "tests/io/test_sockperf.sh: FAILED"
	exit 1
fi
echo "tests/io/test_sockperf.sh: passed"
