#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/demo/test_feed_pool.sh - feed-pool, the demo service's baseline, and feed-replay.
#
#	test_feed_pool.sh FEED_POOL FEED_REPLAY [PEL_FEED]
#
# With PEL_FEED, the scripted client, the bursts, the counters, the books and the replay run
# against pel-feed too (one worker that parks when idle): the two servers answer alike.
# Bad command lines to either: exit 2 and a message, nothing on stdout. Then feed-pool on a free
# port and one CPU, 3 threads, 10 instruments, and hand-made datagrams one at a time, each reply
# checked (status, id, echoed send time): book updates on two instruments with a gap, a stale
# one and two late ones, a refused instrument, a spin request, and five datagrams that are not
# requests (truncated, too long, cut by the receive buffer, garbage, a bad side) that get no
# reply. Then a burst of spin requests and SIGTERM straight after: every request the server took
# off the socket is answered before it exits. The --stats counts and the --books lines are
# checked, and feed-replay of what the client recorded (pel-load --record's format) must give
# the server's books to the byte. Last, --seconds and SIGINT stop the server with exit 0.
set -u

POOL=${1:?usage: test_feed_pool.sh FEED_POOL FEED_REPLAY [PEL_FEED]}
REPLAY=${2:?usage: test_feed_pool.sh FEED_POOL FEED_REPLAY [PEL_FEED]}
PEL_FEED=${3:-}
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
	for f in out err client; do
		[ -s "$tmp/$f" ] && { echo "--- $f"; cat "$tmp/$f"; }
	done
	exit 1
}

# Debian's python3 where there is one (a pyenv shim may stand first on PATH); stdlib only.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "skip: no python3 for the client"; exit 77; }
cpu=$("$PY" -c 'import os; print(min(os.sched_getaffinity(0)))') || fail "no CPU affinity"

# $1 program, $2 its name in messages, $3 usage expected (1/0); the arguments on stdin.
bad_lines()
{
	local prog=$1 name=$2 want_usage=$3 args rc
	while IFS= read -r args; do
		# shellcheck disable=SC2086
		"$prog" $args >"$tmp/bad" 2>"$tmp/err"
		rc=$?
		[ "$rc" -eq 2 ] || fail "$name $args: exit $rc, expected 2"
		grep -q "^$name: " "$tmp/err" || fail "$name $args: no message on stderr"
		[ "$want_usage" = 0 ] || grep -q "^usage: $name" "$tmp/err" ||
			fail "$name $args: no usage on stderr"
		[ -s "$tmp/bad" ] && fail "$name $args: wrote to stdout"
	done
}

bad_lines "$POOL" feed-pool 1 <<'ARGS'

--threads 2
--port 70000
--port -1
--port 0 --threads 0
--port 0 --threads 257
--port 0 --threads x
--port 0 --instruments 0
--port 0 --models 65
--port 0 --seconds 0
--port 0 --idle spin
--port 0 --io dedicated
--port 0 --rt-batch 8
--port 0 --max-ops 8
--port 0 --bogus
--port 0 extra
--port 0 --books
ARGS
bad_lines "$POOL" feed-pool 0 <<ARGS
--port 0 --cpus x
--port 0 --cpus 1-0
--port 0 --cpus 0,
--port 0 --cpus 0-
--port 0 --cpus 99999999999999999999
--port 0 --cpus 1023
--port 0 --cpus $cpu,1023
ARGS
if [ -n "$PEL_FEED" ]; then
	bad_lines "$PEL_FEED" pel-feed 1 <<'ARGS'

--port 0 --threads 2
--port 0 --idle poll
--port 0 --io uring
--port 0 --io-cpu 1
--port 0 --rt-priority 0
--port 0 --rt-priority 100
--port 0 --rt-batch 0
--port 0 --rt-batch 257
--port 0 --max-ops 3
--port 0 --deadline-us -1
--port 0 --fanout-every x
--port 0 --rounds 1001
--port 65536
ARGS
	bad_lines "$PEL_FEED" pel-feed 0 <<ARGS
--port 0 --cpus x
--port 0 --cpus 1023
--port 0 --cpus $cpu --io dedicated --io-cpu 1023
ARGS
fi
bad_lines "$REPLAY" feed-replay 1 <<'ARGS'

--models 0
--instruments 1000001
--fanout-every x
--bogus x
--out
a b
ARGS

# ---- the server, the client, the counters ----

# serve NAME READY COMMAND...: the server COMMAND (NAME in messages, READY the end of its ready
# line), the scripted client and the bursts, the counters, the books, the replay.
serve()
{
local name=$1 ready=$2 rc
shift 2
: >"$tmp/out"	# here: the child truncates it only once it runs (the last server's port)
# deadlines of 10 s: the bursts' requests (sent "from the future", which counts as their
# arrival) are never late, the ones planned at 1 ns always are
"$@" --port 0 --instruments 10 --fanout-every 2 --models 5 --rounds 3 --deadline-us 10000000 \
	--books "$tmp/books" --stats "$tmp/stats" >"$tmp/out" 2>"$tmp/err" &
server=$!
port=
for _ in $(seq 200); do
	port=$(sed -n "s/^$name: serving UDP port \([0-9]*\) on $ready\$/\1/p" "$tmp/out")
	[ -n "$port" ] && break
	kill -0 "$server" 2>/dev/null || fail "$name died before its ready line"
	sleep 0.05
done
[ -n "$port" ] || fail "$name printed no ready line"

"$PY" - "$port" "$server" "$tmp/rec" "$tmp/stats" "$name" >"$tmp/client" 2>&1 <<'PY' ||
import json, os, signal, socket, struct, sys, time

port, pid, rec_path, stats_path, name = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
					 sys.argv[4], sys.argv[5])
BOOK, SPIN, BID, ASK = 1, 2, 0, 1
ANSWERED, LATE, REFUSED, NONE = 0, 1, 2, 255
FUTURE = time.monotonic_ns() + 3600 * 10**9	# counts as its arrival: never late (10 s deadline); 1 always is
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(10)
rec = open(rec_path, "wb")
server = ("127.0.0.1", port)

def req(kind, inst, side, qty, price, seq, send_ns, req_id, service=0):
	return struct.pack("<HBBIB3xIqQQQQ", 0x4650, 1, kind, inst, side, qty, price, seq,
			   send_ns, req_id, service)

def reply():
	data = s.recv(100)
	assert len(data) == 24, data
	magic, ver, kind, status, rid, sns = struct.unpack("<HBBB3xQQ", data)
	assert (magic, ver, kind) == (0x4650, 1, 3), data
	return status, rid, sns

def call(status, kind, inst, side, qty, price, seq, req_id, send_ns=FUTURE, service=0):
	data = req(kind, inst, side, qty, price, seq, send_ns, req_id, service)
	s.sendto(data, server)
	got = reply()
	assert got == (status, req_id, send_ns), ("request", req_id, "reply", got)
	rec.write(data + bytes([status]) + bytes(7))

call(ANSWERED, BOOK, 1, BID, 10, 1000000, 1, 0)
call(ANSWERED, BOOK, 1, ASK, 20, 1010000, 2, 1)		# fans out (id 1 of every 2)
call(ANSWERED, BOOK, 1, BID, 5, 990000, 5, 2)		# 3 and 4 lost: gaps 2
call(ANSWERED, BOOK, 1, BID, 7, 980000, 3, 3)		# stale: answered, not applied
call(LATE, BOOK, 1, BID, 0, 1000000, 6, 4, send_ns=1)	# late: seq 6 seen, book untouched
call(ANSWERED, BOOK, 2, ASK, 1000, 500000, 1, 5)	# flagged (quantity); fans out
call(ANSWERED, BOOK, 2, BID, 3, 490000, 2, 6)
call(ANSWERED, BOOK, 2, ASK, 0, 500000, 3, 7)		# removes the ask; fans out
call(REFUSED, BOOK, 10, BID, 1, 1, 1, 8)		# --instruments 10
call(ANSWERED, SPIN, 3, 0, 0, 0, 0, 9, service=20000)
call(LATE, BOOK, 9, BID, 1, 1, 1, 10, send_ns=1)
# a send time 2^62 ns ahead counts as its arrival: the instrument's next update, planned at 1 ns,
# is still late (it did not inherit a deadline in the far future)
call(ANSWERED, BOOK, 3, BID, 2, 1000, 1, 12, send_ns=1 << 62)
call(LATE, BOOK, 3, BID, 2, 1000, 2, 14, send_ns=1)
good = req(BOOK, 4, BID, 1, 1, 1, FUTURE, 99)
for bad in (good[:30], good + b"x", good * 4, b"garbage", good[:8] + b"\x02" + good[9:]):
	s.sendto(bad, server)
call(ANSWERED, SPIN, 0, 0, 0, 0, 0, 11)			# the next reply: none for the five
scripted = {"answered": 10, "late": 3, "rejected": 1, "malformed": 5}

# Bursts without waiting: 200 book updates on instruments 5-8 (both sides, removals, large
# orders, more than 16 levels), then 150 spin requests of 300 us, then SIGTERM at once. A thread
# collects the replies. Each instrument's updates must be applied in send order (the replay
# checks), and whatever the server took off the socket must be answered before it exits.
import random, threading
rnd = random.Random(12)
burst, seqs = [], {}
for i in range(200):
	inst = 5 + i % 4
	seqs[inst] = seqs.get(inst, 0) + 1
	side = rnd.choice((BID, ASK))
	price = (990000 if side == BID else 1010000) + rnd.randrange(-30, 31) * 500
	qty = rnd.choice((0, 0, 1, 50, 300, 950))
	burst.append((BOOK, req(BOOK, inst, side, qty, price, seqs[inst], FUTURE, 100 + i)))
for i in range(150):
	burst.append((SPIN, req(SPIN, i % 10, 0, 0, 0, 0, FUTURE, 300 + i, 300000)))
status, stop = {}, threading.Event()
def collect():
	while True:
		try:
			st, rid, _ = reply()
		except (socket.timeout, BlockingIOError):
			if stop.is_set():
				return
			continue
		assert 100 <= rid < 450 and rid not in status, rid
		status[rid] = st
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.settimeout(0.05)
receiver = threading.Thread(target=collect)
receiver.start()
for _, data in burst:
	s.sendto(data, server)
os.kill(pid, signal.SIGTERM)
deadline = time.monotonic() + 60
while True:			# until it has exited (a zombie: the shell waits for it)
	try:
		with open(f"/proc/{pid}/stat") as f:
			if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
				break
	except FileNotFoundError:
		break
	assert time.monotonic() < deadline, name + " still running 60 s after SIGTERM"
	time.sleep(0.05)
stop.set()			# every reply it sent is in our socket by now: drained, then done
receiver.join()
for i, (_, data) in enumerate(burst):
	rec.write(data + bytes([status.get(100 + i, NONE)]) + bytes(7))
rec.close()
assert set(status.values()) <= {ANSWERED}, status
books = [100 + i for i, (kind, _) in enumerate(burst) if kind == BOOK and 100 + i in status]
last, taken = {}, {}
for rid in books:
	inst, seq = 5 + (rid - 100) % 4, (rid - 100) // 4 + 1
	last[inst] = max(last.get(inst, 0), seq)
	taken[inst] = taken.get(inst, 0) + 1

st = json.load(open(stats_path))
assert st["server"] == name, st
want = dict(scripted, answered=scripted["answered"] + len(status), dropped=0,
	    fanouts=3 + sum(rid % 2 for rid in books), send_errors=0, updates=7 + len(books),
	    gaps=2 + sum(last[i] - taken[i] for i in last), stale=1)
for k, v in want.items():
	assert st[k] == v, (k, st[k], "expected", v)
assert st["received"] == sum(st[k] for k in ("answered", "late", "rejected", "malformed",
					    "dropped")), st
assert st["flagged"] > 1, st	# instrument 2's, and the burst's orders of 950
print("bursts: %d of %d book updates and %d of 150 spin requests taken and answered" %
      (len(books), 200, len(status) - len(books)))
PY
	fail "client"
wait "$server"
rc=$?
server=
[ "$rc" -eq 0 ] || fail "$name exit $rc on SIGTERM"
grep -q "^$name: received [0-9]* answered " "$tmp/out" || fail "$name: no summary line"

# instrument last_seq updates late gaps stale level_drops flagged scored score_sum b .. a ..
[ "$(wc -l <"$tmp/books")" -eq 8 ] || fail "books: $(wc -l <"$tmp/books") lines, expected 8"
grep -Eq '^1 6 3 1 2 1 0 0 1 [0-9]+ b 1000000:10 990000:5 a 1010000:20$' "$tmp/books" ||
	fail "books: instrument 1: $(grep '^1 ' "$tmp/books")"
grep -Eq '^2 3 3 0 0 0 0 1 2 [0-9]+ b 490000:3 a$' "$tmp/books" ||
	fail "books: instrument 2: $(grep '^2 ' "$tmp/books")"
grep -q '^9 1 0 1 0 0 0 0 0 0 b a$' "$tmp/books" || fail "books: instrument 9"
grep -q '^3 2 1 1 0 0 0 0 0 0 b 1000:2 a$' "$tmp/books" || fail "books: instrument 3: $(grep '^3 ' "$tmp/books")"

# ---- the replay: the same books from the recording; other options, other books ----

[ $(($(stat -c %s "$tmp/rec") % 64)) -eq 0 ] || fail "recording: not 64-byte records"
"$REPLAY" --instruments 10 --fanout-every 2 --models 5 --rounds 3 --out "$tmp/replay" \
	"$tmp/rec" 2>"$tmp/err" || fail "feed-replay exit $?"
diff -u "$tmp/books" "$tmp/replay" || fail "feed-replay's books differ from $name's"
echo "ok: $name: $(cat "$tmp/client")"
}

serve feed-pool "3 threads" "$POOL" --cpus "$cpu" --threads 3
[ -z "$PEL_FEED" ] || serve pel-feed "1 worker" "$PEL_FEED" --cpus "$cpu" --idle park
"$REPLAY" --instruments 10 --fanout-every 2 --models 5 --rounds 3 "$tmp/rec" \
	>"$tmp/replay.stdout" 2>"$tmp/err" || fail "feed-replay to stdout: exit $?"
cmp -s "$tmp/replay" "$tmp/replay.stdout" || fail "feed-replay: stdout differs from --out"
"$REPLAY" --instruments 10 --fanout-every 2 --models 4 --rounds 3 "$tmp/rec" \
	>"$tmp/replay4" 2>/dev/null || fail "feed-replay --models 4: exit $?"
cmp -s "$tmp/books" "$tmp/replay4" && fail "feed-replay: --models 4 gave the books of 5"

# a file that is not a recording: exit 1 and a message naming it
bad_file()
{
	"$REPLAY" --instruments 10 "$tmp/badrec" >"$tmp/bad" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 1 ] || fail "feed-replay, $1: exit $rc, expected 1"
	grep -q "^feed-replay: $tmp/badrec" "$tmp/err" || fail "feed-replay, $1: no message"
}
rm -f "$tmp/badrec"
bad_file "no such file"
{ cat "$tmp/rec"; printf 'x'; } >"$tmp/badrec"
bad_file "a byte over whole records"
head -c 100 "$tmp/rec" >"$tmp/badrec"
bad_file "a record and a half"
{ head -c 56 "$tmp/rec"; printf '\x07%7s' ''; } >"$tmp/badrec"
bad_file "status 7"
{ printf 'PF'; head -c 62 /dev/zero; } >"$tmp/badrec"
bad_file "not a request"
head -c 64 "$tmp/rec" >"$tmp/badrec"
"$REPLAY" --instruments 1 "$tmp/badrec" >"$tmp/bad" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'instrument 1 was served' "$tmp/err" ||
	fail "feed-replay: an instrument beyond --instruments not refused"
: >"$tmp/badrec"
"$REPLAY" "$tmp/badrec" >"$tmp/bad" 2>"$tmp/err" || fail "feed-replay: empty recording"
[ -s "$tmp/bad" ] && fail "feed-replay: books out of an empty recording"

# ---- stopping: --seconds on its own, SIGINT; default threads: one per CPU of --cpus ----

"$POOL" --port 0 --cpus "$cpu" --seconds 0.3 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "feed-pool --seconds 0.3: exit $rc"
grep -q '^feed-pool: serving UDP port [0-9]* on 1 threads$' "$tmp/out" ||
	fail "feed-pool --cpus $cpu: not one thread"
: >"$tmp/out"
"$POOL" --port 0 >"$tmp/out" 2>"$tmp/err" &
server=$!
for _ in $(seq 200); do
	grep -q '^feed-pool: serving' "$tmp/out" && break
	sleep 0.05
done
# a second server on its port is refused, not let in to share it (SO_REUSEPORT would)
port=$(sed -n 's/^feed-pool: serving UDP port \([0-9]*\) on .*/\1/p' "$tmp/out")
for other in "$POOL" ${PEL_FEED:+"$PEL_FEED"}; do
	"$other" --port "$port" --cpus "$cpu" --seconds 5 >"$tmp/bad" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 1 ] && grep -q "UDP port $port: Address already in use" "$tmp/err" ||
		fail "$other on feed-pool's port $port: exit $rc, $(cat "$tmp/err")"
done
kill -INT "$server"
wait "$server"
rc=$?
server=
[ "$rc" -eq 0 ] || fail "feed-pool exit $rc on SIGINT"
grep -q "^feed-pool: serving UDP port [0-9]* on $(nproc) threads$" "$tmp/out" ||
	fail "feed-pool: default threads not one per CPU: $(head -1 "$tmp/out")"
grep -q '^feed-pool: received 0 ' "$tmp/out" || fail "feed-pool: no summary after SIGINT"
echo "ok: feed-pool answered, refused, dropped late and malformed as specified;" \
	"$(cat "$tmp/client"); feed-replay gave its books"
