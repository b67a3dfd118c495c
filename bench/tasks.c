/* SPDX-License-Identifier: MIT */
/*
 * bench/tasks.c - the measuring half of "pel-bench trace", built twice: against libpel with its
 * tracepoints (pel-bench-tasks) and against the same sources with them compiled out
 * (pel-bench-tasks-notrace). pel-bench runs them alternately, in and out of an LTTng session.
 *
 *   pel-bench-tasks tasks A B N   one SPIN worker on CPU B, the producer on A submits N no-op
 *                                 tasks in bursts of 32; prints tasks_per_sec=
 *   pel-bench-tasks events N      (traced build) ns per recorded pel:timer_entry and per bare
 *                                 pelbench:bare tracepoint with the same payload, alternating
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pel/pel.h>
#include <pel/trace.h>

#ifdef PEL_BENCH_TRACED
#define TRACEPOINT_CREATE_PROBES
#define TRACEPOINT_DEFINE
#include "bench_tp.h"
#endif

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void
nop(void *arg)
{
	(void)arg;
}

static void
quiet(enum pel_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
}

static int
pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static int
run_tasks(int a, int b, unsigned long n)
{
	struct pel_task t[32];
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_config c;
	char cpus[16];
	unsigned long sent = 0;
	double t0, t1;

	snprintf(cpus, sizeof(cpus), "%d", b);
	pel_config_default(&c);
	c.cpus = cpus;
	c.idle = PEL_IDLE_SPIN;
	c.log = quiet;
	if (pel_create(&c, &rt) || pel_producer_open(rt, &p) || pin(a)) {
		fprintf(stderr, "pel-bench-tasks: %s\n", pel_last_error());
		return 1;
	}
	for (unsigned i = 0; i < 32; i++)
		t[i] = (struct pel_task){ nop, NULL };
	t0 = now_s();
	while (sent < n) {
		unsigned k = pel_submit_burst(p, 0, t, n - sent < 32 ? (unsigned)(n - sent) : 32);

		sent += k;
		if (!k)
			__builtin_ia32_pause();
	}
	if (pel_drain(rt, 30 * PEL_NS_PER_S))
		return 1;
	t1 = now_s();
	printf("tasks_per_sec=%.0f\n", (double)n / (t1 - t0));
	pel_producer_close(p);
	pel_destroy(rt);
	return 0;
}

#ifdef PEL_BENCH_TRACED
static int
cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static int
run_events(unsigned long n)
{
	double pel_ns[7], bare_ns[7];

	for (int r = 0; r < 7; r++) {
		double t0 = now_s();

		for (unsigned long i = 0; i < n; i++)
			PEL_TIMER_START("event");
		pel_ns[r] = (now_s() - t0) * 1e9 / (double)n;
		t0 = now_s();
		for (unsigned long i = 0; i < n; i++)
			tracepoint(pelbench, bare, "event", -1);
		bare_ns[r] = (now_s() - t0) * 1e9 / (double)n;
	}
	qsort(pel_ns, 7, sizeof(double), cmp_d);
	qsort(bare_ns, 7, sizeof(double), cmp_d);
	printf("pel_ns=%.2f bare_ns=%.2f\n", pel_ns[3], bare_ns[3]);
	return 0;
}
#endif

int
main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "tasks"))
		return run_tasks(atoi(argv[2]), atoi(argv[3]), strtoul(argv[4], NULL, 10));
#ifdef PEL_BENCH_TRACED
	if (argc == 3 && !strcmp(argv[1], "events"))
		return run_events(strtoul(argv[2], NULL, 10));
#endif
	fprintf(stderr, "usage: %s tasks A B N | events N\n", argv[0]);
	return 2;
}
