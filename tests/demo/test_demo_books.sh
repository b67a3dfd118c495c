#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/demo/test_demo_books.sh - the demo service end to end: each server (pel-feed, feed-pool)
# under pel-load at low load, then the books it kept against a sequential replay of the feed
# that was sent.
#
#	test_demo_books.sh PEL_FEED FEED_POOL PEL_LOAD FEED_REPLAY
#
# For each server: start it on the last CPU (pel-feed parks when idle: never a busy loop beside
# the generator; once more with 8 I/O operations a worker against bursts of 64, so that replies
# must wait for room and be sent again), send 2.5 s of order-book updates at 2000/s over 4 source sockets with
# instruments 0..199 while the server knows 0..149 (the rest are refused), after three datagrams
# that are not requests. Then:
#   - pel-load: sent = answered + late + rejected, nothing lost, some refused;
#   - the server: received = answered + late + rejected + malformed + dropped, received = what
#     the record holds + the 3 bad datagrams, malformed 3, dropped 0, and its answered/late/
#     rejected equal the record's statuses;
#   - its books equal feed-replay's of the recorded feed (same instruments, fan-out and models):
#     every level, sequence, gap, late and score sum.
set -u

FEED=${1:?usage: test_demo_books.sh PEL_FEED FEED_POOL PEL_LOAD FEED_REPLAY}
POOL=${2:?}
LOAD=${3:?}
REPLAY=${4:?}
tmp=$(mktemp -d) || exit 1
server=
cleanup()
{
	[ -n "$server" ] && kill -9 "$server" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	for f in srv out; do
		[ -f "$tmp/$f" ] && { echo "--- $f"; cat "$tmp/$f"; }
	done
	exit 1
}

last_cpu=$(($(nproc) - 1))
common=(--instruments 150 --fanout-every 7 --models 5 --rounds 3)

# Start "$@" (a server on port 0); sets server and port.
start()
{
	: >"$tmp/srv"	# here: the child truncates it only once it runs (the last server's port)
	"$@" --port 0 --books "$tmp/books" --stats "$tmp/stats" >"$tmp/srv" 2>&1 &
	server=$!
	port=
	for _ in $(seq 200); do
		port=$(sed -n 's/^.*: serving UDP port \([0-9]*\) on .*$/\1/p' "$tmp/srv")
		[ -n "$port" ] && return
		kill -0 "$server" 2>/dev/null || fail "$1 died: $(cat "$tmp/srv")"
		sleep 0.05
	done
	fail "$1 printed no ready line"
}

check()
{
	local name=$1 rc
	shift
	start "$@" "${common[@]}"
	# three datagrams that are not requests, first: the run that follows gives the server its
	# 2.5 s to take them (loopback queues them on the socket before sendto() returns)
	printf 'garbage' >"/dev/udp/127.0.0.1/$port" || fail "cannot send to /dev/udp"
	head -c 56 /dev/zero >"/dev/udp/127.0.0.1/$port"
	printf '\x50\x46\x01\x01%051d' 0 >"/dev/udp/127.0.0.1/$port"	# one byte short
	# shellcheck disable=SC2086
	"$LOAD" --port "$port" --mode feed --rate 2000 --seconds 2 --warmup 0.5 --sockets 4 \
		--instruments 200 --record "$tmp/rec" --json "$tmp/json" ${LOAD_ARGS:-} \
		>"$tmp/out" 2>&1 ||
		fail "$name: pel-load exit $?"
	kill -TERM "$server"
	wait "$server"
	rc=$?
	server=
	[ "$rc" -eq 0 ] || fail "$name: exit $rc on SIGTERM"
	/usr/bin/python3 - "$name" "$tmp/json" "$tmp/stats" "$tmp/rec" "${WANT_RETRIES:-0}" \
		<<'PY' || fail "$name: counts"
import json, sys
name, load, stats, rec, want_retries = sys.argv[1:]
m = {x["name"]: x["value"] for x in json.load(open(load))["metrics"]}
s = json.load(open(stats))
data = open(rec, "rb").read()
assert len(data) % 64 == 0 and data, len(data)
st = [data[i + 56] for i in range(0, len(data), 64)]
n = {k: st.count(k) for k in (0, 1, 2, 255)}
assert m["sent"] == m["answered"] + m["late_dropped"] + m["rejected"] + m["lost"], m
assert m["lost"] == 0 and n[255] == 0, (m, n)
assert m["rejected"] > 0 and m["answered"] > 0, m
assert s["received"] == s["answered"] + s["late"] + s["rejected"] + s["malformed"] + s["dropped"], s
assert s["received"] == len(st) + 3, (s, len(st))
assert s["malformed"] == 3 and s["dropped"] == 0, s
assert (s["answered"], s["late"], s["rejected"]) == (n[0], n[1], n[2]), (s, n)
assert s["fanouts"] > 0, s
if want_retries == "1":	# replies that found no room were sent later, none lost
	assert s["send_retries"] > 0 and s["send_errors"] == 0, s
print(f"{name}: {len(st)} sent, answered {n[0]} late {n[1]} refused {n[2]}, "
      f"gaps {s['gaps']} stale {s['stale']} fan-outs {s['fanouts']}")
PY
	"$REPLAY" "${common[@]}" --out "$tmp/replay" "$tmp/rec" || fail "$name: feed-replay exit $?"
	[ -s "$tmp/books" ] || fail "$name: no books written"
	diff "$tmp/replay" "$tmp/books" >"$tmp/diff" ||
		fail "$name: books differ from the replay: $(head -20 "$tmp/diff")"
	echo "$name: $(wc -l <"$tmp/books") books equal to the replay"
}

check pel-feed "$FEED" --cpus "$last_cpu" --idle park
check feed-pool "$POOL" --cpus "$last_cpu"
check "pel-feed (dedicated I/O)" "$FEED" --cpus "$last_cpu" --idle park --io dedicated
# 8 operations in flight and bursts of 64 updates: replies find no room and wait their turn
LOAD_ARGS="--arrivals bursty:64" WANT_RETRIES=1 \
	check "pel-feed (8 I/O operations)" "$FEED" --cpus "$last_cpu" --idle park --max-ops 8
exit 0
