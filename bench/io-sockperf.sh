#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/io-sockperf.sh - pel's echo examples against sockperf's own busy-polling server, same run.
#
#	bench/io-sockperf.sh [--build DIR] [--rounds N] [--seconds T] [--cpus A,B] [--json FILE]
#
# `sockperf ping-pong --full-rtt -m 64` on CPU A against, on CPU B: examples/udp-echo --idle spin
# and `sockperf sr --nonblocked` (UDP), examples/tcp-echo --idle spin and `sockperf sr --tcp
# --nonblocked` (TCP). The four runs take turns within a round (the order flips every round), with
# a rest after each as long as the run (at most 5 s, see bench/README.md). Rows give the median over
# the rounds of each run's p50/p99/p99.9; ratios are pel / sockperf (lower is better). Exit 1 when a
# run cannot start or sockperf's summary shows it broken (not to its timer, no observations,
# drops, duplicates, out of order); figures never fail it. 2: bad usage. 77: no sockperf, < 2 CPUs.
set -u

BUILD=build-bench
ROUNDS=5
SECS=5
MSG=64
CPUS=
JSON=

usage()
{
	echo "usage: $0 [--build DIR] [--rounds N] [--seconds T] [--cpus A,B] [--json FILE]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=${2:?}; shift 2 ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--seconds) SECS=${2:?}; shift 2 ;;
	--cpus) CPUS=${2:?}; shift 2 ;;
	--json) JSON=${2:?}; shift 2 ;;
	*) usage ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ ]] || usage
if [ -z "$CPUS" ]; then
	ncpu=$(nproc)
	[ "$ncpu" -ge 2 ] || { echo "skip: $ncpu CPU, the client and server need one each"; exit 77; }
	CPUS="0,$((ncpu - 1))"
fi
[[ $CPUS =~ ^[0-9]+,[0-9]+$ ]] || usage
CLI=${CPUS%,*}
SRV=${CPUS#*,}
UDP_ECHO=$BUILD/examples/udp-echo
TCP_ECHO=$BUILD/examples/tcp-echo
for b in "$UDP_ECHO" "$TCP_ECHO"; do
	[ -x "$b" ] || { echo "$0: $b not built (ninja -C $BUILD; -Dexamples=true)" >&2; exit 1; }
done
command -v sockperf >/dev/null || { echo "skip: sockperf is not installed"; exit 77; }

tmp=$(mktemp -d /tmp/pel-io-sockperf.XXXXXX)
SRV_PID=
cleanup()
{
	[ -n "$SRV_PID" ] && kill -KILL "$SRV_PID" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

die()
{
	echo "$0: $*" >&2
	exit 1
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks()
{
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# listening PROTO PORT: something is bound there (UDP) or listening (TCP).
listening()
{
	if [ "$1" = udp ]; then
		[ -n "$(ss -Hlun "sport = :$2")" ]
	else
		[ -n "$(ss -Hltn "sport = :$2")" ]
	fi
}

# start_server VARIANT PROTO: the server on CPU SRV; sets SRV_PID and PORT.
start_server()
{
	local v=$1 proto=$2 i

	if [ "$v" = pel ]; then
		local bin=$UDP_ECHO
		[ "$proto" = tcp ] && bin=$TCP_ECHO
		taskset -c "$SRV" "$bin" --port 0 --cpus "$SRV" --idle spin >"$tmp/srv.out" \
			2>"$tmp/srv.err" &
		SRV_PID=$!
		for ((i = 0; i < 100; i++)); do
			PORT=$(sed -n 's/.* port \([0-9]*\) on .*/\1/p' "$tmp/srv.out")
			[ -n "$PORT" ] && return 0
			kill -0 "$SRV_PID" 2>/dev/null || break
			sleep 0.05
		done
	else
		PORT=$((20000 + RANDOM % 20000))
		while listening "$proto" "$PORT"; do
			PORT=$((20000 + RANDOM % 20000))
		done
		local t=
		[ "$proto" = tcp ] && t=--tcp
		# shellcheck disable=SC2086
		taskset -c "$SRV" sockperf sr -i 127.0.0.1 -p "$PORT" $t --nonblocked \
			>"$tmp/srv.out" 2>"$tmp/srv.err" &
		SRV_PID=$!
		for ((i = 0; i < 100; i++)); do
			listening "$proto" "$PORT" && return 0
			kill -0 "$SRV_PID" 2>/dev/null || break
			sleep 0.05
		done
	fi
	cat "$tmp/srv.out" "$tmp/srv.err" >&2
	die "$v $proto server did not start"
}

stop_server()
{
	local i

	kill -TERM "$SRV_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
}

# usec2ns OUT PCT: sockperf's percentile line PCT (e.g. 50.000), in ns.
usec2ns()
{
	awk -v p="$2" '$0 ~ "percentile " p " =" { printf "%.0f\n", $NF * 1000 }' "$1"
}

# run VARIANT PROTO ROUND: one ping-pong; appends "p50 p99 p999 srv_cpu%" to $tmp/VARIANT-PROTO.
run()
{
	local v=$1 proto=$2 out=$tmp/$1-$2-$3.txt t0 t1 w0 w1 line obs p50 p99 p999 cpu

	start_server "$v" "$proto"
	sleep 0.2
	local t=
	[ "$proto" = tcp ] && t=--tcp
	t0=$(cpu_ticks "$SRV_PID")
	w0=$(date +%s%N)
	# shellcheck disable=SC2086
	taskset -c "$CLI" timeout $((SECS + 30)) sockperf ping-pong --full-rtt -i 127.0.0.1 \
		-p "$PORT" $t -t "$SECS" -m "$MSG" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$out"
	t1=$(cpu_ticks "$SRV_PID")
	w1=$(date +%s%N)
	stop_server
	grep -q 'Test end (interrupted by timer)' "$out" || { cat "$out" >&2; die "$v $proto: sockperf did not run to its timer"; }
	obs=$(sed -n 's/.*Total \([0-9]*\) observations.*/\1/p' "$out")
	[ -n "$obs" ] && [ "$obs" -gt 0 ] || die "$v $proto: no observations"
	line=$(grep 'dropped messages' "$out")
	[[ $line == *"dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0"* ]] ||
		die "$v $proto round $3: $line"
	p50=$(usec2ns "$out" 50.000)
	p99=$(usec2ns "$out" 99.000)
	p999=$(usec2ns "$out" 99.900)
	# of the whole client run, sockperf's warm-up included: 100% = the server never slept
	cpu=$(awk -v d=$((t1 - t0)) -v w=$((w1 - w0)) -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.0f", 100 * d / hz / (w / 1e9) }')
	echo "$p50 $p99 $p999 $cpu $obs" >>"$tmp/$v-$proto"
	sleep "$SECS"	# rest as long as the run (bench/README.md, "Resting between runs")
}

# med FILE COL: median of column COL.
med()
{
	sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v[NR] = $c }
		END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

colmin() { sort -g -k"$2","$2" "$1" | awk -v c="$2" 'NR == 1 { print $c }'; }
colmax() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v = $c } END { print v }'; }

# per_round_ratio PROTO COL: median over the rounds of pel / sockperf.
per_round_ratio()
{
	paste -d' ' "$tmp/pel-$1" "$tmp/sockperf-$1" |
		awk -v c="$2" -v n="$(head -1 "$tmp/pel-$1" | wc -w)" '{ print $c / $(c + n) }' |
		sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) x = v[(NR + 1) / 2]; else x = (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.2f\n", x }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'; }

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
sp_ver=$(sockperf --version 2>&1 | sed -n 's/^sockperf, version \([^ ]*\).*/\1/p')
echo "cpu: $model"
echo "io-sockperf cpus=$CLI,$SRV seconds=$SECS rounds=$ROUNDS msg=$MSG sockperf=$sp_ver"
echo "note: client: taskset -c $CLI sockperf ping-pong --full-rtt -i 127.0.0.1 -p PORT [--tcp] -t $SECS -m $MSG"
echo "note: servers on CPU $SRV: udp-echo/tcp-echo --cpus $SRV --idle spin; sockperf sr -i 127.0.0.1 -p PORT [--tcp] --nonblocked"
echo "note: rows: median over the rounds of each run's sockperf percentiles (ns, full round trip); srv_cpu: server CPU time / run time"

for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="pel sockperf"; else order="sockperf pel"; fi
	for proto in udp tcp; do
		for v in $order; do
			run "$v" "$proto" "$r"
		done
	done
	echo "note: round $r/$ROUNDS done" >&2
done

declare -A M
row()
{
	local role=$1 name=$2 v=$3 proto=$4 f=$tmp/$3-$4

	M[${proto}_${v}_p50]=$(med "$f" 1)
	M[${proto}_${v}_p99]=$(med "$f" 2)
	M[${proto}_${v}_p999]=$(med "$f" 3)
	printf '%-9s %-19s %s rtt ns p50=%-7s p99=%-7s p99.9=%-8s p50_min=%s p50_max=%s srv_cpu=%s%%\n' \
		"$role" "$name" "$proto" "${M[${proto}_${v}_p50]}" "${M[${proto}_${v}_p99]}" \
		"${M[${proto}_${v}_p999]}" "$(colmin "$f" 1)" "$(colmax "$f" 1)" "$(med "$f" 4)"
}
row pel "udp-echo spin" pel udp
row peer "sockperf sr nonblk" sockperf udp
row pel "tcp-echo spin" pel tcp
row peer "sockperf sr nonblk" sockperf tcp

u50=$(ratio "${M[udp_pel_p50]}" "${M[udp_sockperf_p50]}")
u99=$(ratio "${M[udp_pel_p99]}" "${M[udp_sockperf_p99]}")
t50=$(ratio "${M[tcp_pel_p50]}" "${M[tcp_sockperf_p50]}")
t99=$(ratio "${M[tcp_pel_p99]}" "${M[tcp_sockperf_p99]}")
u50r=$(per_round_ratio udp 1)
u99r=$(per_round_ratio udp 2)
t50r=$(per_round_ratio tcp 1)
echo "ratio     pel/sockperf        udp rtt p50=$u50 p99=$u99 per-round p50=$u50r p99=$u99r (udp_p50_vs_sockperf_spin, udp_p99_vs_sockperf_spin, lower is better)"
echo "ratio     pel/sockperf        tcp rtt p50=$t50 p99=$t99 per-round p50=$t50r (tcp_p50_vs_sockperf_spin, lower is better; tcp_p99 for reading)"

if [ -n "$JSON" ]; then
	{
		printf '{"bench": "io-sockperf", "cpu": "%s", "metrics": [' "$model"
		sep=
		for proto in udp tcp; do
			for v in pel sockperf; do
				for p in p50 p99 p999; do
					printf '%s{"name": "%s_%s_%s", "value": %s, "unit": "ns"}' "$sep" \
						"$proto" "$v" "$p" "${M[${proto}_${v}_${p}]}"
					sep=", "
				done
			done
		done
		printf '],\n "ratios": [{"name": "udp_p50_vs_sockperf_spin", "value": %s}, ' "$u50"
		printf '{"name": "udp_p99_vs_sockperf_spin", "value": %s}, ' "$u99"
		printf '{"name": "tcp_p50_vs_sockperf_spin", "value": %s}, ' "$t50"
		printf '{"name": "tcp_p99_vs_sockperf_spin", "value": %s}, ' "$t99"
		printf '{"name": "udp_p50_vs_sockperf_spin_per_round", "value": %s}, ' "$u50r"
		printf '{"name": "udp_p99_vs_sockperf_spin_per_round", "value": %s}, ' "$u99r"
		printf '{"name": "tcp_p50_vs_sockperf_spin_per_round", "value": %s}]}\n' "$t50r"
	} >"$JSON"
fi
exit 0
