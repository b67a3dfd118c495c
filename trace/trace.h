/* SPDX-License-Identifier: MIT */
/*
 * trace/trace.h - how pel's layers emit tracepoints. With -Dtracing=disabled (or no lttng-ust)
 * every call compiles to nothing and its arguments are never evaluated. With tracing compiled in,
 * a tracepoint that no session records costs one predicted branch; hot loops test
 * pel__trace_on(event) once per burst and take an untraced copy of the loop when it is off.
 */
#ifndef PEL_TRACE_TRACE_H
#define PEL_TRACE_TRACE_H

#include "pel_config.h"

#include <stdarg.h>

/* pel:task_start / task_end's src of work that did not come off a task ring (trace/tp.h): a
 * real-time task (seq: the worker's count of them) and an I/O callback (seq: the operation's
 * handle). */
#define PEL__TRACE_SRC_RT	2000000u
#define PEL__TRACE_SRC_IO	3000000u

#if PEL_HAVE_LTTNG && !defined(PEL_NO_TRACE)
#include "trace/tp.h"
#define pel__trace(event, ...)	tracepoint(pel, event, __VA_ARGS__)
#define pel__trace_on(event)	tracepoint_enabled(pel, event)
#else
/* sizeof: the arguments count as used (no warning) but are never evaluated */
#define pel__trace(event, ...)	((void)sizeof(pel__trace_sink(0, __VA_ARGS__)))
#define pel__trace_on(event)	0
static inline int
pel__trace_sink(int unused, ...)
{
	(void)unused;
	return 0;
}
#endif

/* src of a task spawned by worker w (producer handles are their slot ids, 0 .. max_producers) */
#define PEL__TRACE_SRC_WORKER	1000000u


#endif
