# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# tools/deps.sh - sourced by tools/*.sh: make sure the Debian packages pel builds, tests and
# traces with are installed. Debian 12 (bookworm); packages come from Debian's archive only.
#
#	. "$top/tools/deps.sh"
#	pel_deps_ensure || exit 1		# the list below
#	pel_deps_ensure gdb || exit 1		# the list below and gdb
#	pel_deps_ensure --only meson gcc || exit 1	# only these (tools/demo.sh: what it runs)
#
# Nothing missing: does nothing (no apt-get update). Root: apt-get update once, then installs
# what is missing, without recommends and without reading stdin. Not root: prints the
# `sudo apt-get install` line to run and returns 1.

PEL_DEPS=(
	# build
	meson ninja-build pkg-config gcc clang
	libclang-rt-14-dev	# clang's sanitizer and libFuzzer runtimes
	llvm			# llvm-symbolizer: sanitizer reports with file:line
	# libraries pel uses or benchmarks against
	liburing-dev libnuma-dev libcmocka-dev libck-dev libdpdk-dev liblttng-ust-dev
	# tracing, trace reading and plots
	lttng-tools babeltrace2 python3-bt2 python3-matplotlib
	# the sockperf client tests/io/test_sockperf.sh runs against examples/udp-echo, tcp-echo
	sockperf
	# tests/demo/test_feed_syscalls.sh follows pel-feed's worker thread with it
	strace
)

# Print the packages among "$@" that are not installed, one a line.
pel_deps_missing()
{
	local p status

	for p in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
		[ "$status" = "install ok installed" ] || printf '%s\n' "$p"
	done
}

# Print "$@" once each, in their first order, one a line.
pel_deps_uniq()
{
	local -A seen=()
	local p

	for p in "$@"; do
		[ -n "${seen[$p]:-}" ] && continue
		seen[$p]=1
		printf '%s\n' "$p"
	done
}

# Install PEL_DEPS and "$@" where missing; with --only first, "$@" alone. Each package is named
# once. Returns 0, or 1 with the reason on stderr.
pel_deps_ensure()
{
	local missing=() want=() p

	if [ "${1:-}" = --only ]; then
		shift
		mapfile -t want < <(pel_deps_uniq "$@")
	else
		mapfile -t want < <(pel_deps_uniq "${PEL_DEPS[@]}" "$@")
	fi
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: dpkg-query not found; this script expects Debian 12. Install by hand:" >&2
		echo "  ${want[*]}" >&2
		return 1
	fi
	while IFS= read -r p; do
		missing+=("$p")
	done < <(pel_deps_missing "${want[@]}")
	[ "${#missing[@]}" -eq 0 ] && return 0

	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages: ${missing[*]}" >&2
		echo "deps: install them with:" >&2
		echo "sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
		return 1
	fi

	echo "deps: installing ${missing[*]}" >&2
	# Once per process tree: a script that sources us twice does not update twice.
	if [ -z "${PEL_DEPS_UPDATED:-}" ]; then
		if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update \
			</dev/null >&2; then
			echo "deps: apt-get update failed" >&2
			return 1
		fi
		export PEL_DEPS_UPDATED=1
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
		--no-install-recommends "${missing[@]}" </dev/null >&2; then
		echo "deps: apt-get install failed for: ${missing[*]}" >&2
		return 1
	fi

	# apt-get can succeed and still leave a package unconfigured; say so now, not at build time.
	missing=()
	while IFS= read -r p; do
		missing+=("$p")
	done < <(pel_deps_missing "${want[@]}")
	if [ "${#missing[@]}" -ne 0 ]; then
		echo "deps: still not installed after apt-get: ${missing[*]}" >&2
		return 1
	fi
	return 0
}
