#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/demo.sh - the README's "main job": build pel for release and show what it does. Works
# from any directory.
#
#	tools/demo.sh [pel-bench options...]
#
# Today it runs pel-bench's two suites, each printing its report:
#	build-demo/bench/pel-bench handoff [options]	pel_submit() -> task start latency
#	build-demo/bench/pel-bench ring [options]	cross-core ring throughput
# Options go to both runs, except those `pel-bench --help` lists under one suite's options
# (e.g. --samples: handoff only, --slots: ring only), and --json FILE, which each suite writes with
# its name added (out.json: out-handoff.json, out-ring.json).
#
# Exit: 0 every step ran, or was skipped (pel-bench exits 77 on a host with fewer than 2 CPUs);
# 1 the build or a step failed; 2 bad usage.
#
# To replace the demo (e.g. with a demo service): change DEMO_STEPS, demo_describe and demo_step;
# the dependency check, the release build, the header and the exit status stay.

set -euo pipefail

top=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$top"
# shellcheck source=tools/deps.sh
. "$top/tools/deps.sh"

BUILD_DIR=build-demo
BUILD_OPTS=(-Dbuildtype=release -Dtests=false)
BENCH=$BUILD_DIR/bench/pel-bench

# ---- the demo: what it runs ----

DEMO_STEPS=(handoff ring)

# What step $1 shows, from pel-bench's own --help (its "suites:" section).
demo_describe()
{
	"$BENCH" --help 2>/dev/null | awk -v s="$1" '
		/^suites:/ { on = 1; next }
		on && /^[^ ]/ { exit }
		on && $1 == s { sub(/^ *[^ ]+ +/, ""); print; more = 1; next }
		on && more && /^      / { sub(/^ +/, ""); print; next }
		{ more = 0 }'
}

# The options pel-bench --help lists under "$1 options:", one a line: "--name arg" or "--name flag".
suite_opts()
{
	"$BENCH" --help 2>/dev/null | awk -v s="$1 options:" '
		$0 == s { on = 1; next }
		/^[^ ].*:$/ || /^$/ { on = 0 }
		on && $1 ~ /^--/ { print $1, ($2 ~ /^[A-Z][A-Z,]*$/ ? "arg" : "flag") }'
}

# Route the user's options ("$@") to the steps: STEP_ARGS[name] holds each step's share.
declare -A STEP_ARGS
route_args()
{
	local step opt key kind owner json='' common=()
	declare -A owner_of kind_of

	for step in "${DEMO_STEPS[@]}"; do
		STEP_ARGS[$step]=
		while read -r opt kind; do
			[ -n "$opt" ] || continue
			owner_of[$opt]=$step
			kind_of[$opt]=$kind
		done < <(suite_opts "$step")
	done
	while [ $# -gt 0 ]; do
		key=${1%%=*}
		case $1 in
		--json)
			[ $# -ge 2 ] || { echo "demo.sh: --json needs a file" >&2; exit 2; }
			json=$2
			shift 2
			continue
			;;
		--json=*)
			json=${1#--json=}
			shift
			continue
			;;
		esac
		owner=${owner_of[$key]:-}
		if [ -z "$owner" ]; then
			common+=("$1")
		elif [ "$key" = "$1" ] && [ "${kind_of[$key]}" = arg ]; then
			[ $# -ge 2 ] || { echo "demo.sh: $1 needs a value" >&2; exit 2; }
			STEP_ARGS[$owner]+=" $(printf '%q %q' "$1" "$2")"
			shift
		else
			STEP_ARGS[$owner]+=" $(printf '%q' "$1")"
		fi
		shift
	done
	for step in "${DEMO_STEPS[@]}"; do
		opt=
		[ "${#common[@]}" -eq 0 ] || opt=$(printf ' %q' "${common[@]}")
		if [ -n "$json" ]; then
			case $json in
			*.json) opt+=" $(printf -- '--json %q' "${json%.json}-$step.json")" ;;
			*) opt+=" $(printf -- '--json %q' "$json-$step")" ;;
			esac
		fi
		STEP_ARGS[$step]=$opt${STEP_ARGS[$step]}
	done
}

# The command line of step $1, in CMD.
step_cmd()
{
	eval "CMD=(\"\$BENCH\" \"\$1\" ${STEP_ARGS[$1]})"
}

# Run step $1. Returns 0 ran or skipped, 1 failed.
demo_step()
{
	local rc=0

	step_cmd "$1"
	echo
	echo "==> ${CMD[*]}"
	"${CMD[@]}" || rc=$?
	case $rc in
	0) return 0 ;;
	77)
		echo "demo.sh: $1 skipped: this host cannot run it (pel-bench exit 77)"
		return 0
		;;
	*)
		echo "demo.sh: $1 failed (pel-bench exit $rc)" >&2
		return 1
		;;
	esac
}

# ---- build, header, run ----

demo_build()
{
	local log

	log=$(mktemp)
	echo "demo.sh: building pel for release in $BUILD_DIR/ (${BUILD_OPTS[*]})"
	if ! { [ -f "$BUILD_DIR/meson-private/coredata.dat" ] &&
	       meson setup --reconfigure "$BUILD_DIR" "${BUILD_OPTS[@]}" >"$log" 2>&1; }; then
		rm -rf "$BUILD_DIR"
		if ! meson setup "$BUILD_DIR" "${BUILD_OPTS[@]}" >"$log" 2>&1; then
			cat "$log" >&2
			rm -f "$log"
			echo "demo.sh: meson setup failed" >&2
			return 1
		fi
	fi
	if ! meson compile -C "$BUILD_DIR" >>"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		echo "demo.sh: build failed" >&2
		return 1
	fi
	mv "$log" "$BUILD_DIR/demo-build.log"
	if [ ! -x "$BENCH" ]; then
		echo "demo.sh: $BENCH was not built (-Dbench=false?)" >&2
		return 1
	fi
}

demo_header()
{
	local step

	echo "pel demo: pel built for release, on $(nproc) CPUs ($(uname -sr)). It runs:"
	for step in "${DEMO_STEPS[@]}"; do
		step_cmd "$step"
		echo "  ${CMD[*]}"
		demo_describe "$step" | sed 's/^/      /'
	done
}

main()
{
	local step failed=0

	# shellcheck disable=SC2119 # no extra packages
	pel_deps_ensure || exit 1
	demo_build || exit 1
	route_args "$@"
	echo
	demo_header
	for step in "${DEMO_STEPS[@]}"; do
		demo_step "$step" || failed=1
	done
	return "$failed"
}

main "$@"
