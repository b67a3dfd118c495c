/* SPDX-License-Identifier: MIT */
/*
 * tests/trace/trace_prog.c - a program with known behaviour, recorded by tests/trace/test_lttng.sh:
 * 2 workers (PARK), TASKS tasks submitted to each, every 10th spawns one task to the other worker,
 * every 50th runs nested timers outer { inner; inner }, a full ring once (ring_full), a pool
 * exhausted once (pool_alloc_fail). Writes what it knows as JSON to argv[1].
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pel/pel.h>
#include <pel/trace.h>

#define TASKS 2000

static _Atomic unsigned long spawned, timed;
static unsigned nworkers;
static _Atomic int gate_open;

static void
busy_ns(long ns)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ns);
}

static void
leaf(void *arg)
{
	(void)arg;
}

static void
work(void *arg)
{
	unsigned long i = (unsigned long)arg;

	if (i % 10 == 0) {
		while (pel_spawn((unsigned)(pel_worker_self() + 1) % nworkers, leaf,
				 NULL) == -EAGAIN)
			sched_yield();
		atomic_fetch_add(&spawned, 1);
	}
	if (i % 50 == 0) {
		PEL_TIMER_START("outer");
		busy_ns(2000);
		PEL_TIMER_START("inner");
		busy_ns(1000);
		PEL_TIMER_STOP("inner");
		PEL_TIMER_START("inner");
		busy_ns(1000);
		PEL_TIMER_STOP("inner");
		PEL_TIMER_STOP("outer");
		atomic_fetch_add(&timed, 1);
	}
}

static void
gate(void *arg)
{
	(void)arg;
	while (!atomic_load(&gate_open))
		sched_yield();
}

/*
 * "bursts": only pel_submit_burst(), with a full ring first (worker 0 held by the gate, bursts
 * until one is cut short), then TASKS bursts of 16 per worker. The test records pel:dequeue alone:
 * every task must still carry its queue wait.
 */
static int
bursts(struct pel_runtime *rt, struct pel_producer *p, const char *facts)
{
	struct pel_task t[16];
	unsigned long accepted = 0;
	unsigned done;
	FILE *out;

	for (unsigned i = 0; i < 16; i++)
		t[i] = (struct pel_task){ leaf, NULL };
	if (pel_submit(p, 0, gate, NULL))
		return 1;
	accepted++;
	do {
		done = pel_submit_burst(p, 0, t, 16);
		accepted += done;
	} while (done == 16);
	atomic_store(&gate_open, 1);
	for (unsigned long i = 0; i < TASKS / 16 * nworkers; i++) {
		unsigned w = (unsigned)(i % nworkers);

		for (unsigned k = 0; k < 16; k += done) {
			done = pel_submit_burst(p, w, t + k, 16 - k);
			accepted += done;
			if (!done)
				sched_yield();
		}
	}
	if (pel_drain(rt, 10 * PEL_NS_PER_S))
		return 1;
	out = fopen(facts, "w");
	if (!out)
		return 1;
	fprintf(out, "{\"workers\": %u, \"submitted\": %lu}\n", nworkers, accepted);
	fclose(out);
	pel_producer_close(p);
	pel_destroy(rt);
	return 0;
}

int
main(int argc, char **argv)
{
	struct pel_config c;
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_pool *pool;
	struct pel_worker_stats st[2];
	unsigned long accepted = 0;
	FILE *out;

	if (argc != 2 && !(argc == 3 && !strcmp(argv[2], "bursts")))
		return 2;
	pel_config_default(&c);
	c.cpus = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? "0-1" : "0";
	c.idle = PEL_IDLE_PARK;
	c.ring_slots = 64;
	if (pel_create(&c, &rt) || pel_producer_open(rt, &p)) {
		fprintf(stderr, "trace_prog: %s\n", pel_last_error());
		return 1;
	}
	nworkers = pel_worker_count(rt);
	if (argc == 3)
		return bursts(rt, p, argv[1]);
	/* a full ring: hold worker 0, fill its ring, count the refusals */
	if (pel_submit(p, 0, gate, NULL))
		return 1;
	accepted++;
	while (pel_submit(p, 0, leaf, NULL) == 0)
		accepted++;
	atomic_store(&gate_open, 1);
	for (unsigned long i = 0; i < TASKS * nworkers; i++) {
		while (pel_submit(p, (unsigned)(i % nworkers), work, (void *)i) == -EAGAIN)
			sched_yield();
		accepted++;
	}
	if (pel_drain(rt, 10 * PEL_NS_PER_S))
		return 1;
	/* an exhausted pool, from this (non-worker) thread */
	if (pel_pool_create(rt, 64, 4, 0, &pool))
		return 1;
	void *o[16];
	unsigned n = 0;

	while (n < 16 && (o[n] = pel_alloc(pool)))	/* 4 per worker: the next one fails */
		n++;
	for (unsigned i = 0; i < n; i++)
		pel_free(pool, o[i]);
	pel_pool_destroy(pool);
	for (unsigned w = 0; w < pel_worker_count(rt); w++)
		pel_stats(rt, w, &st[w]);
	out = fopen(argv[1], "w");
	if (!out)
		return 1;
	fprintf(out, "{\"workers\": %u, \"tasks_run\": [%llu", pel_worker_count(rt),
		(unsigned long long)st[0].tasks_run);
	if (pel_worker_count(rt) > 1)
		fprintf(out, ", %llu", (unsigned long long)st[1].tasks_run);
	fprintf(out, "], \"spawned\": %lu, \"timed\": %lu, \"submitted\": %lu, "
		"\"pool_objects\": %u}\n", atomic_load(&spawned), atomic_load(&timed), accepted, n);
	fclose(out);
	pel_producer_close(p);
	pel_destroy(rt);
	return 0;
}
