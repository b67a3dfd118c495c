#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/io-sockperf.sh - pel's echo examples against sockperf's own busy-polling server, same run.
#
#	bench/io-sockperf.sh [--build DIR] [--part rtt|tput|all] [--rounds N] [--seconds T]
#			     [--cpus A,B] [--conns N] [--depth D] [--json FILE]
#
# `sockperf ping-pong --full-rtt -m 64` on CPU A against, on CPU B: examples/udp-echo --idle spin
# and `sockperf sr --nonblocked` (UDP), examples/tcp-echo --idle spin and `sockperf sr --tcp
# --nonblocked` (TCP). The four runs take turns within a round (the order flips every round), with
# a rest after each as long as the run (at most 5 s, see bench/README.md). Rows give the median over
# the rounds of each run's p50/p99/p99.9; ratios are pel / sockperf (lower is better). Exit 1 when a
# run cannot start or sockperf's summary shows it broken (not to its timer, no observations,
# drops, duplicates, out of order); figures never fail it. 2: bad usage. 77: no sockperf, < 2 CPUs.
#
# Part tput: bench/echo-load.c on CPU A keeps --depth 64-byte requests in flight on each of --conns
# TCP connections or UDP sockets against, on CPU B, udp-echo/tcp-echo --idle spin (one worker) and
# bench/epoll-echo.c (one thread, epoll, one syscall per receive and per send); answers per second,
# median over the rounds; ratios pel / epoll (higher is better).
set -u

BUILD=build-bench
ROUNDS=5
PART=all
CONNS=64
DEPTH=4
SECS=5
MSG=64
CPUS=
JSON=

usage()
{
	echo "usage: $0 [--build DIR] [--part rtt|tput|all] [--rounds N] [--seconds T] [--cpus A,B]" \
		"[--conns N] [--depth D] [--json FILE]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=${2:?}; shift 2 ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--part) PART=${2:?}; shift 2 ;;
	--conns) CONNS=${2:?}; shift 2 ;;
	--depth) DEPTH=${2:?}; shift 2 ;;
	--seconds) SECS=${2:?}; shift 2 ;;
	--cpus) CPUS=${2:?}; shift 2 ;;
	--json) JSON=${2:?}; shift 2 ;;
	*) usage ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ && $PART =~ ^(rtt|tput|all)$ ]] || usage
[[ $CONNS =~ ^[1-9][0-9]*$ && $DEPTH =~ ^[1-9][0-9]*$ ]] || usage
if [ -z "$CPUS" ]; then
	ncpu=$(nproc)
	if [ "$ncpu" -lt 2 ]; then
		echo "skip: $ncpu CPU, the client and server need one each"
		exit 77
	fi
	CPUS="0,$((ncpu - 1))"
fi
[[ $CPUS =~ ^[0-9]+,[0-9]+$ ]] || usage
CLI=${CPUS%,*}
SRV=${CPUS#*,}
UDP_ECHO=$BUILD/examples/udp-echo
TCP_ECHO=$BUILD/examples/tcp-echo
EPOLL_ECHO=$BUILD/bench/pel-epoll-echo
LOAD=$BUILD/bench/pel-echo-load
for b in "$UDP_ECHO" "$TCP_ECHO" "$EPOLL_ECHO" "$LOAD"; do
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

# start_server VARIANT PROTO: the server on CPU SRV; sets SRV_PID and PORT. The subshell execs, so
# SRV_PID is the server itself (with a trap set, bash would otherwise keep a shell in between).
start_server()
{
	local v=$1 proto=$2 i

	# emptied here, not by the child's redirection: read before the child runs, the file would
	# still hold the previous server's ready line
	: >"$tmp/srv.out"
	if [ "$v" != sockperf ]; then
		if [ "$v" = epoll ]; then
			(exec taskset -c "$SRV" "$EPOLL_ECHO" --port 0 --proto "$proto" \
				--cpu "$SRV" >"$tmp/srv.out" 2>"$tmp/srv.err") &
		else
			local bin=$UDP_ECHO
			[ "$proto" = tcp ] && bin=$TCP_ECHO
			(exec taskset -c "$SRV" "$bin" --port 0 --cpus "$SRV" --idle spin \
				>"$tmp/srv.out" 2>"$tmp/srv.err") &
		fi
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
		(exec taskset -c "$SRV" sockperf sr -i 127.0.0.1 -p "$PORT" $t --nonblocked \
			>"$tmp/srv.out" 2>"$tmp/srv.err") &
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
	if ! grep -q 'Test end (interrupted by timer)' "$out"; then
		cat "$out" >&2
		die "$v $proto: sockperf did not run to its timer"
	fi
	obs=$(sed -n 's/.*Total \([0-9]*\) observations.*/\1/p' "$out")
	[ -n "$obs" ] && [ "$obs" -gt 0 ] || die "$v $proto: no observations"
	line=$(grep 'dropped messages' "$out")
	local k
	for k in dropped duplicated out-of-order; do
		[[ $line == *"$k messages = 0"* ]] || die "$v $proto round $3: $line"
	done
	p50=$(usec2ns "$out" 50.000)
	p99=$(usec2ns "$out" 99.000)
	p999=$(usec2ns "$out" 99.900)
	# of the whole client run, sockperf's warm-up included: 100% = the server never slept
	cpu=$(awk -v d=$((t1 - t0)) -v w=$((w1 - w0)) -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.0f", 100 * d / hz / (w / 1e9) }')
	echo "$p50 $p99 $p999 $cpu $obs" >>"$tmp/$v-$proto"
	sleep "$SECS"	# rest as long as the run (bench/README.md, "Resting between runs")
}

# run_tput VARIANT PROTO: one echo-load run; appends
# "msgs/s srv_cpu cli_cpu topped_up unsent refused" to $tmp/tput-VARIANT-PROTO.
run_tput()
{
	local v=$1 proto=$2 out=$tmp/load.txt t0 t1 w0 w1 line cpu

	start_server "$v" "$proto"
	sleep 0.2
	t0=$(cpu_ticks "$SRV_PID")
	w0=$(date +%s%N)
	timeout $((SECS + 30)) "$LOAD" --port "$PORT" --proto "$proto" --conns "$CONNS" \
		--depth "$DEPTH" --seconds "$SECS" --cpu "$CLI" >"$out" 2>&1 ||
		{ cat "$out" "$tmp/srv.out" "$tmp/srv.err" >&2; die "$v $proto: echo-load failed"; }
	t1=$(cpu_ticks "$SRV_PID")
	w1=$(date +%s%N)
	stop_server
	line=$(cat "$out")
	cpu=$(awk -v d=$((t1 - t0)) -v w=$((w1 - w0)) -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.0f", 100 * d / hz / (w / 1e9) }')
	echo "$line" | awk -v c="$cpu" '{
		for (i = 1; i < NF; i++) {
			if ($i == "msgs/s") m = $(i + 1)
			if ($i == "client_cpu") k = $(i + 1)
			if ($i == "topped_up") t = $(i + 1)
			if ($i == "unsent") u = $(i + 1)
			if ($i == "refused") x = $(i + 1)
		}
		sub("%", "", k); print m, c, k, t, u, x }' >>"$tmp/tput-$v-$proto"
	sleep "$SECS"
}

# med FILE COL: median of column COL.
med()
{
	sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v[NR] = $c }
		END { if (NR % 2) print v[(NR + 1) / 2]
		      else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

colmin() { sort -g -k"$2","$2" "$1" | awk -v c="$2" 'NR == 1 { print $c }'; }
colmax() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v = $c } END { print v }'; }

# per_round_ratio FILE_A FILE_B COL: median over the rounds of A / B in column COL.
per_round_ratio()
{
	paste -d' ' "$1" "$2" |
		awk -v c="$3" -v n="$(head -1 "$1" | wc -w)" '{ print $c / $(c + n) }' |
		sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) x = v[(NR + 1) / 2]; else x = (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.2f\n", x }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'; }

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
sp_ver=$(sockperf --version 2>&1 | sed -n 's/^sockperf, version \([^ ]*\).*/\1/p')
echo "cpu: $model"
declare -A M
METRICS=()
RATIOS=()

# rtt_row ROLE NAME VARIANT PROTO: one rtt row, from the rounds in $tmp/VARIANT-PROTO.
rtt_row()
{
	local role=$1 name=$2 v=$3 proto=$4 f=$tmp/$3-$4

	M[${proto}_${v}_p50]=$(med "$f" 1)
	M[${proto}_${v}_p99]=$(med "$f" 2)
	M[${proto}_${v}_p999]=$(med "$f" 3)
	printf '%-9s %-19s %s rtt ns p50=%-7s p99=%-7s p99.9=%-8s p50_min=%s p50_max=%s srv_cpu=%s%%\n' \
		"$role" "$name" "$proto" "${M[${proto}_${v}_p50]}" "${M[${proto}_${v}_p99]}" \
		"${M[${proto}_${v}_p999]}" "$(colmin "$f" 1)" "$(colmax "$f" 1)" "$(med "$f" 4)"
}

# part_rtt: sockperf ping-pong against pel and sockperf sr, rows and ratios.
part_rtt()
{
	local r order proto v p u50 u99 t50 t99 u50r u99r t50r

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

	rtt_row pel "udp-echo spin" pel udp
	rtt_row peer "sockperf sr nonblk" sockperf udp
	rtt_row pel "tcp-echo spin" pel tcp
	rtt_row peer "sockperf sr nonblk" sockperf tcp
	for proto in udp tcp; do
		for v in pel sockperf; do
			for p in p50 p99 p999; do
				METRICS+=("${proto}_${v}_${p} ${M[${proto}_${v}_${p}]} ns")
			done
		done
	done

	u50=$(ratio "${M[udp_pel_p50]}" "${M[udp_sockperf_p50]}")
	u99=$(ratio "${M[udp_pel_p99]}" "${M[udp_sockperf_p99]}")
	t50=$(ratio "${M[tcp_pel_p50]}" "${M[tcp_sockperf_p50]}")
	t99=$(ratio "${M[tcp_pel_p99]}" "${M[tcp_sockperf_p99]}")
	u50r=$(per_round_ratio "$tmp/pel-udp" "$tmp/sockperf-udp" 1)
	u99r=$(per_round_ratio "$tmp/pel-udp" "$tmp/sockperf-udp" 2)
	t50r=$(per_round_ratio "$tmp/pel-tcp" "$tmp/sockperf-tcp" 1)
	echo "ratio     pel/sockperf        udp rtt p50=$u50 p99=$u99 per-round p50=$u50r p99=$u99r (udp_p50_vs_sockperf_spin, udp_p99_vs_sockperf_spin, lower is better)"
	echo "ratio     pel/sockperf        tcp rtt p50=$t50 p99=$t99 per-round p50=$t50r (tcp_p50_vs_sockperf_spin, lower is better; tcp_p99 for reading)"
	RATIOS+=("udp_p50_vs_sockperf_spin $u50" "udp_p99_vs_sockperf_spin $u99"
		 "tcp_p50_vs_sockperf_spin $t50" "tcp_p99_vs_sockperf_spin $t99"
		 "udp_p50_vs_sockperf_spin_per_round $u50r"
		 "udp_p99_vs_sockperf_spin_per_round $u99r"
		 "tcp_p50_vs_sockperf_spin_per_round $t50r")
}

# part_tput: pel-echo-load against pel and pel-epoll-echo, rows and ratios.
part_tput()
{
	local r order proto v f name role x xr

	echo "io-sockperf tput cpus=$CLI,$SRV seconds=$SECS rounds=$ROUNDS conns=$CONNS depth=$DEPTH msg=64"
	echo "note: client: $LOAD --conns $CONNS --depth $DEPTH on CPU $CLI (epoll_wait, recvmmsg/sendmmsg or recv/send per readable socket)"
	echo "note: servers on CPU $SRV: udp-echo/tcp-echo --cpus $SRV --idle spin (one worker); pel-epoll-echo (one thread, epoll_wait(-1), one syscall per recv and per send)"
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then order="pel epoll"; else order="epoll pel"; fi
		for proto in udp tcp; do
			for v in $order; do
				run_tput "$v" "$proto"
			done
		done
		echo "note: tput round $r/$ROUNDS done" >&2
	done
	for proto in udp tcp; do
		for v in pel epoll; do
			f=$tmp/tput-$v-$proto
			M[${proto}_${v}_tput]=$(med "$f" 1)
			name="$proto-echo spin"
			role=pel
			[ "$v" = epoll ] && { name="epoll echo"; role=baseline; }
			printf '%-9s %-19s %s msgs/s median=%-9s min=%-9s max=%-9s srv_cpu=%s%% cli_cpu=%s%% topped_up=%s unsent=%s refused=%s\n' \
				"$role" "$name" "$proto" "${M[${proto}_${v}_tput]}" \
				"$(colmin "$f" 1)" "$(colmax "$f" 1)" \
				"$(med "$f" 2)" "$(med "$f" 3)" "$(med "$f" 4)" "$(med "$f" 5)" \
				"$(colmax "$f" 6)"
			METRICS+=("${proto}_${v}_msgs_per_s ${M[${proto}_${v}_tput]} msgs/s")
		done
	done
	for proto in udp tcp; do
		x=$(ratio "${M[${proto}_pel_tput]}" "${M[${proto}_epoll_tput]}")
		xr=$(per_round_ratio "$tmp/tput-pel-$proto" "$tmp/tput-epoll-$proto" 1)
		echo "ratio     pel/epoll           $proto msgs/s x=$x per-round=$xr (${proto}_msgs_per_core_vs_epoll, higher is better)"
		RATIOS+=("${proto}_msgs_per_core_vs_epoll $x"
			 "${proto}_msgs_per_core_vs_epoll_per_round $xr")
	done
}

[ "$PART" != tput ] && part_rtt
[ "$PART" != rtt ] && part_tput

if [ -n "$JSON" ]; then
	{
		printf '{"bench": "io-sockperf", "cpu": "%s", "metrics": [' "$model"
		sep=
		for m in "${METRICS[@]}"; do
			read -r n v u <<<"$m"
			printf '%s{"name": "%s", "value": %s, "unit": "%s"}' "$sep" "$n" "$v" "$u"
			sep=", "
		done
		printf '],\n "ratios": ['
		sep=
		for m in "${RATIOS[@]}"; do
			read -r n v <<<"$m"
			printf '%s{"name": "%s", "value": %s}' "$sep" "$n" "$v"
			sep=", "
		done
		printf ']}\n'
	} >"$JSON"
fi
exit 0
