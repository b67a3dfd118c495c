#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/demo.sh - the README's "main job": build pel for release, check the host, then run the
# demo service under open-loop load beside its baselines and write the report. Works from any
# directory. docs/demo.md ("Running the demo").
#
#	tools/demo.sh [--quick] [options]
#
#	--quick		a first look (under a minute after the build): 5,15,30,50,75 %, 0.5 s
#	--loads LIST	offered loads in % of one core (default 5,10,15,20,30,50,70)
#	--seconds S	measured seconds per run, 0.001 .. 86400 (default 1; --quick 0.5), after a
#			warm-up
#	--service SPEC	pel-load's spin service of the sweep (default exp:10us)
#	--feed-rate R	updates/s of the feed-mode runs (default 20000; 0: none)
#	--seed N	pel-load's seed: each load runs the same trace against every server
#	--out DIR	the results folder, new or empty (default results/demo-YYYYmmdd-HHMMSS-XXXXXX)
#	--no-trace	record no LTTng trace
#	--bench		also run pel-bench (its suite "all") into the results folder
#	-h, --help	this text
#
# Steps: check for two CPUs, install what is missing of DEMO_DEPS (tools/deps.sh; not root: print
# the apt-get line, exit 1), take the lock, build in build-demo/ for release (tracing on when
# lttng-ust is installed), pel-check on the server's CPU, then for each load and server: start
# the server on the last CPU (the ready line), run build-demo/bench/pel-load on the first CPU
# (--json, --cdf, --ideal-servers 1 when it has them), stop the server (SIGTERM), keep its
# --stats. Then the feed mode at one rate, one short traced run of pel-feed (LTTng, then
# tools/pel-trace), and tools/pel-demo-report: the table, the ratios, plots, report.md and
# results.json in the results folder, whose path ends the output.
#
# Ctrl-C (or SIGTERM) stops the servers and the generator, writes the report of the runs that
# finished and exits 130.
#
# Exit: 0 done; 1 fewer than two CPUs, a dependency, another demo on this build folder (its lock,
# build-demo/.demo.lock), the build, every run or the report failed; 2 bad usage (nothing
# installed or built); 130 interrupted.
#
# PEL_DEMO_PEL=PATH and PEL_DEMO_POOL=PATH run other server binaries in place of
# build-demo/examples/pel-feed and feed-pool (bench/pel-spin-echo is understood too).
# PEL_DEMO_BUILD=DIR takes every binary from the meson build DIR as it is: nothing is installed
# or built (tests/demo/test_demo_run.sh runs the demo on the build under test this way).

set -uo pipefail

top=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd) || exit 1

BUILD_DIR=${PEL_DEMO_BUILD:-build-demo}
PY=/usr/bin/python3	# Debian's: it has python3-matplotlib and python3-bt2
[ -x "$PY" ] || PY=python3
# What the demo runs, not tools/test.sh's whole list: the release build (meson, ninja, pkg-config,
# gcc; liburing for pel-feed, numa for the CPU placement, lttng-ust for the tracepoints), the
# trace (lttng, lttng-sessiond, babeltrace2 and its Python bindings for pel-trace), the plots, and
# taskset and flock.
DEMO_DEPS=(meson ninja-build pkg-config gcc liburing-dev libnuma-dev liblttng-ust-dev lttng-tools
	babeltrace2 python3-bt2 python3-matplotlib util-linux)

usage()
{
	sed -n '4,/^# Ctrl-C/{/^# Ctrl-C/d;s/^# \{0,1\}//p}' "$top/tools/demo.sh"
}

die_usage()
{
	echo "demo.sh: $*" >&2
	echo "demo.sh: run tools/demo.sh --help for the options" >&2
	exit 2
}

# ---- options ----

QUICK=0
LOADS=
SECONDS_RUN=
SERVICE=exp:10us
FEED_RATE=20000
SEED=1
OUT=
TRACE=1
BENCH=0

# need_value OPT ARGC: exit 2 unless OPT has a value
need_value()
{
	[ "$2" -ge 2 ] || die_usage "$1 needs a value"
}

while [ $# -gt 0 ]; do
	opt=$1
	val=
	case $opt in
	--*=*)
		val=${opt#*=}
		opt=${opt%%=*}
		case $opt in
		--quick | --no-trace | --bench | --help)
			die_usage "$opt takes no value"
			;;
		esac
		set -- "$opt" "$val" "${@:2}"
		;;
	esac
	case $opt in
	--quick) QUICK=1 ;;
	--no-trace) TRACE=0 ;;
	--bench) BENCH=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--loads)
		need_value "$opt" $#
		[[ $2 =~ ^[0-9]+(\.[0-9]+)?(,[0-9]+(\.[0-9]+)?)*$ ]] ||
			die_usage "--loads $2: write percents of one core, e.g. 30,50,70,90"
		for l in ${2//,/ }; do
			awk -v l="$l" 'BEGIN { exit !(l > 0 && l <= 200) }' ||
				die_usage "--loads $2: $l is not in (0, 200] %"
		done
		LOADS=$2
		shift
		;;
	--seconds)
		need_value "$opt" $#
		[[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] &&
			awk -v s="$2" 'BEGIN { exit !(s >= 0.001 && s <= 86400) }' ||
			die_usage "--seconds $2: not a number of seconds in 0.001 .. 86400"
		SECONDS_RUN=$2
		shift
		;;
	--service)
		need_value "$opt" $#
		t='[0-9.]+(ns|us|ms)'
		[[ $2 =~ ^(fixed|exp):$t$ ]] || [[ $2 =~ ^bimodal:[0-9.]+:$t:$t$ ]] ||
			die_usage "--service $2: write fixed:1us, exp:10us or bimodal:90:5us:55us"
		SERVICE=$2
		shift
		;;
	--feed-rate)
		need_value "$opt" $#
		[[ $2 =~ ^[0-9]+$ ]] && [ "${#2}" -le 8 ] ||
			die_usage "--feed-rate $2: not a whole number of updates per second"
		FEED_RATE=$2
		shift
		;;
	--seed)
		need_value "$opt" $#
		[[ $2 =~ ^[0-9]+$ ]] && [ "${#2}" -le 18 ] ||
			die_usage "--seed $2: not a whole number"
		SEED=$2
		shift
		;;
	--out)
		need_value "$opt" $#
		[ -n "$2" ] || die_usage "--out needs a directory"
		# against the caller's directory, not the checkout the script moves to
		case $2 in
		/*) OUT=$2 ;;
		*) OUT=$PWD/$2 ;;
		esac
		# a folder used before would mix its runs into this report
		if [ -e "$OUT" ] || [ -L "$OUT" ]; then
			[ -d "$OUT" ] || die_usage "--out $2: exists and is not a directory"
			[ -z "$(ls -A "$OUT" 2>/dev/null)" ] ||
				die_usage "--out $2: not empty; give a new or empty folder"
		fi
		shift
		;;
	*)
		die_usage "unknown argument '$opt'"
		;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	: "${LOADS:=5,15,30,50,75}" "${SECONDS_RUN:=0.5}"
	WARMUP=0.2
	TRACE_SECONDS=0.5
else
	# Most loads below 50 %: with exp:10us even the ideal server's p99 passes 100 us near
	# 50 %, so that is where the servers' max_load lies.
	: "${LOADS:=5,10,15,20,30,50,70}" "${SECONDS_RUN:=1}"
	WARMUP=0.5
	TRACE_SECONDS=1
fi
read -r -a LOAD_LIST <<<"${LOADS//,/ }"

# The mean of a service SPEC in ns (awk: pel-load's spellings of ns, us, ms).
service_mean_ns()
{
	awk -v s="$1" '
		function ns(x) {
			if (x ~ /ms$/) return substr(x, 1, length(x) - 2) * 1e6
			if (x ~ /us$/) return substr(x, 1, length(x) - 2) * 1e3
			return substr(x, 1, length(x) - 2) + 0
		}
		BEGIN {
			n = split(s, f, ":")
			if (f[1] != "bimodal") { print ns(f[2]); exit }
			p = f[2] / 100
			print p * ns(f[3]) + (1 - p) * ns(f[4])
		}'
}
MEAN_NS=$(service_mean_ns "$SERVICE")
awk -v m="$MEAN_NS" 'BEGIN { exit !(m > 0) }' || die_usage "--service $SERVICE: a mean of 0"

# rate = load x (1 s / mean service): the share of one core the requests ask for
load_rate()
{
	awk -v l="$1" -v m="$MEAN_NS" 'BEGIN { printf "%d", l / 100 * 1e9 / m + 0.5 }'
}
for l in "${LOAD_LIST[@]}"; do
	rate=$(load_rate "$l")
	[ "$rate" -ge 1 ] && [ "$rate" -le 100000000 ] ||
		die_usage "--loads $l % of --service $SERVICE is $rate requests/s; pel-load sends" \
			  "1 .. 100M/s"
done

cd "$top" || exit 1
# shellcheck source=tools/deps.sh
. "$top/tools/deps.sh"

# ---- build ----

BIN_PEL=${PEL_DEMO_PEL:-$BUILD_DIR/examples/pel-feed}
BIN_POOL=${PEL_DEMO_POOL:-$BUILD_DIR/examples/feed-pool}
BIN_LOAD=$BUILD_DIR/bench/pel-load
BIN_CHECK=$BUILD_DIR/tools/pel-check
BIN_BENCH=$BUILD_DIR/bench/pel-bench

# Take the demo's lock, the build folder's .demo.lock, for the life of this process: a second
# demo on the same build folder would reconfigure it under the first, or remove it. Exits 1 when
# another demo holds it. LOCK_FD is closed in what demo.sh starts in the background.
demo_lock()
{
	local lock=$BUILD_DIR/.demo.lock holder

	if ! mkdir -p "$BUILD_DIR" 2>/dev/null || ! exec {LOCK_FD}>>"$lock"; then
		echo "demo.sh: cannot create the lock $lock" >&2
		exit 1
	fi
	if ! flock -n "$LOCK_FD"; then
		holder=$(cat "$lock" 2>/dev/null)
		echo "demo.sh: another demo is running on $BUILD_DIR/${holder:+ (demo.sh pid $holder)};" \
		     "wait for it to end: two demos would share the build and the CPUs" >&2
		exit 1
	fi
	echo "$$" >"$lock"
}

# Empty the build folder but for the lock (held) and the log being written.
clear_build()
{
	find "$BUILD_DIR" -mindepth 1 -maxdepth 1 ! -name .demo.lock ! -name demo-build.log \
		-exec rm -rf {} +
}

demo_build()
{
	local log=$BUILD_DIR/demo-build.log opts=(-Dbuildtype=release -Dtests=false) b

	# tracing when lttng-ust is there; else a build without tracepoints (and no trace)
	if pkg-config --exists lttng-ust 2>/dev/null; then
		opts+=(-Dtracing=enabled)
		TRACING=1
	else
		opts+=(-Dtracing=disabled)
		TRACING=0
	fi
	# the log in the build folder: nothing left in /tmp when the build is interrupted
	: >"$log" || return 1
	echo "demo.sh: building pel for release in $BUILD_DIR/ (${opts[*]})"
	if [ -f "$BUILD_DIR/meson-private/coredata.dat" ] &&
	   ! meson setup --reconfigure "$BUILD_DIR" "${opts[@]}" >"$log" 2>&1; then
		if grep -q 'other Meson process' "$log"; then
			# meson's own lock: someone else's meson or ninja, not a broken folder
			cat "$log" >&2
			echo "demo.sh: $BUILD_DIR/ is in use by another meson; try again when it is done" >&2
			return 1
		fi
		clear_build	# a folder meson cannot reconfigure: set it up anew
	fi
	if [ ! -f "$BUILD_DIR/meson-private/coredata.dat" ] &&
	   ! meson setup "$BUILD_DIR" "${opts[@]}" >"$log" 2>&1; then
		cat "$log" >&2
		echo "demo.sh: meson setup failed" >&2
		return 1
	fi
	if ! meson compile -C "$BUILD_DIR" >>"$log" 2>&1; then
		cat "$log" >&2
		echo "demo.sh: build failed (the log: $BUILD_DIR/demo-build.log)" >&2
		return 1
	fi
	for b in "$BIN_PEL" "$BIN_POOL" "$BIN_LOAD" "$BIN_CHECK"; do
		if [ ! -x "$b" ]; then
			echo "demo.sh: $b was not built (see $BUILD_DIR/demo-build.log)" >&2
			return 1
		fi
	done
}

# ---- CPUs ----

# The CPUs this process may run on, one a line, ascending.
allowed_cpus()
{
	local list part a b

	list=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)
	[ -n "$list" ] || list=0-$(($(nproc) - 1))
	for part in ${list//,/ }; do
		a=${part%-*}
		b=${part#*-}
		seq "$a" "$b"
	done
}

# ---- the results folder ----

RES=
POINTS=
CMDS=
SERVER_PID=
LOAD_PID=
LOAD_RC=
LTTNG_SESSION=
SESSIOND_PID=
SESSIOND_HOME=
IN_TRACE=0
INTERRUPTED=0
NPOINTS=0
NOK=0
TOTAL=0
CUR_POINT=()
CUR_PREFIX=

meta()
{
	printf '%s\t%s\n' "$1" "$2" >>"$RES/meta.tsv"
}

# Append a command line to commands.txt, quoted so that it can be pasted.
log_cmd()
{
	local q

	q=$(printf ' %q' "$@")
	printf '%s\n' "${q# }" >>"$CMDS"
}

# ---- one run ----

# server_cmd ROLE BIN STATS: the server's command line in CMD.
server_cmd()
{
	local role=$1 bin=$2 stats=$3

	case $(basename "$bin") in
	pel-spin-echo)
		CMD=("$bin" --port 0 --cpu "$SERVER_CPU")
		;;
	*)
		CMD=("$bin" --port 0 --cpus "$SERVER_CPU" --stats "$stats")
		[ "$role" = pel ] && CMD+=(--idle spin --io per-worker)
		[ "$role" = pool ] && CMD+=(--threads 1)
		# spin sweep: no deadline, so that every request counts in the latency, as in
		# the ideal FCFS server
		[ "$MODE" = spin ] && CMD+=(--deadline-us 0)
		;;
	esac
}

# start_server LOG CMD...: start it in the background; sets SERVER_PID and PORT, or returns 1
# with the reason in WHY.
start_server()
{
	local log=$1 i
	shift

	: >"$log"	# emptied here: a folder used again holds an older run's ready line
	"$@" >"$log" 2>&1 {LOCK_FD}>&- &
	SERVER_PID=$!
	PORT=
	for i in $(seq 200); do
		# "pel-feed: serving UDP port P on N workers", "pel-spin-echo: port P"
		PORT=$(sed -n 's/^[^ ]*: \(serving UDP \)\{0,1\}port \([0-9][0-9]*\).*/\2/p' \
		       "$log" | head -n 1)
		[ -n "$PORT" ] && return 0
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			wait "$SERVER_PID" 2>/dev/null
			WHY="the server exited $? before its ready line:"
			WHY+=" $(tail -n 3 "$log" | tr '\n' ' ')"
			SERVER_PID=
			return 1
		fi
		sleep 0.05
	done
	WHY="no ready line from the server in 10 s"
	stop_server
	return 1
}

# SIGTERM, then up to 5 s, then SIGKILL.
stop_server()
{
	local pid=$SERVER_PID i

	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "demo.sh: server $pid did not stop in 5 s after SIGTERM: killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	SERVER_PID=
}

# What this pel-load can do, from its --help: sets HAVE_CDF, HAVE_CDF_IDEAL and HAVE_IDEAL.
probe_load()
{
	local help

	help=$("$BIN_LOAD" --help 2>&1)
	HAVE_CDF=0
	HAVE_CDF_IDEAL=0
	HAVE_IDEAL=0
	grep -q -- '--cdf ' <<<"$help" && HAVE_CDF=1
	grep -q -- '--cdf-ideal ' <<<"$help" && HAVE_CDF_IDEAL=1
	grep -q -- '--ideal-servers' <<<"$help" && HAVE_IDEAL=1
}

# run_point ROLE BIN MODE LOAD RATE TAG: one server at one load; a line in points.tsv.
run_point()
{
	local role=$1 bin=$2 load=$4 rate=$5 tag=$6 prefix rc svc=- name
	MODE=$3

	name=$(basename "$bin")
	prefix=runs/$tag-$role-$name
	NPOINTS=$((NPOINTS + 1))
	[ "$MODE" = spin ] && svc=$SERVICE
	if [ "$MODE" = spin ]; then
		printf '[%d/%d] %-10s spin %s at %s %% (%s/s), %s s ... ' "$NPOINTS" "$TOTAL" \
			"$name" "$SERVICE" "$load" "$rate" "$SECONDS_RUN"
	else
		printf '[%d/%d] %-10s feed mode at %s/s, %s s ... ' "$NPOINTS" "$TOTAL" "$name" \
			"$rate" "$SECONDS_RUN"
	fi
	# the line in points.tsv, less its status: on_signal writes it as interrupted
	CUR_POINT=("$name" "$role" "$MODE" "$svc" "$load" "$rate")
	CUR_PREFIX=$prefix
	server_cmd "$role" "$bin" "$RES/$prefix.stats.json"
	log_cmd "${CMD[@]}"
	if ! start_server "$RES/$prefix.server.log" "${CMD[@]}"; then
		echo "failed: $WHY"
		point_line "server failed to start"
		return 1
	fi
	CMD=(taskset -c "$LOAD_CPU" "$BIN_LOAD" --port "$PORT" --rate "$rate" --mode "$MODE"
	     --seconds "$SECONDS_RUN" --warmup "$WARMUP" --seed "$SEED" --cpu "$LOAD_CPU"
	     --json "$RES/$prefix.load.json")
	[ "$MODE" = spin ] && CMD+=(--service "$SERVICE")
	[ "$HAVE_CDF" = 1 ] && CMD+=(--cdf "$RES/$prefix.cdf")
	if [ "$HAVE_IDEAL" = 1 ] && [ "$MODE" = spin ]; then
		CMD+=(--ideal-servers 1)
		# the ideal server's CDF: the same for every server at this load, kept once
		[ "$HAVE_CDF_IDEAL" = 1 ] && [ "$role" = pel ] &&
			CMD+=(--cdf-ideal "$RES/$prefix.ideal.cdf")
	fi
	log_cmd "${CMD[@]}"
	"${CMD[@]}" >"$RES/$prefix.load.log" 2>&1 {LOCK_FD}>&- &
	LOAD_PID=$!
	LOAD_RC=
	wait "$LOAD_PID"
	rc=$?
	# pel-load is done: a signal from here on does not make this run an interrupted one
	LOAD_RC=$rc
	LOAD_PID=
	stop_server
	point_result "$rc"
}

# point_result RC: the current run's outcome once pel-load ended with RC and the server is
# stopped: its summary printed, its line in points.tsv.
point_result()
{
	local rc=$1 prefix=$CUR_PREFIX status=ok why summary

	LOAD_RC=
	if [ "$rc" -ne 0 ] || [ ! -s "$RES/$prefix.load.json" ]; then
		status="pel-load exit $rc"
		# its own error line, not the usage that may follow it
		why=$(grep -m 1 '^pel-load: ' "$RES/$prefix.load.log")
		[ -n "$why" ] || why=$(tail -n 2 "$RES/$prefix.load.log" | tr '\n' ' ')
		echo "failed: $status: $why"
	else
		if summary=$("$PY" tools/pel-demo-report --point "$RES/$prefix.load.json" 2>&1)
		then
			NOK=$((NOK + 1))
		else
			status="unreadable pel-load JSON"
		fi
		echo "$summary"
	fi
	point_line "$status"
}

# point_line STATUS: the current run's line in points.tsv.
point_line()
{
	[ "${#CUR_POINT[@]}" -gt 0 ] || return 0
	printf '%s\t' "${CUR_POINT[@]}" >>"$POINTS"
	printf '%s\t%s\n' "$1" "$CUR_PREFIX" >>"$POINTS"
	CUR_POINT=()
}

# ---- the trace ----

# Record one short feed-mode run of pel-feed with LTTng (pel:* and vtid), only its own process,
# then tools/pel-trace into trace/. Returns 1 with the reason in WHY.
run_trace()
{
	local t=$RES/trace home pid rc i

	if [ "$TRACING" != 1 ]; then
		WHY="pel was built without tracepoints (lttng-ust not installed)"
		return 1
	fi
	for i in lttng lttng-sessiond babeltrace2; do
		command -v "$i" >/dev/null 2>&1 || { WHY="$i is not installed"; return 1; }
	done
	mkdir -p "$t" || return 1
	if ! lttng list >/dev/null 2>&1; then
		# no session daemon for this user: one of our own, stopped at the end
		home=$(mktemp -d /tmp/pel-demo-lttng.XXXXXX) || return 1
		SESSIOND_HOME=$home
		export LTTNG_HOME=$home
		if ! lttng-sessiond --no-kernel --daemonize --pidfile="$home/sessiond.pid" \
			>"$t/sessiond.log" 2>&1 {LOCK_FD}>&-; then
			WHY="lttng-sessiond did not start (trace/sessiond.log)"
			return 1
		fi
		SESSIOND_PID=$(cat "$home/sessiond.pid" 2>/dev/null)
		for i in $(seq 50); do
			lttng list >/dev/null 2>&1 && break
			sleep 0.1
		done
	fi
	LTTNG_SESSION=pel-demo-$$
	log_cmd lttng create "$LTTNG_SESSION" --output="$t/lttng"
	log_cmd lttng enable-event -u 'pel:*' -s "$LTTNG_SESSION"
	log_cmd lttng add-context -u -t vtid -s "$LTTNG_SESSION"
	if ! lttng create "$LTTNG_SESSION" --output="$t/lttng" >"$t/lttng.log" 2>&1 ||
	   ! lttng enable-event -u 'pel:*' -s "$LTTNG_SESSION" >>"$t/lttng.log" 2>&1 ||
	   ! lttng add-context -u -t vtid -s "$LTTNG_SESSION" >>"$t/lttng.log" 2>&1; then
		WHY="lttng create/enable-event failed (trace/lttng.log)"
		return 1
	fi
	# Only the server's own process: it waits on a fifo until its pid is tracked, then execs.
	rm -f "$t/go"
	mkfifo "$t/go" || return 1
	MODE=feed
	server_cmd pel "$BIN_PEL" "$t/stats.json"
	log_cmd lttng track -u -s "$LTTNG_SESSION" --vpid=PID
	log_cmd "${CMD[@]}"
	/bin/sh -c 'read _ < "$0" && exec "$@"' "$t/go" "${CMD[@]}" >"$t/server.log" 2>&1 \
		{LOCK_FD}>&- &
	pid=$!
	SERVER_PID=$pid
	if ! lttng untrack -u -s "$LTTNG_SESSION" --all --vpid >>"$t/lttng.log" 2>&1 ||
	   ! lttng track -u -s "$LTTNG_SESSION" --vpid="$pid" >>"$t/lttng.log" 2>&1 ||
	   ! lttng start "$LTTNG_SESSION" >>"$t/lttng.log" 2>&1; then
		echo go >"$t/go"
		stop_server
		WHY="lttng track/start failed (trace/lttng.log)"
		return 1
	fi
	echo go >"$t/go"
	PORT=
	for i in $(seq 200); do
		PORT=$(sed -n 's/^[^ ]*: serving UDP port \([0-9][0-9]*\).*/\1/p' "$t/server.log" |
		       head -n 1)
		[ -n "$PORT" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$PORT" ]; then
		stop_server
		WHY="the traced server printed no ready line (trace/server.log)"
		return 1
	fi
	CMD=(taskset -c "$LOAD_CPU" "$BIN_LOAD" --port "$PORT" --rate "$FEED_TRACE_RATE" --mode feed
	     --seconds "$TRACE_SECONDS" --warmup 0 --seed "$SEED" --cpu "$LOAD_CPU"
	     --json "$t/load.json")
	log_cmd "${CMD[@]}"
	"${CMD[@]}" >"$t/load.log" 2>&1 {LOCK_FD}>&- &
	LOAD_PID=$!
	wait "$LOAD_PID"
	rc=$?
	LOAD_PID=
	stop_server
	lttng stop "$LTTNG_SESSION" >>"$t/lttng.log" 2>&1
	lttng destroy "$LTTNG_SESSION" >>"$t/lttng.log" 2>&1
	LTTNG_SESSION=
	stop_sessiond
	[ "$rc" -eq 0 ] || echo "demo.sh: the traced run's pel-load exited $rc (trace/load.log)"
	log_cmd tools/pel-trace "$t/lttng" --plots "$t/plots"
	# report.txt only when pel-trace finished: a Ctrl-C leaves no empty one behind
	if ! "$PY" tools/pel-trace "$t/lttng" --plots "$t/plots" >"$t/report.txt.tmp" \
		2>"$t/pel-trace.err"; then
		WHY="pel-trace failed: $(tail -n 2 "$t/pel-trace.err" | tr '\n' ' ')"
		rm -f "$t/report.txt.tmp"
		return 1
	fi
	mv "$t/report.txt.tmp" "$t/report.txt" || return 1
	rm -f "$t/go"
	return 0
}

# After run_trace, whatever its end: no session, no session daemon of ours left.
trace_cleanup()
{
	if [ -n "$LTTNG_SESSION" ]; then
		lttng destroy "$LTTNG_SESSION" >/dev/null 2>&1
		LTTNG_SESSION=
	fi
	stop_sessiond
}

stop_sessiond()
{
	local i pid

	# a signal while lttng-sessiond --daemonize ran: it may be up with SESSIOND_PID not yet
	# read; its pidfile is in our home (the command line names it: the daemon is ours)
	if [ -z "$SESSIOND_PID" ] && [ -n "$SESSIOND_HOME" ]; then
		for i in $(seq 20); do
			pid=$(cat "$SESSIOND_HOME/sessiond.pid" 2>/dev/null)
			[ -n "$pid" ] && break
			pid=$(pgrep -f -- "--pidfile=$SESSIOND_HOME/sessiond.pid" | head -n 1)
			[ -n "$pid" ] && break
			sleep 0.05
		done
		[[ $pid =~ ^[0-9]+$ ]] && SESSIOND_PID=$pid
	fi
	if [ -n "$SESSIOND_PID" ]; then
		kill -TERM "$SESSIOND_PID" 2>/dev/null
		for i in $(seq 50); do
			kill -0 "$SESSIOND_PID" 2>/dev/null || break
			sleep 0.1
		done
		SESSIOND_PID=
	fi
	[ -n "$SESSIOND_HOME" ] && rm -rf "$SESSIOND_HOME"
	SESSIOND_HOME=
}

# --bench: pel-bench's suite "all" (one JSON), or, from a pel-bench without it, handoff and ring.
run_bench()
{
	local suites=(all) s rc

	"$BIN_BENCH" --help 2>&1 | grep -q '^  all ' || suites=(handoff ring)
	for s in "${suites[@]}"; do
		CMD=("$BIN_BENCH" "$s" --json "$RES/pel-bench-$s.json")
		log_cmd "${CMD[@]}"
		echo
		echo "==> ${CMD[*]}"
		"${CMD[@]}" >"$RES/pel-bench-$s.txt" 2>&1 {LOCK_FD}>&- &
		LOAD_PID=$!
		wait "$LOAD_PID"
		rc=$?
		LOAD_PID=
		cat "$RES/pel-bench-$s.txt"
		[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] ||
			echo "demo.sh: pel-bench $s failed (exit $rc)"
	done
}

# ---- the end ----

# Write the report of what is there; print its path.
finish()
{
	local rc=$1

	meta finished "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	meta interrupted "$INTERRUPTED"
	echo
	log_cmd tools/pel-demo-report "$RES"
	"$PY" tools/pel-demo-report "$RES"
	case $? in
	0) ;;
	3)
		# written: it says that no run finished
		echo "demo.sh: no run finished: report.md and results.json say so" >&2
		[ "$rc" -eq 0 ] && rc=1
		;;
	*)
		echo "demo.sh: the report could not be written (pel-demo-report failed)" >&2
		[ "$rc" -eq 0 ] && rc=1
		;;
	esac
	echo
	echo "demo.sh: results in $RES/ (report.md, results.json, plots)"
	echo "$RES"
	exit "$rc"
}

on_signal()
{
	trap '' INT TERM
	INTERRUPTED=1
	echo
	echo "demo.sh: interrupted: stopping the server and the generator, writing the report"
	[ -n "$LOAD_PID" ] && kill -TERM "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
	LOAD_PID=
	stop_server
	if [ -n "$LOAD_RC" ] && [ "${#CUR_POINT[@]}" -gt 0 ]; then
		# the signal came while the server was being stopped: pel-load had finished
		point_result "$LOAD_RC"
	else
		point_line interrupted
	fi
	if [ "$IN_TRACE" = 1 ]; then
		trace_cleanup
		rm -f "$RES/trace/report.txt.tmp"
		meta trace "interrupted while recording or reading the trace"
	fi
	meta note "interrupted by a signal after $NOK of $TOTAL runs"
	finish 130
}

# ---- main ----

main()
{
	local cpus l rate role bin

	trap 'echo; echo "demo.sh: interrupted"; exit 130' INT TERM
	# two CPUs or nothing: before anything is installed or built
	mapfile -t cpus < <(allowed_cpus)
	if [ "${#cpus[@]}" -lt 2 ]; then
		echo "demo.sh: this process may use only CPU ${cpus[*]}: the demo needs two," \
		     "one for the server's busy-polling worker, one for the load generator" >&2
		exit 1
	fi
	LOAD_CPU=${cpus[0]}
	SERVER_CPU=${cpus[${#cpus[@]} - 1]}
	if [ -n "${PEL_DEMO_BUILD:-}" ]; then
		# a build made elsewhere (a test's): used as it is
		TRACING=0
		grep -q "PEL_HAVE_LTTNG 1" "$BUILD_DIR/pel_config.h" 2>/dev/null && TRACING=1
		for bin in "$BIN_PEL" "$BIN_POOL" "$BIN_LOAD" "$BIN_CHECK"; do
			[ -x "$bin" ] || { echo "demo.sh: PEL_DEMO_BUILD: no $bin" >&2; exit 1; }
		done
		demo_lock
	else
		pel_deps_ensure --only "${DEMO_DEPS[@]}" || exit 1
		demo_lock
		demo_build || exit 1
	fi
	probe_load

	if [ -n "$OUT" ]; then
		RES=$OUT
		mkdir -p "$RES" || exit 1
		# filled by another since the options were read
		[ -z "$(ls -A "$RES")" ] ||
			{ echo "demo.sh: --out $RES: not empty any more" >&2; exit 1; }
	else
		# unique: two demos started in the same second get two folders
		mkdir -p results &&
			RES=$(mktemp -d "results/demo-$(date -u +%Y%m%d-%H%M%S)-XXXXXX") &&
			chmod 755 "$RES" || exit 1
	fi
	mkdir -p "$RES/runs" || exit 1
	RES=$(cd "$RES" && pwd) || exit 1
	POINTS=$RES/points.tsv
	CMDS=$RES/commands.txt
	: >"$RES/meta.tsv"
	: >"$CMDS"
	printf 'server\trole\tmode\tservice\tload\trate\tstatus\tprefix\n' >"$POINTS"
	meta started "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	meta kernel "$(uname -sr)"
	meta cpu_model "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	meta cpus "$(nproc --all)"
	meta server_cpu "$SERVER_CPU"
	meta load_cpu "$LOAD_CPU"
	meta profile "$([ "$QUICK" = 1 ] && echo quick || echo full)"
	meta commit "$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
	trap on_signal INT TERM

	echo
	log_cmd "$BIN_CHECK" --cpus "$SERVER_CPU"
	"$BIN_CHECK" --cpus "$SERVER_CPU" >"$RES/pel-check.txt" 2>&1
	if "$BIN_CHECK" --cpus "$SERVER_CPU" --json >"$RES/pel-check.json" 2>/dev/null ||
	   [ -s "$RES/pel-check.json" ]; then
		"$PY" tools/pel-demo-report --check-summary "$RES/pel-check.json" ||
			cat "$RES/pel-check.txt"
	else
		echo "demo.sh: pel-check failed: $(head -n 2 "$RES/pel-check.txt")"
	fi

	TOTAL=$((2 * ${#LOAD_LIST[@]}))
	[ "$FEED_RATE" -gt 0 ] && TOTAL=$((TOTAL + 2))
	FEED_TRACE_RATE=$FEED_RATE
	[ "$FEED_TRACE_RATE" -gt 0 ] || FEED_TRACE_RATE=10000
	echo
	echo "demo: $(basename "$BIN_PEL") (pel) and $(basename "$BIN_POOL") (epoll + thread" \
	     "pool) on CPU $SERVER_CPU, pel-load on CPU $LOAD_CPU; $TOTAL runs of" \
	     "$WARMUP + $SECONDS_RUN s, about $(awk -v n="$TOTAL" -v s="$SECONDS_RUN" \
	     -v w="$WARMUP" 'BEGIN { printf "%d", n * (s + w + 0.6) + 0.5 }') s"
	[ "$HAVE_IDEAL" = 1 ] ||
		echo "demo: this pel-load has no --ideal-servers: no ideal FCFS column"
	[ "$HAVE_CDF" = 1 ] || echo "demo: this pel-load has no --cdf: no CDF plot"
	for l in "${LOAD_LIST[@]}"; do
		rate=$(load_rate "$l")
		for role in pel pool; do
			bin=$BIN_PEL
			[ "$role" = pool ] && bin=$BIN_POOL
			run_point "$role" "$bin" spin "$l" "$rate" "spin-$l"
		done
	done
	if [ "$FEED_RATE" -gt 0 ]; then
		for role in pel pool; do
			bin=$BIN_PEL
			[ "$role" = pool ] && bin=$BIN_POOL
			run_point "$role" "$bin" feed 0 "$FEED_RATE" "feed-$FEED_RATE"
		done
	fi

	if [ "$TRACE" = 1 ]; then
		printf 'trace: %s feed mode at %s/s for %s s under LTTng ... ' \
			"$(basename "$BIN_PEL")" "$FEED_TRACE_RATE" "$TRACE_SECONDS"
		IN_TRACE=1
		if run_trace; then
			echo "done: trace/report.txt"
			meta trace "recorded: trace/lttng, report trace/report.txt"
		else
			echo "skipped: $WHY"
			meta trace "$WHY"
		fi
		trace_cleanup
		IN_TRACE=0
	else
		meta trace "not asked for (--no-trace)"
	fi

	[ "$BENCH" = 1 ] && run_bench

	trap '' INT TERM	# the report is short; let it finish
	[ "$NOK" -gt 0 ] || { meta note "no run finished"; finish 1; }
	finish 0
}

main "$@"
