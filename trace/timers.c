/* SPDX-License-Identifier: MIT */
/* trace/timers.c - the functions behind PEL_TIMER_START / PEL_TIMER_STOP (pel/trace.h). */
#include <pel/pel.h>
#include <pel/trace.h>

#include "trace/trace.h"

void
pel_timer_entry(const char *name)
{
	pel__trace(timer_entry, name, pel_worker_self());
}

void
pel_timer_exit(const char *name)
{
	pel__trace(timer_exit, name, pel_worker_self());
}
