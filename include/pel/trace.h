/* SPDX-License-Identifier: MIT */
/*
 * pel/trace.h - TAU-style timers for user code inside tasks, recorded as LTTng-UST events
 * (pel:timer_entry / pel:timer_exit) next to pel's own scheduling events.
 *
 *	PEL_TIMER_START("score");
 *	...
 *	PEL_TIMER_STOP("score");
 *
 * The name must be a string literal; timers nest (a stack per thread), and tools/pel-trace turns
 * them into a profile with exclusive and inclusive times. With libpel built without tracing
 * (PEL_TRACING 0 in <pel/trace_config.h>) both compile to nothing. Compiled in, a timer that no
 * session records costs a call and a predicted branch.
 */
#ifndef PEL_PEL_TRACE_H
#define PEL_PEL_TRACE_H

#include <pel/trace_config.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @internal Emit pel:timer_entry / pel:timer_exit for @p name (use the macros). */
void pel_timer_entry(const char *name);
void pel_timer_exit(const char *name);

#ifdef __cplusplus
}
#endif

#if PEL_TRACING
#define PEL_TIMER_START(name)	pel_timer_entry("" name "")
#define PEL_TIMER_STOP(name)	pel_timer_exit("" name "")
#else
#define PEL_TIMER_START(name)	((void)sizeof("" name ""))
#define PEL_TIMER_STOP(name)	((void)sizeof("" name ""))
#endif

#endif /* PEL_PEL_TRACE_H */
