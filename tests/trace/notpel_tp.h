/* SPDX-License-Identifier: MIT */
/* tests/trace/notpel_tp.h - a provider that is not pel's, for pel-trace's "no pel events" case. */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER notpel

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "notpel_tp.h"

#if !defined(NOTPEL_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define NOTPEL_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(notpel, hello,
	TP_ARGS(int, n),
	TP_FIELDS(ctf_integer(int32_t, n, n)))

#endif

#include <lttng/tracepoint-event.h>
