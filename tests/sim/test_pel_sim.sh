#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/sim/test_pel_sim.sh - pel-sim's command line.
#
#	test_pel_sim.sh PEL_SIM
#
# Bad input: exit 2, a message naming the option and the usage text, never a crash. Good input:
# exit 0, one row per policy, load and worker count, the same output for the same seed; --csv
# and --json hold the same rows (the JSON is checked with python3 when there is one).
set -u

SIM=${1:?usage: test_pel_sim.sh PEL_SIM}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

fail()
{
	echo "FAIL: $*"
	exit 1
}

while IFS= read -r args; do
	# shellcheck disable=SC2086
	"$SIM" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "pel-sim $args: exit $rc, expected 2"
	grep -q '^usage: pel-sim' "$tmp/err" || fail "pel-sim $args: no usage line on stderr"
	grep -q '^pel-sim: ' "$tmp/err" || fail "pel-sim $args: no message on stderr"
	[ -s "$tmp/out" ] && fail "pel-sim $args: wrote to stdout"
done <<'ARGS'
--workers 0
--workers 65
--workers 4,,8
--workers 4,
--workers x
--load 0
--load 1
--load 1.5
--load 0.5,abc
--load nan
--policy fifo
--policy jsq,
--service exp:10
--service exp:-1us
--service bimodal:100:1us:2us
--service lognormal:1us
--arrivals uniform
--arrivals bursty:0
--requests 10
--requests 2G
--requests 1x
--warmup 600 --requests 1000
--seed -1
--steal-cost -1us
--steal-cost 1
--bogus
--seed
extra
ARGS

"$SIM" --help | grep -q '^usage: pel-sim' || fail "--help: no usage on stdout"

args="--policy all --workers 4,16 --load 0.3,0.9 --requests 20k --seed 7"
# shellcheck disable=SC2086
"$SIM" $args >"$tmp/a" || fail "pel-sim $args: exit $?"
# shellcheck disable=SC2086
"$SIM" $args >"$tmp/b" || fail "pel-sim $args (again): exit $?"
cmp -s "$tmp/a" "$tmp/b" || fail "pel-sim $args: two runs differ"
rows=$(grep -cE '^(cfcfs|dfcfs|jsq|p2c|steal) ' "$tmp/a")
[ "$rows" -eq 20 ] || fail "pel-sim $args: $rows rows, expected 5 x 2 x 2"
# shellcheck disable=SC2086
"$SIM" $args --seed 8 >"$tmp/c" || fail "pel-sim $args --seed 8: exit $?"
cmp -s "$tmp/a" "$tmp/c" && fail "pel-sim: seeds 7 and 8 gave the same table"

for svc in fixed:1us exp:10us bimodal:90:5us:55us bimodal:99.5:0.5us:500us; do
	for arr in poisson fixed bursty bursty:4; do
		a="--policy steal,p2c --workers 8 --load 0.8 --service $svc --arrivals $arr"
		a="$a --requests 5k --steal-cost 200ns --csv --json $tmp/j.json"
		# shellcheck disable=SC2086
		"$SIM" $a >"$tmp/csv" || fail "pel-sim $a: exit $?"
		[ "$(head -1 "$tmp/csv" | cut -d, -f1)" = policy ] ||
			fail "pel-sim $a: no CSV header"
		[ "$(wc -l <"$tmp/csv")" -eq 3 ] || fail "pel-sim $a: expected 2 CSV rows"
		if command -v python3 >/dev/null; then
			python3 - "$tmp/j.json" "$tmp/csv" <<'PY' || fail "pel-sim $a: JSON"
import csv, json, sys
j = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
assert j["bench"] == "sim" and len(j["results"]) == len(rows) == 2, j
for r, c in zip(j["results"], rows):
    assert r["policy"] == c["policy"], (r, c)
    assert abs(r["p99_us"] - float(c["p99_us"])) <= 1e-3 * r["p99_us"] + 1e-3, (r, c)
    assert 0 < r["p50_us"] <= r["p90_us"] <= r["p99_us"] <= r["p99.9_us"] <= r["max_us"], r
PY
		fi
	done
done
echo "pel-sim command line: ok"
