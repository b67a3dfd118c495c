#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/bench/test_pel_bench_cli.sh - pel-bench's command line, "all" in particular.
#
#	test_pel_bench_cli.sh PEL_BENCH
#
# Running the suites takes minutes of both CPUs, too long for CI: this checks what is refused
# before any suite runs. Bad usage exits 2 with a message and the usage on stderr, nothing on
# stdout; --help lists "all"; "all --json" into a directory that does not exist fails (exit 1)
# at once instead of after every suite; options of any suite are taken by "all".
set -u

BENCH=${1:?usage: test_pel_bench_cli.sh PEL_BENCH}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

fail()
{
	echo "FAIL: $*"
	exit 1
}

while IFS= read -r args; do
	# shellcheck disable=SC2086
	"$BENCH" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "pel-bench $args: exit $rc, expected 2"
	grep -q '^usage: pel-bench' "$tmp/err" || fail "pel-bench $args: no usage on stderr"
	grep -q '^pel-bench: ' "$tmp/err" || fail "pel-bench $args: no message on stderr"
	[ -s "$tmp/out" ] && fail "pel-bench $args: wrote to stdout"
done <<'ARGS'
nosuch
all --bogus
all extra
all --slots 3
all --samples 5
all --reps 0
all --items x
all --cpus 0,0
all --cpus 0
all --json
ring --seconds 1
pool --slots 64
ARGS
"$BENCH" >/dev/null 2>&1
[ $? -eq 2 ] || fail "pel-bench without a suite: expected exit 2"

"$BENCH" --help >"$tmp/out" 2>&1 || fail "pel-bench --help: exit $?"
grep -q '^  all ' "$tmp/out" || fail "pel-bench --help does not list all"

# every suite's options together are accepted; the file is refused before any suite runs
"$BENCH" all --json "$tmp/no/such/dir/all.json" --slots 64 --items 1k --reps 1 --samples 100 \
	--interval-ns 1000 --rounds 1 --seconds 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "skip: $(cat "$tmp/err")"
	exit 77
fi
[ "$rc" -eq 1 ] || fail "pel-bench all --json into a missing directory: exit $rc, expected 1"
grep -q 'no/such/dir/all.json' "$tmp/err" || fail "no message naming the file: $(cat "$tmp/err")"
grep -q '^== pel-bench' "$tmp/out" && fail "a suite ran before the --json file was refused"
echo "ok: pel-bench refuses bad usage of all and checks its --json file first"
