/* SPDX-License-Identifier: MIT */
/*
 * tests/trace/emit.c - emits a known sequence of pel:* events (the schema of trace/tp.h) without
 * libpel, so tests/trace/test_pel_trace.py can check pel-trace's CTF reading on a real LTTng trace.
 *
 *	emit pel WORKERS TASKS	per worker thread w (0 .. WORKERS-1): worker_start; TASKS times:
 *				submit, dequeue, task_start, timers outer{inner, inner}, task_end,
 *				with an idle_enter/idle_exit around every 4th task and a park/unpark
 *				inside every 8th idle period; worker_stop(tasks = TASKS). Task i's
 *				dequeue carries queue_wait_ns = 100 + i, or -1 (no stamp) when
 *				i % 4 == 3. One
 *				"lonely" timer on the main thread (worker -1).
 *	emit flood N		N submit events as fast as possible (for discarded-event runs)
 *	emit other		one notpel:hello event and no pel:* event
 */
#define TRACEPOINT_CREATE_PROBES
#define TRACEPOINT_DEFINE
#include "trace/tp.h"
#include "notpel_tp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned ntasks;

static void
spin(unsigned n)
{
	volatile unsigned x = 0;

	for (unsigned i = 0; i < n; i++)
		x += i;
}

static void *
worker(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg;
	static const char outer[] = "outer", inner[] = "inner";

	tracepoint(pel, worker_start, w, (int)w);
	for (unsigned i = 0; i < ntasks; i++) {
		unsigned src = 1 + (i & 1);
		uint64_t seq = i / 2;

		if (i % 4 == 0) {
			tracepoint(pel, idle_enter, w);
			if (i % 32 == 0) {
				tracepoint(pel, park, w);
				spin(2000);
				tracepoint(pel, unpark, w);
			}
			spin(1000);
			tracepoint(pel, idle_exit, w);
		}
		tracepoint(pel, submit, w, src, seq);
		spin(500);
		tracepoint(pel, dequeue, w, src, seq, 1, i % 4 == 3 ? (int64_t)-1 : (int64_t)(100 + i));
		tracepoint(pel, task_start, w, (const void *)worker, src, seq);
		tracepoint(pel, timer_entry, outer, (int)w);
		spin(300);
		for (int k = 0; k < 2; k++) {
			tracepoint(pel, timer_entry, inner, (int)w);
			spin(200);
			tracepoint(pel, timer_exit, inner, (int)w);
		}
		tracepoint(pel, timer_exit, outer, (int)w);
		tracepoint(pel, task_end, w, (const void *)worker, src, seq);
	}
	tracepoint(pel, worker_stop, w, ntasks);
	return NULL;
}

int
main(int argc, char **argv)
{
	static const char lonely[] = "lonely";

	if (argc == 2 && !strcmp(argv[1], "other")) {
		tracepoint(notpel, hello, 42);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "flood")) {
		unsigned long n = strtoul(argv[2], NULL, 0);

		for (unsigned long i = 0; i < n; i++)
			tracepoint(pel, submit, 0, 1, i);
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "pel")) {
		fprintf(stderr, "usage: emit pel WORKERS TASKS | emit flood N | emit other\n");
		return 2;
	}
	unsigned nw = (unsigned)atoi(argv[2]);
	pthread_t t[64];

	ntasks = (unsigned)atoi(argv[3]);
	if (nw > 64)
		nw = 64;
	tracepoint(pel, timer_entry, lonely, -1);
	for (unsigned w = 0; w < nw; w++)
		pthread_create(&t[w], NULL, worker, (void *)(uintptr_t)w);
	for (unsigned w = 0; w < nw; w++)
		pthread_join(t[w], NULL);
	tracepoint(pel, timer_exit, lonely, -1);
	return 0;
}
