#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/load/test_pel_load.sh - pel-load against pel-spin-echo.
#
#	test_pel_load.sh PEL_LOAD PEL_SPIN_ECHO
#
# Bad input to either: exit 2 and a message, never a crash. Then pel-spin-echo on a free port and
# pel-load against it for 2 s at 2000 msgs/s, spin fixed:1us, then in feed mode: every message
# sent is answered (sent = answered + late + rejected + lost, lost 0 at this rate), latency p50
# under 1 ms, the JSON parses and holds the same counts as the table. The spin run also checks
# the kernel RX stamps (none missing on loopback), the ideal FCFS (its metrics and ratios in the
# JSON, ideal p50 <= measured p50: nothing beats zero overhead), --record (sent_total records of
# 64 bytes, requests that decode, ids each once, statuses adding up to the counts) and --cdf
# (fractions rising to exactly 1 on rising latencies). Short runs of the issue's other service
# specs, and a feed run with --ideal-service. A garbage and a truncated datagram sent to
# pel-spin-echo are counted as malformed and not answered.
set -u

LOAD=${1:?usage: test_pel_load.sh PEL_LOAD PEL_SPIN_ECHO [CLOCK_SHIFT_SO]}
ECHO=${2:?usage: test_pel_load.sh PEL_LOAD PEL_SPIN_ECHO [CLOCK_SHIFT_SO]}
SHIFT_SO=${3:-}
tmp=$(mktemp -d) || exit 1
server=
cleanup()
{
	[ -n "$server" ] && kill "$server" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	[ -f "$tmp/out" ] && cat "$tmp/out"
	exit 1
}

while IFS= read -r args; do
	# shellcheck disable=SC2086
	"$LOAD" $args >"$tmp/bad" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "pel-load $args: exit $rc, expected 2"
	grep -q '^usage: pel-load' "$tmp/err" || fail "pel-load $args: no usage on stderr"
	grep -q '^pel-load: ' "$tmp/err" || fail "pel-load $args: no message on stderr"
	[ -s "$tmp/bad" ] && fail "pel-load $args: wrote to stdout"
done <<'ARGS'
--rate 100
--port 0
--port 65536
--port x
--port 1k
--port 9 --rate 0
--port 9 --rate -5
--port 9 --rate abc
--port 9 --arrivals uniform
--port 9 --arrivals bursty:0
--port 9 --service lognormal:1us
--port 9 --service exp:10
--port 9 --mode feed --service fixed:1us
--port 9 --mode both
--port 9 --seconds 0
--port 9 --warmup -1
--port 9 --sockets 0
--port 9 --sockets 65
--port 9 --instruments 0
--port 9 --host localhost.invalid
--port 9 --bogus
--port 9 extra
--port 9 --rate
--port 9 --rx-cpu x
--port 9 --rx-cpu -1
--port 9 --ideal-servers 65
--port 9 --ideal-servers x
--port 9 --ideal-service exp:10us
--port 9 --mode feed --ideal-service bogus:1us
--port 9 --ideal-servers 0 --cdf-ideal /dev/null
--port 9 --mode feed --cdf-ideal /dev/null
--port 9 --record
--port 9 --cdf
ARGS
"$ECHO" --port 70000 >/dev/null 2>&1
[ $? -eq 2 ] || fail "pel-spin-echo --port 70000: expected exit 2"

"$ECHO" --port 0 >"$tmp/echo" 2>&1 &
server=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/^pel-spin-echo: port \([0-9]*\)$/\1/p' "$tmp/echo")
	[ -n "$port" ] && break
	kill -0 "$server" 2>/dev/null || fail "pel-spin-echo died: $(cat "$tmp/echo")"
	sleep 0.05
done
[ -n "$port" ] || fail "pel-spin-echo printed no port"

# The value after NAME on the line starting with ROW of $tmp/out.
field()
{
	awk -v row="$1" -v name="$2" 'index($0, row) == 1 {
		for (i = 1; i < NF; i++) if ($i == name) { print $(i + 1); exit } }' "$tmp/out"
}

check_run()
{
	local what=$1; shift
	"$LOAD" --port "$port" --rate 2000 --seconds 2 --warmup 0.3 \
		--json "$tmp/json" "$@" >"$tmp/out" 2>&1 || fail "$what: pel-load exit $?"
	sent=$(field counts sent)
	answered=$(field counts answered)
	late=$(field counts late)
	rejected=$(field counts rejected)
	lost=$(field counts lost)
	p50=$(field 'latency ns' p50)
	[ -n "$sent" ] && [ -n "$p50" ] || fail "$what: no counts or latency in the output"
	# 2 s at 2000/s, Poisson: 4000 +- 63 (1 sd); outside 3600 .. 4400 the trace is wrong
	[ "$sent" -ge 3600 ] && [ "$sent" -le 4400 ] || fail "$what: sent $sent, expected ~4000"
	[ $((answered + late + rejected + lost)) -eq "$sent" ] ||
		fail "$what: sent $sent != answered $answered + late $late + rejected $rejected" \
		     "+ lost $lost"
	[ "$lost" -eq 0 ] || fail "$what: $lost lost at 2000/s"
	[ "$answered" -eq "$sent" ] || fail "$what: answered $answered of $sent"
	[ "$p50" -gt 0 ] && [ "$p50" -lt 1000000 ] ||
		fail "$what: latency p50 $p50 ns, not in (0, 1 ms)"
	/usr/bin/python3 - "$tmp/json" "$sent" "$answered" "$p50" <<'PY' || fail "$what: JSON"
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["name"]: x["value"] for x in d["metrics"]}
assert d["bench"] == "load" and d["cpu"], d
assert m["sent"] == int(sys.argv[2]), (m["sent"], sys.argv[2])
assert m["answered"] == int(sys.argv[3])
assert m["latency_p50"] == int(sys.argv[4])
for q in ("p50", "p90", "p99", "p99.9", "p99.99"):
	assert m["latency_" + q] <= m["latency_max"], q
assert m["achieved_rate"] > 1000, m["achieved_rate"]
PY
}

check_run "spin fixed:1us" --mode spin --service fixed:1us --sockets 2 --ideal-servers 1 \
	--record "$tmp/rec" --cdf "$tmp/cdf" --cdf-ideal "$tmp/cdfi"
spun=$sent
missing=$(field 'rx stamps' missing)
[ "$missing" = 0 ] || fail "rx stamps: $missing replies without a kernel stamp on loopback"
ip50=$(field 'ideal fcfs' p50)
[ -n "$ip50" ] && [ "$ip50" -gt 0 ] && [ "$ip50" -le "$p50" ] ||
	fail "ideal fcfs p50 '$ip50' not in (0, measured p50 $p50]"
rec_total=$(field record records)
/usr/bin/python3 - "$tmp" "$sent" "$answered" "$rec_total" <<'PY' || fail "spin: record, cdf or ideal"
import json, struct, sys
tmp, sent, answered, rec_total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
d = json.load(open(tmp + "/json"))
m = {x["name"]: x["value"] for x in d["metrics"]}
r = {x["name"]: x["value"] for x in d["ratios"]}
for q in ("p50", "p90", "p99", "p99.9", "max"):
	assert m["ideal_latency_" + q] > 0, q
assert m["ideal_latency_p50"] <= m["latency_p50"], (m["ideal_latency_p50"], m["latency_p50"])
assert m["ideal_latency_p50"] <= m["ideal_latency_p99"] <= m["ideal_latency_max"]
assert m["rx_stamp_missing"] == 0
assert 0 <= m["rx_stamp_to_user_p50"] <= m["rx_stamp_to_user_p99"]
assert abs(r["p50_vs_ideal_fcfs"] - m["latency_p50"] / m["ideal_latency_p50"]) < 1e-6, r
assert abs(r["p99_vs_ideal_fcfs"] - m["latency_p99"] / m["ideal_latency_p99"]) < 1e-6, r
# the record: sent_total (warm-up included) records of 64 bytes
raw = open(tmp + "/rec", "rb").read()
assert m["sent_total"] == rec_total and len(raw) == 64 * rec_total, (len(raw), rec_total)
assert rec_total >= sent
status = {}
ids = set()
measured = 0
sends = []
for i in range(rec_total):
	rec = raw[64 * i:64 * i + 64]
	magic, ver, kind = struct.unpack_from("<HBB", rec, 0)
	assert (magic, ver, kind) == (0x4650, 1, 2), (i, magic, ver, kind)
	send_ns, req_id, svc = struct.unpack_from("<QQQ", rec, 32)
	assert svc == 1000 and req_id not in ids and rec[57:] == bytes(7), i
	ids.add(req_id)
	sends.append(send_ns)
	status[rec[56]] = status.get(rec[56], 0) + 1
assert ids == set(range(rec_total)), "ids are not 0 .. sent_total - 1"
# everything was answered at 2000/s: every record says so, warm-up included
assert set(status) == {0} and status[0] == rec_total, status
# the last `sent` records (by planned time) are the measured ones
assert sum(1 for t in sends if t >= sorted(sends)[rec_total - sent]) == sent
def cdf(path):
	pts = [tuple(map(float, l.split())) for l in open(path) if not l.startswith("#")]
	assert pts, path
	for (x0, f0), (x1, f1) in zip(pts, pts[1:]):
		assert x1 > x0 and f1 > f0, (path, x0, f0, x1, f1)
	assert pts[-1][1] == 1.0 and 0 < pts[0][1] <= 1, (path, pts[0], pts[-1])
	return pts
c = cdf(tmp + "/cdf")
assert c[-1][0] == m["latency_max"], (c[-1], m["latency_max"])
ci = cdf(tmp + "/cdfi")
assert ci[-1][0] == m["ideal_latency_max"], (ci[-1], m["ideal_latency_max"])
PY
check_run "feed" --mode feed --instruments 50 --arrivals fixed
grep -q '^ideal fcfs' "$tmp/out" && fail "feed: an ideal FCFS without --ideal-service"
fed=$sent

# the issue's service specs, 0.5 s each (all light at 2000/s: a 500 us spin in 0.5% of them)
for svc in exp:10us bimodal:90:5us:55us bimodal:99.5:0.5us:500us; do
	"$LOAD" --port "$port" --rate 2000 --seconds 0.5 --warmup 0.1 --service "$svc" \
		--ideal-servers 2 >"$tmp/out" 2>&1 || fail "--service $svc: pel-load exit $?"
	grep -q "service $svc " "$tmp/out" || fail "--service $svc: not in the parameters"
	[ "$(field counts lost)" -eq 0 ] || fail "--service $svc: replies lost"
	grep -q 'servers 2$' "$tmp/out" || fail "--service $svc: no ideal FCFS on 2 servers"
done
"$LOAD" --port "$port" --rate 2000 --seconds 0.5 --warmup 0.1 --mode feed \
	--ideal-service fixed:2us >"$tmp/out" 2>&1 || fail "feed --ideal-service: exit $?"
ip50=$(field 'ideal fcfs' p50)
[ "$ip50" = 2000 ] || fail "feed --ideal-service fixed:2us: ideal p50 '$ip50', expected 2000"
sent=$fed

# A wall clock stepped by +-1 s (CLOCK_REALTIME shifted in pel-load alone): every reply's kernel
# stamp falls outside [planned send time, receive time] and is refused, counted; latency comes
# from the user-space time and stays sane (before: +1 s gave latency 0, -1 s counted as stamped).
if [ -n "$SHIFT_SO" ]; then
	for shift in 1000000000 -1000000000; do
		LD_PRELOAD=$SHIFT_SO PEL_TEST_REALTIME_SHIFT_NS=$shift "$LOAD" --port "$port" \
			--rate 2000 --seconds 0.5 --warmup 0.1 --json "$tmp/json" >"$tmp/out" 2>&1 ||
			fail "clock step $shift: pel-load exit $?"
		/usr/bin/python3 -c 'import json, sys
m = {x["name"]: x["value"] for x in json.load(open(sys.argv[1]))["metrics"]}
assert m["answered"] > 500 and m["rx_stamp_rejected"] == m["answered"], m
assert m["rx_stamp_missing"] == 0 and 0 < m["latency_p50"] < 1e6, m' "$tmp/json" ||
			fail "clock step $shift: stamps not refused: $(grep -E 'rx stamps|latency' "$tmp/out")"
	done
fi

# not a request: too short, the right length with a wrong magic, one byte short of a request
printf 'garbage' >"/dev/udp/127.0.0.1/$port" || fail "cannot send to /dev/udp"
head -c 56 /dev/zero >"/dev/udp/127.0.0.1/$port"
printf '\x50\x46\x01\x02%051d' 0 >"/dev/udp/127.0.0.1/$port"

kill -TERM "$server"
wait "$server"
rc=$?
server=
[ "$rc" -eq 0 ] || fail "pel-spin-echo exit $rc on SIGTERM"
line=$(grep '^pel-spin-echo: recv' "$tmp/echo") || fail "pel-spin-echo: no summary"
set -- $line
[ "$6" = spin ] && [ "${10}" = malformed ] || fail "summary layout: $line"
[ "${11}" -eq 3 ] || fail "pel-spin-echo: malformed ${11}, expected 3: $line"
[ "$3" -eq $(($5 + 3)) ] || fail "pel-spin-echo: received $3 != answered $5 + 3 malformed"
# warm-up messages are answered too, so at least the measured ones
[ "$7" -ge "$spun" ] || fail "pel-spin-echo: spin $7 < pel-load's $spun"

# ---- replies that are not answers, no server, a bursty trace ----

# A server that answers each request and also forges a reply for an id 1500 further on (one
# never sent, or sent later with another planned time), and one of each request's status 1.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -u - >"$tmp/fake" 2>&1 <<'FAKE' &
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", 0))
print("fake: port %d" % s.getsockname()[1])
while True:
	b, a = s.recvfrom(256)
	if len(b) != 56:
		continue
	send_ns, rid = struct.unpack_from("<QQ", b, 32)
	rep = lambda i: struct.pack("<HBBB3xQQ", 0x4650, 1, 3, 0, i, send_ns)
	s.sendto(rep(rid), a)
	s.sendto(rep(rid + 1500), a)
FAKE
server=$!
fport=
for _ in $(seq 100); do
	fport=$(sed -n 's/^fake: port \([0-9]*\)$/\1/p' "$tmp/fake")
	[ -n "$fport" ] && break
	sleep 0.05
done
[ -n "$fport" ] || fail "the forging server did not start: $(cat "$tmp/fake")"
"$LOAD" --port "$fport" --rate 1000 --seconds 1 --warmup 0 --timeout 0.5 --json "$tmp/json" \
	>"$tmp/out" 2>&1 || fail "forged replies: pel-load exit $?"
kill "$server"
wait "$server" 2>/dev/null
server=
"$PY" - "$tmp/json" <<'PY' || fail "forged replies counted as answers: $(grep counts "$tmp/out")"
import json, sys
m = {x["name"]: x["value"] for x in json.load(open(sys.argv[1]))["metrics"]}
assert m["answered"] == m["sent"] and m["lost"] == 0, m	# each request's own reply
# every forged one is malformed: the id was never sent, or was sent with another planned time
assert m["malformed_replies"] == m["sent"], (m["malformed_replies"], m["sent"])
PY

# No server: nothing answered, no latency (null, not 0), a warning, exit 0.
"$LOAD" --port 9 --rate 1000 --seconds 0.3 --warmup 0 --timeout 0.1 --json "$tmp/json" \
	>"$tmp/out" 2>"$tmp/err" || fail "no server: pel-load exit $?"
grep -q '^pel-load: warning: no reply' "$tmp/err" || fail "no server: no warning"
grep -q '^latency ns   none' "$tmp/out" || fail "no server: latency line $(grep latency "$tmp/out")"
"$PY" -c 'import json, sys
m = {x["name"]: x["value"] for x in json.load(open(sys.argv[1]))["metrics"]}
assert m["answered"] == 0 and m["latency_p50"] is None and m["latency_max"] is None, m
assert m["lost"] == m["sent"] > 0, m' "$tmp/json" || fail "no server: JSON"

# A bursty trace is sent whole: its count is not bounded by a Poisson estimate (seed 2, bursts
# of 10000, was cut at 13024 of its ~26700 messages).
"$LOAD" --port 9 --rate 10000 --arrivals bursty:10000 --seconds 1 --warmup 0 --seed 2 \
	--timeout 0 --record "$tmp/rec" >"$tmp/out" 2>/dev/null || fail "bursty: pel-load exit $?"
"$PY" - "$tmp/rec" <<'PY' || fail "bursty: the trace was cut short"
import struct, sys
d = open(sys.argv[1], "rb").read()
assert len(d) // 64 > 20000, len(d) // 64
PY
echo "ok: pel-load sent/answered $spun spin and $sent feed, p50 $p50 ns; 3 malformed counted;" \
	"forged replies malformed, no server reported, a bursty trace sent whole"
