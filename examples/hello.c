/* SPDX-License-Identifier: MIT */
/*
 * examples/hello.c - the README's first program: create a runtime, open a producer, submit tasks
 * to every worker, drain, print the stats, destroy.
 *
 *   cc hello.c $(pkg-config --cflags --libs pel) -o hello && ./hello [CPUS]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* sched_getcpu() */
#endif
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include <pel/pel.h>

static atomic_ulong done;

static void
say_hello(void *arg)
{
	unsigned long n = atomic_fetch_add(&done, 1) + 1;

	if (n <= 4)
		printf("task %lu on worker %d (cpu %d), arg %p\n", n, pel_worker_self(),
		       sched_getcpu(), arg);
}

int
main(int argc, char **argv)
{
	struct pel_config cfg;
	struct pel_runtime *rt;
	struct pel_producer *p;
	unsigned long submitted = 0;
	int err;

	pel_config_default(&cfg);
	cfg.cpus = argc > 1 ? argv[1] : NULL;	/* NULL: the isolated CPUs, else all but CPU 0 */
	cfg.idle = PEL_IDLE_BACKOFF;
	err = pel_create(&cfg, &rt);
	if (err) {
		fprintf(stderr, "pel_create: %s: %s\n", pel_strerror(err), pel_last_error());
		return 1;
	}
	err = pel_producer_open(rt, &p);
	if (err) {
		fprintf(stderr, "pel_producer_open: %s\n", pel_last_error());
		pel_destroy(rt);
		return 1;
	}
	for (unsigned long i = 0; i < 100000; i++) {
		unsigned w = (unsigned)(i % pel_worker_count(rt));

		while ((err = pel_submit(p, w, say_hello, (void *)i)) == -EAGAIN)
			sched_yield();	/* ring full: the worker is behind, nothing was queued */
		if (err) {
			fprintf(stderr, "pel_submit: %s\n", pel_last_error());
			break;
		}
		submitted++;
	}
	err = pel_drain(rt, 5 * PEL_NS_PER_S);
	if (err)
		fprintf(stderr, "pel_drain: %s\n", pel_last_error());
	for (unsigned w = 0; w < pel_worker_count(rt); w++) {
		struct pel_worker_stats st;

		pel_stats(rt, w, &st);
		printf("worker %u (cpu %d): %llu tasks, %llu parks, busy %.1f ms, idle %.1f ms\n", w,
		       st.cpu, (unsigned long long)st.tasks_run, (unsigned long long)st.parks,
		       st.busy_ns / 1e6, st.idle_ns / 1e6);
	}
	printf("submitted %lu, ran %lu\n", submitted, (unsigned long)atomic_load(&done));
	pel_producer_close(p);
	pel_destroy(rt);
	return atomic_load(&done) == submitted ? 0 : 1;
}
