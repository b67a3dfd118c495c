/* SPDX-License-Identifier: MIT */
/* bench/bench_tp.h - a bare LTTng-UST tracepoint with pel:timer_entry's payload, the baseline. */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER pelbench

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "bench_tp.h"

#if !defined(PEL_BENCH_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define PEL_BENCH_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(pelbench, bare,
	TP_ARGS(const char *, name, int, worker),
	TP_FIELDS(ctf_integer_hex(uint64_t, id, (uintptr_t)name) ctf_string(name, name)
		  ctf_integer(int32_t, worker, worker)))

#endif

#include <lttng/tracepoint-event.h>
