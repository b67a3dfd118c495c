#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/demo/test_demo_args.sh - tools/demo.sh's command line: bad input exits 2 with a message
# naming the problem on stderr and nothing on stdout, before anything is installed or built;
# --help prints the usage and exits 0.
#
#	test_demo_args.sh DEMO_SH
set -u

DEMO=${1:?usage: test_demo_args.sh DEMO_SH}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# args<TAB>what stderr must say
while IFS=$'\t' read -r args want; do
	# shellcheck disable=SC2086 # the fields are words
	timeout 20 "$DEMO" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 2 ]; then
		echo "FAIL demo.sh $args: exit $rc, expected 2"
		fail=1
	elif [ -s "$tmp/out" ]; then
		echo "FAIL demo.sh $args: wrote to stdout: $(head -n 2 "$tmp/out")"
		fail=1
	elif ! grep -qF -- "demo.sh: $want" "$tmp/err"; then
		echo "FAIL demo.sh $args: stderr lacks 'demo.sh: $want': $(cat "$tmp/err")"
		fail=1
	elif grep -q 'building\|deps:' "$tmp/err"; then
		echo "FAIL demo.sh $args: went on to install or build"
		fail=1
	else
		echo "ok   demo.sh $args: exit 2, $(head -n 1 "$tmp/err")"
	fi
done <<'ARGS'
--bogus	unknown argument '--bogus'
extra	unknown argument 'extra'
--quick --bogus	unknown argument '--bogus'
-q	unknown argument '-q'
--loads	--loads needs a value
--loads abc	--loads abc: write percents
--loads 30,,50	--loads 30,,50: write percents
--loads 0	--loads 0: 0 is not in (0, 200] %
--loads 50,300	--loads 50,300: 300 is not in (0, 200] %
--seconds	--seconds needs a value
--seconds 0	--seconds 0: not a number of seconds
--seconds -1	--seconds -1: not a number of seconds
--seconds=abc	--seconds abc: not a number of seconds
--seconds 0.0009	--seconds 0.0009: not a number of seconds in 0.001 .. 86400
--seconds 86401	--seconds 86401: not a number of seconds in 0.001 .. 86400
--loads 0.00001	--loads 0.00001 % of --service exp:10us is 0 requests/s; pel-load sends 1 .. 100M/s
--service exp:1ns --loads 200	--loads 200 % of --service exp:1ns is 2000000000 requests/s
--service lognormal:1us	--service lognormal:1us: write fixed:1us
--service exp:10	--service exp:10: write fixed:1us
--service exp:0us	--service exp:0us: a mean of 0
--feed-rate x	--feed-rate x: not a whole number
--seed -3	--seed -3: not a whole number
--out	--out needs a value
--quick=yes	--quick takes no value
--no-trace=1	--no-trace takes no value
ARGS

# --out: a folder that holds anything (an older run's files would join this report), a file
mkdir "$tmp/used" && : >"$tmp/used/points.tsv" && : >"$tmp/file"
for o in "$tmp/used:not empty; give a new or empty folder" \
	 "$tmp/file:exists and is not a directory"; do
	timeout 20 "$DEMO" --out "${o%%:*}" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq 2 ] && [ ! -s "$tmp/out" ] && grep -qF -- "${o#*:}" "$tmp/err" &&
	   ! grep -q 'building\|deps:' "$tmp/err"; then
		echo "ok   demo.sh --out ${o%%:*}: exit 2, $(head -n 1 "$tmp/err")"
	else
		echo "FAIL demo.sh --out ${o%%:*}: exit $rc, $(cat "$tmp/err")"
		fail=1
	fi
done

# The packages: what the demo runs, each named once, not tools/test.sh's whole list (a fake
# dpkg-query that knows none, a fake id that is not root: the apt-get line, exit 1). Two CPUs
# are checked first: on one, demo.sh stops there.
if [ "$(nproc)" -ge 2 ]; then
	mkdir "$tmp/bin" || exit 1
	printf '#!/bin/sh\nexit 1\n' >"$tmp/bin/dpkg-query"
	printf '#!/bin/sh\necho 1000\n' >"$tmp/bin/id"
	chmod +x "$tmp/bin/dpkg-query" "$tmp/bin/id"
	PATH=$tmp/bin:$PATH timeout 20 "$DEMO" --out "$tmp/deps-out" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	line=$(grep '^sudo apt-get install' "$tmp/err")
	# shellcheck disable=SC2086 # the words of the line
	dups=$(printf '%s\n' $line | sort | uniq -d | tr '\n' ' ')
	if [ "$rc" -eq 1 ] && [ -n "$line" ] && [ -z "$dups" ] &&
	   ! grep -qw 'sockperf\|clang\|libdpdk-dev\|libcmocka-dev' <<<"$line" &&
	   grep -qw 'python3-bt2' <<<"$line" && grep -qw 'ninja-build' <<<"$line" &&
	   [ ! -e "$tmp/deps-out" ]; then
		echo "ok   demo.sh, no package installed: exit 1, $line"
	else
		echo "FAIL demo.sh, no package installed: exit $rc, twice: '$dups', $(cat "$tmp/err")"
		fail=1
	fi
fi

if timeout 20 "$DEMO" --help >"$tmp/out" 2>"$tmp/err" && grep -q -- '--quick' "$tmp/out" &&
   grep -q 'tools/demo.sh \[--quick\]' "$tmp/out" && [ ! -s "$tmp/err" ]; then
	echo "ok   demo.sh --help: exit 0, the usage on stdout"
else
	echo "FAIL demo.sh --help: $(cat "$tmp/err")"
	fail=1
fi
exit $fail
