#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/test.sh - build pel in each CI configuration and run its tests: the README's "run every
# test" command (.ci/run runs it). Works from any directory.
#
#	tools/test.sh			gcc, clang, asan, tsan, fuzz
#	tools/test.sh --quick		gcc only
#	tools/test.sh --only gcc,asan	the named configs
#	CI=true tools/test.sh		also prints the last 200 lines of each failing test's log
#
# Each config builds in build-test/<config>, reused while it was set up with the same compiler and
# options (else wiped). A failing config does not stop the others. At the end: one line per config,
# then, as the last line, "tests: N passed, N failed". A config that does not set up or compile
# counts as one failed test. Exit 0 when nothing failed, else 1.
#
#	gcc	gcc, -Dwerror=true, debugoptimized; every suite
#	clang	clang, -Dwerror=true, debugoptimized; every suite
#	asan	clang, ASan + UBSan (leaks detected, first error fatal); every suite
#	tsan	clang, TSan, -Dtracing=disabled; suite "concurrency"
#	fuzz	clang, libFuzzer target fuzz_config for FUZZ_SECONDS (30) on a copy of its corpus;
#		one test

set -uo pipefail

top=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd) || exit 1
cd "$top" || exit 1
# shellcheck source=tools/deps.sh
. "$top/tools/deps.sh"

ALL_CONFIGS=(gcc clang asan tsan fuzz)
BUILD_ROOT=build-test
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
PY=/usr/bin/python3	# Debian's: meson needs it; the python3 on PATH may be another build

usage()
{
	sed -n '4,22s/^# \{0,1\}//p' "$top/tools/test.sh"
}

configs=("${ALL_CONFIGS[@]}")
while [ $# -gt 0 ]; do
	case $1 in
	--quick)
		configs=(gcc)
		;;
	--only)
		[ $# -ge 2 ] || { echo "test.sh: --only needs a list, e.g. --only gcc,asan" >&2; exit 2; }
		IFS=, read -r -a configs <<<"$2"
		shift
		;;
	--only=*)
		IFS=, read -r -a configs <<<"${1#--only=}"
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "test.sh: unknown argument '$1'" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done
[ "${#configs[@]}" -gt 0 ] || { echo "test.sh: no config chosen" >&2; exit 2; }
for c in "${configs[@]}"; do
	case " ${ALL_CONFIGS[*]} " in
	*" $c "*) ;;
	*)
		echo "test.sh: unknown config '$c' (known: ${ALL_CONFIGS[*]})" >&2
		exit 2
		;;
	esac
done

# shellcheck disable=SC2119 # no extra packages
if ! pel_deps_ensure; then
	echo "tests: 0 passed, 1 failed"
	exit 1
fi

# ---- one config ----

# config_def NAME: what NAME builds and runs.
#   CFG_CC	compiler
#   CFG_OPTS	meson setup options
#   CFG_ENV	VAR=value for the test run
#   CFG_TEST	meson test arguments beyond the common ones
#   CFG_KIND	meson (meson test) or fuzz (libFuzzer run)
config_def()
{
	CFG_ENV=()
	CFG_TEST=()
	CFG_KIND=meson
	case $1 in
	gcc)
		CFG_CC=gcc
		CFG_OPTS=(-Dwerror=true -Dbuildtype=debugoptimized)
		;;
	clang)
		CFG_CC=clang
		CFG_OPTS=(-Dwerror=true -Dbuildtype=debugoptimized)
		;;
	asan)
		CFG_CC=clang
		# shellcheck disable=SC2054 # the commas are meson's
		CFG_OPTS=(-Db_sanitize=address,undefined -Db_lundef=false -Dstress_tasks=200000)
		CFG_ENV=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
		CFG_TEST=(--timeout-multiplier 3)
		;;
	tsan)
		CFG_CC=clang
		# LTTng-UST reads its tracepoint state words with plain loads and updates them
		# RCU-style from its own threads: TSan reports that as a race (seen once in ~12
		# runs). This job checks pel's own concurrency, so it builds without tracepoints.
		CFG_OPTS=(-Db_sanitize=thread -Db_lundef=false -Dstress_tasks=100000 -Dtracing=disabled)
		CFG_ENV=(TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)
		CFG_TEST=(--suite concurrency --timeout-multiplier 5)
		;;
	fuzz)
		CFG_CC=clang
		CFG_OPTS=(-Dfuzz=enabled -Dtests=false -Dbench=false)
		CFG_KIND=fuzz
		;;
	esac
}

# Sanitizers of clang 14 cannot map their shadow memory when the kernel randomizes mmap with
# more than 28 bits; run their tests without ASLR there (setarch -R), if we are allowed to.
sanitizer_wrapper()
{
	local bits

	bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null) || return 0
	[ "$bits" -gt 28 ] 2>/dev/null || return 0
	setarch "$(uname -m)" -R true 2>/dev/null || return 0
	echo "setarch $(uname -m) -R"
}

# setup DIR CC OPTS...: meson setup DIR, reusing it when it was set up the same way.
setup()
{
	local dir=$1 cc=$2 stamp
	shift 2
	stamp="CC=$cc CFLAGS=${CFLAGS:-} LDFLAGS=${LDFLAGS:-} meson $(meson --version) $*"

	if [ -f "$dir/meson-private/coredata.dat" ] && [ -f "$dir/.pel-test-setup" ] &&
	   [ "$(cat "$dir/.pel-test-setup")" = "$stamp" ]; then
		if CC=$cc meson setup --reconfigure "$dir" "$@"; then
			return 0
		fi
		echo "test.sh: reconfiguring $dir failed; setting it up afresh"
	fi
	rm -rf "$dir"
	CC=$cc meson setup "$dir" "$@" || return 1
	printf '%s\n' "$stamp" >"$dir/.pel-test-setup"
}

# count_meson LOG.json: "passed failed skipped" from meson's test log, then the names of the
# failed tests, one a line.
count_meson()
{
	"$PY" - "$1" <<'EOF'
import json, sys
passed = failed = skipped = 0
bad = []
try:
    lines = open(sys.argv[1], encoding='utf-8', errors='replace').read().splitlines()
except OSError:
    lines = []
for line in lines:
    try:
        t = json.loads(line)
    except ValueError:
        continue
    r = t.get('result')
    if r in ('OK', 'EXPECTEDFAIL'):
        passed += 1
    elif r == 'SKIP':
        skipped += 1
    else:                       # FAIL TIMEOUT UNEXPECTEDPASS ERROR, and anything new
        failed += 1
        bad.append(t.get('name', '?'))
print(passed, failed, skipped)
for name in bad:
    print(name)
EOF
}

# failed_logs LOG.txt NAME...: the last 200 lines of each named test's section of meson's log.
failed_logs()
{
	local log=$1
	shift
	"$PY" - "$log" "$@" <<'EOF'
import re, sys
path, names = sys.argv[1], sys.argv[2:]
try:
    text = open(path, encoding='utf-8', errors='replace').read()
except OSError as e:
    print('(no %s: %s)' % (path, e.strerror))
    sys.exit(0)
# Sections start with "==== i/n ====" and name their test on a "test:" line, "suite / name".
sections = re.split(r'(?m)^(?==+ \d+/\d+ =+$)', text)
for name in names:
    found = False
    for s in sections:
        m = re.search(r'(?m)^test:\s+(.*)$', s)
        if m and (m.group(1).strip() == name or m.group(1).strip().endswith(' / ' + name)):
            lines = s.rstrip('\n').split('\n')
            # up to the rule that closes the section (the last one is followed by the summary)
            rules = [i for i, l in enumerate(lines) if i > 0 and re.fullmatch(r'=+', l)]
            if rules:
                lines = lines[:rules[0] + 1]
            print('---- %s: last %d of %d lines of %s ----' % (name, min(200, len(lines)), len(lines), path))
            print('\n'.join(lines[-200:]))
            found = True
    if not found:
        print('---- %s: not found in %s ----' % (name, path))
EOF
}

# run_meson_tests NAME DIR: meson test; sets R_PASS R_FAIL R_SKIP, R_BAD (failed test names) and
# R_LOG (meson's log, without .json/.txt).
run_meson_tests()
{
	local name=$1 dir=$2 rc out wrapper
	local args=(-C "$dir" --no-rebuild --print-errorlogs --num-processes 1 "${CFG_TEST[@]}")

	R_LOG=$dir/meson-logs/testlog
	if [ "$name" = asan ] || [ "$name" = tsan ]; then
		wrapper=$(sanitizer_wrapper)
		if [ -n "$wrapper" ]; then
			args+=(--wrapper "$wrapper")
			R_LOG+=-${wrapper%% *}	# meson names the log after the wrapper
		fi
	fi
	rm -f "$R_LOG.json" "$R_LOG.txt"
	echo "==> $name: meson test ${args[*]}"
	env "${CFG_ENV[@]}" meson test "${args[@]}"
	rc=$?

	out=$(count_meson "$R_LOG.json") || out="0 0 0"
	read -r R_PASS R_FAIL R_SKIP <<<"$(head -n 1 <<<"$out")"
	: "${R_PASS:=0}" "${R_FAIL:=0}" "${R_SKIP:=0}"
	mapfile -t R_BAD < <(tail -n +2 <<<"$out")
	if [ "$rc" -ne 0 ] && [ "$R_FAIL" -eq 0 ]; then
		echo "test.sh: $name: meson test exited $rc with no failed test in testlog.json"
		R_FAIL=1
		R_BAD+=("(meson test exit $rc)")
	elif [ $((R_PASS + R_FAIL + R_SKIP)) -eq 0 ]; then
		echo "test.sh: $name: no test ran (meson test ${CFG_TEST[*]})"
		R_FAIL=1
		R_BAD+=("(no test ran)")
	fi
}

# run_fuzz NAME DIR: the libFuzzer target for FUZZ_SECONDS on a copy of the seed corpus.
run_fuzz()
{
	local name=$1 dir=$2 bin tmp rc=0 art first wrapper
	bin=$dir/tests/fuzz/fuzz_config

	R_PASS=0 R_FAIL=1 R_SKIP=0 R_BAD=(fuzz_config)
	if [ ! -x "$bin" ]; then
		echo "test.sh: $name: $bin was not built"
		return
	fi
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/pel-fuzz.XXXXXX") || return
	cp -r tests/fuzz/corpus "$tmp/corpus"
	mkdir "$tmp/artifacts"
	echo "==> $name: $bin -max_total_time=$FUZZ_SECONDS (corpus copy in $tmp)"
	read -r -a wrapper <<<"$(sanitizer_wrapper)"
	# From $tmp: whatever libFuzzer writes lands there, never in the repository.
	(cd "$tmp" && "${wrapper[@]+"${wrapper[@]}"}" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$top/$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$tmp/artifacts/" corpus >"$tmp/fuzz.log" 2>&1) || rc=$?

	if [ "$rc" -eq 0 ] && ! grep -Eq 'ERROR: (Address|Leak|Thread|Memory|Undefined)Sanitizer|runtime error:|ERROR: libFuzzer|deadly signal|==[0-9]+== ?ERROR' "$tmp/fuzz.log" &&
	   [ -z "$(ls -A "$tmp/artifacts")" ]; then
		grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^stat::new_units_added' "$tmp/fuzz.log"
		R_PASS=1 R_FAIL=0 R_BAD=()
		rm -rf "$tmp"
		return
	fi

	# The report: from the first line that says what broke, else the end of the output.
	first=$(grep -n -m 1 -E 'broken promise|ERROR: |runtime error:|deadly signal' "$tmp/fuzz.log" |
		cut -d: -f1)
	if [ -n "$first" ]; then
		echo "test.sh: $name: fuzz_config failed (exit $rc):"
		tail -n +"$first" "$tmp/fuzz.log" | head -n 80
	else
		echo "test.sh: $name: fuzz_config failed (exit $rc); the end of its output:"
		tail -n 60 "$tmp/fuzz.log"
	fi
	# Keep the failing inputs in the build dir (ignored by git), never in tests/fuzz/corpus.
	art=$top/$dir/fuzz-artifacts
	mkdir -p "$art"
	cp "$tmp/fuzz.log" "$art/fuzz.log"
	cp "$tmp"/artifacts/* "$art/" 2>/dev/null
	echo "test.sh: $name: log and failing inputs in $art; replay one with: $bin $art/<file>"
	rm -rf "$tmp"
}

# run_config NAME: set up, build, test; sets R_PASS R_FAIL R_SKIP R_BAD.
run_config()
{
	local name=$1 dir=$BUILD_ROOT/$1

	config_def "$name"
	R_PASS=0 R_FAIL=1 R_SKIP=0 R_BAD=("(build)") R_LOG=$dir/meson-logs/testlog
	echo "==> $name: CC=$CFG_CC meson setup $dir ${CFG_OPTS[*]}"
	if ! setup "$dir" "$CFG_CC" "${CFG_OPTS[@]}"; then
		echo "test.sh: $name: meson setup failed"
		R_BAD=("(meson setup)")
		return
	fi
	echo "==> $name: meson compile -C $dir"
	if ! meson compile -C "$dir"; then
		echo "test.sh: $name: build failed"
		R_BAD=("(compile)")
		return
	fi
	if [ "$CFG_KIND" = fuzz ]; then
		run_fuzz "$name" "$dir"
	else
		run_meson_tests "$name" "$dir"
	fi
}

# ---- all of them ----

mkdir -p "$BUILD_ROOT"
declare -A res_line res_bad res_fail res_log
total_pass=0
total_fail=0
for c in "${configs[@]}"; do
	echo
	echo "======== $c ========"
	start=$SECONDS
	run_config "$c"
	secs=$((SECONDS - start))
	: "${R_PASS:=0}" "${R_FAIL:=0}" "${R_SKIP:=0}"
	total_pass=$((total_pass + R_PASS))
	total_fail=$((total_fail + R_FAIL))
	res_line[$c]="$c: $R_PASS passed, $R_FAIL failed, $R_SKIP skipped ($((secs / 60))m$((secs % 60))s)"
	res_fail[$c]=$R_FAIL
	res_log[$c]=$R_LOG
	res_bad[$c]=$(printf '%s\n' "${R_BAD[@]+"${R_BAD[@]}"}")
	echo "==> ${res_line[$c]}"
done

echo
if [ "${CI:-}" = true ]; then
	for c in "${configs[@]}"; do
		[ "${res_fail[$c]}" -gt 0 ] || continue
		config_def "$c"
		if [ "$CFG_KIND" = fuzz ]; then
			log=$BUILD_ROOT/$c/fuzz-artifacts/fuzz.log
			[ -f "$log" ] || continue
			echo "======== $c: last 200 lines of $log ========"
			tail -n 200 "$log"
			echo
			continue
		fi
		# Test names only: "(compile)" and the like have no log of their own.
		mapfile -t names < <(grep -v '^(' <<<"${res_bad[$c]}" | grep -v '^$')
		[ "${#names[@]}" -gt 0 ] || continue
		echo "======== $c: logs of failing tests ========"
		failed_logs "${res_log[$c]}.txt" "${names[@]}"
		echo
	done
fi

echo "======== summary ========"
for c in "${configs[@]}"; do
	echo "${res_line[$c]}"
	if [ "${res_fail[$c]}" -gt 0 ] && [ -n "${res_bad[$c]}" ]; then
		echo "    failed: $(paste -sd, - <<<"${res_bad[$c]}" | sed 's/,/, /g')"
	fi
done
echo "tests: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
