/* SPDX-License-Identifier: MIT */
/* sched/error.c - per-thread error detail, errno words, and the log. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static PEL__TLS char err_text[512];
static PEL__TLS enum pel__lazy err_lazy;
static PEL__TLS unsigned err_a, err_b;

int
pel__fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_text, sizeof(err_text), fmt, ap);
	va_end(ap);
	err_lazy = 0;
	return err;
}

int
pel__fail_lazy(int err, enum pel__lazy what, unsigned a, unsigned b)
{
	err_lazy = what;
	err_a = a;
	err_b = b;
	return err;
}

const char *
pel_last_error(void)
{
	switch (err_lazy) {
	case PEL__LAZY_RING_FULL:
		snprintf(err_text, sizeof(err_text),
			 "ring to worker %u is full (%u slots): nothing was queued; retry after the "
			 "worker catches up, or raise ring_slots", err_a, err_b);
		break;
	case PEL__LAZY_BAD_WORKER:
		snprintf(err_text, sizeof(err_text),
			 "worker %u does not exist: this runtime has workers 0..%u", err_a,
			 err_b ? err_b - 1 : 0);
		break;
	case PEL__LAZY_BAD_FN:
		snprintf(err_text, sizeof(err_text),
			 "task for worker %u has a NULL function (or one with bit 63 set)", err_a);
		break;
	case PEL__LAZY_SHUTDOWN:
		snprintf(err_text, sizeof(err_text),
			 "runtime is shutting down: pel_destroy() has begun, no new task is accepted");
		break;
	case PEL__LAZY_NOT_TASK:
		snprintf(err_text, sizeof(err_text),
			 "pel_spawn() called outside a task; from other threads use a producer and "
			 "pel_submit()");
		break;
	case PEL__LAZY_BAD_PRODUCER:
		snprintf(err_text, sizeof(err_text), err_a ?
			 "producer handle is closed: open one with pel_producer_open()" :
			 "producer handle is NULL: open one with pel_producer_open()");
		break;
	case PEL__LAZY_STORE_FULL:
		snprintf(err_text, sizeof(err_text),
			 "worker %u's store of %u task records is full: nothing was queued; retry "
			 "after the worker catches up, or give the layer a larger store", err_a, err_b);
		break;
	case PEL__LAZY_PAST_DEADLINE:
		snprintf(err_text, sizeof(err_text),
			 "deadline %u us in the past: nothing was queued", err_a);
		break;
	default:
		break;
	}
	err_lazy = 0;
	return err_text;
}

const char *
pel_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument";
	case -EAGAIN:
		return "ring full, nothing queued";
	case -ESHUTDOWN:
		return "runtime is shutting down";
	case -EMFILE:
		return "no producer handle left";
	case -EPERM:
		return "operation not permitted";
	case -ENOMEM:
		return "out of memory";
	case -ETIMEDOUT:
		return "timed out";
	case -EDEADLK:
		return "would deadlock: called from a task";
	case -EBUSY:
		return "CPU already busy-polled by another runtime";
	case -ENOSPC:
		return "no room left";
	case -ENOENT:
		return "no such file";
	default:
		return err < 0 ? "unknown error" : "not an error code";
	}
}

void
pel__logv(pel_log_fn fn, void *arg, enum pel_log_level level, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (fn) {
		fn(level, line, arg);
		return;
	}
	fprintf(stderr, "pel: %s%s\n",
		level == PEL_LOG_ERROR ? "error: " : level == PEL_LOG_WARNING ? "warning: " : "", line);
}

void
pel__log(pel_log_fn fn, void *arg, enum pel_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pel__logv(fn, arg, level, fmt, ap);
	va_end(ap);
}
