/* SPDX-License-Identifier: MIT */
/*
 * bench/pool_pairs.c - pel-bench-pool-pairs: the loops of "pel-bench pool" single and burst32,
 * pel against rte_mempool, each in a function of its own (noinline), for instruction counts where
 * timings are too noisy, and for comparing the code compilers emit:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out build-bench/bench/pel-bench-pool-pairs
 *   callgrind_annotate --inclusive=yes --threshold=100 cg.out | grep -E '(pel|rte)_(single|burst)'
 *
 * Each function's inclusive Ir divided by the pairs printed below is instructions per pair.
 * With --time it times the loops instead (median of 9, ns per pair, same CPU, interleaved).
 * pel's loops run in a task on the only worker of a PEL_IDLE_PARK runtime on CPU B (every call on
 * the owner's fast path), rte_mempool's on the EAL main lcore, the main thread, also on CPU B.
 * Built with the same flags as pel-bench (DPDK's -march and rte_config.h apply to both).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pel/pel.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include "bench.h"

#define WARM_SINGLE	1000ul
#define WARM_BURST	1024ul
#define PAIRS		100000ul
#define TIME_PAIRS	8000000ul
#define TIME_REPS	9
#define BURST		32

#define escape(p)	__asm__ __volatile__("" : : "r"(p) : "memory")

/* volatile: the loop counts reach the loops unknown to the compiler, as in pel-bench */
static volatile unsigned long warm_single = WARM_SINGLE, warm_burst = WARM_BURST, pairs = PAIRS;

__attribute__((noinline)) static void
pel_single(struct pel_pool *pool, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		void *p = pel_alloc(pool);

		escape(p);
		pel_free(pool, p);
	}
}

__attribute__((noinline)) static void
pel_burst(struct pel_pool *pool, unsigned long n)
{
	void *o[BURST];

	for (unsigned long i = 0; i < n; i += BURST) {
		if (pel_alloc_bulk(pool, o, BURST))
			abort();
		escape(o);
		pel_free_bulk(pool, o, BURST);
	}
}

__attribute__((noinline)) static void
rte_single(struct rte_mempool *mp, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		void *p;

		if (rte_mempool_get(mp, &p))
			abort();
		escape(p);
		rte_mempool_put(mp, p);
	}
}

__attribute__((noinline)) static void
rte_burst(struct rte_mempool *mp, unsigned long n)
{
	void *o[BURST];

	for (unsigned long i = 0; i < n; i += BURST) {
		if (rte_mempool_get_bulk(mp, o, BURST))
			abort();
		escape(o);
		rte_mempool_put_bulk(mp, o, BURST);
	}
}

static double
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct run {
	struct pel_pool *pool;
	bool time;
	double single_ns;	/* --time: ns per pair of the last rep */
	double burst_ns;
};

/* On the worker: the counted loops, or one timed rep of each. */
static void
pel_task(void *arg)
{
	struct run *r = arg;
	double t;

	if (!r->time) {
		pel_single(r->pool, warm_single);
		pel_burst(r->pool, warm_burst);
		pel_single(r->pool, pairs);
		pel_burst(r->pool, pairs);
		return;
	}
	t = now_ns();
	pel_single(r->pool, TIME_PAIRS);
	r->single_ns = (now_ns() - t) / TIME_PAIRS;
	t = now_ns();
	pel_burst(r->pool, TIME_PAIRS);
	r->burst_ns = (now_ns() - t) / TIME_PAIRS;
}

static int
on_worker(struct pel_runtime *rt, struct pel_producer *p, struct run *r)
{
	int err = pel_submit(p, 0, pel_task, r);

	if (!err)
		err = pel_drain(rt, 60 * PEL_NS_PER_S);
	if (err)
		fprintf(stderr, "pel-bench-pool-pairs: %s: %s\n", pel_strerror(err),
			pel_last_error());
	return err;
}

int
main(int argc, char **argv)
{
	char lcores[16];
	char *eal[] = { "pel-bench-pool-pairs", "--no-huge", "--no-pci", "--no-shconf",
			"--no-telemetry", "--file-prefix=pel-bench-pairs", "--log-level=error", "-l",
			lcores, NULL };
	int cpu = argc > 2 ? atoi(argv[2]) : 1;
	struct run r = { .time = argc > 1 && !strcmp(argv[1], "--time") };
	struct pel_runtime *rt = NULL;
	struct pel_producer *p = NULL;
	struct rte_mempool *mp;
	struct pel_config cfg;
	char cpus[16], model[256];
	int ret = 1;

	if (argc > 1 && !r.time) {
		fprintf(stderr, "usage: pel-bench-pool-pairs [--time [CPU]] (CPU: default 1)\n");
		return 2;
	}
	pel_bench_cpu_model(model, sizeof(model));
	printf("cpu: %s\n", model);	/* figures are of one CPU model */
	snprintf(lcores, sizeof(lcores), "%d", cpu);
	snprintf(cpus, sizeof(cpus), "%d", cpu);
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal) < 0) {
		fprintf(stderr, "pel-bench-pool-pairs: rte_eal_init(): %s\n", rte_strerror(rte_errno));
		return 1;
	}
	mp = rte_mempool_create("pelpairs", 4095, 64, 256, 0, NULL, NULL, NULL, NULL,
				SOCKET_ID_ANY, 0);
	pel_config_default(&cfg);
	cfg.cpus = cpus;
	cfg.idle = PEL_IDLE_PARK;
	cfg.log = NULL;
	if (!mp || pel_create(&cfg, &rt) || pel_pool_create(rt, 64, 4096, 0, &r.pool) ||
	    pel_producer_open(rt, &p)) {
		fprintf(stderr, "pel-bench-pool-pairs: set-up failed: %s\n",
			mp ? pel_last_error() : rte_strerror(rte_errno));
		goto out;
	}
	if (!r.time) {
		rte_single(mp, warm_single);
		rte_burst(mp, warm_burst);
		rte_single(mp, pairs);
		rte_burst(mp, pairs);
		if (on_worker(rt, p, &r))
			goto out;
		printf("pairs per function: *_single %lu, *_burst %lu (burst of %d)\n",
		       WARM_SINGLE + PAIRS, WARM_BURST + PAIRS, BURST);
	} else {
		double ps[TIME_REPS], pb[TIME_REPS], rs[TIME_REPS], rb[TIME_REPS], t;

		for (int k = 0; k < TIME_REPS; k++) {
			if (on_worker(rt, p, &r))
				goto out;
			ps[k] = r.single_ns;
			pb[k] = r.burst_ns;
			t = now_ns();
			rte_single(mp, TIME_PAIRS);
			rs[k] = (now_ns() - t) / TIME_PAIRS;
			t = now_ns();
			rte_burst(mp, TIME_PAIRS);
			rb[k] = (now_ns() - t) / TIME_PAIRS;
		}
		qsort(ps, TIME_REPS, sizeof(double), cmp_double);
		qsort(pb, TIME_REPS, sizeof(double), cmp_double);
		qsort(rs, TIME_REPS, sizeof(double), cmp_double);
		qsort(rb, TIME_REPS, sizeof(double), cmp_double);
		printf("cpu %d, ns per pair, median of %d x %lu pairs\n", cpu, TIME_REPS, TIME_PAIRS);
		printf("single  pel %.3f  rte_mempool %.3f  pel/rte %.2f\n", ps[TIME_REPS / 2],
		       rs[TIME_REPS / 2], ps[TIME_REPS / 2] / rs[TIME_REPS / 2]);
		printf("burst32 pel %.3f  rte_mempool %.3f  pel/rte %.2f\n", pb[TIME_REPS / 2],
		       rb[TIME_REPS / 2], pb[TIME_REPS / 2] / rb[TIME_REPS / 2]);
	}
	ret = 0;
out:
	pel_producer_close(p);
	pel_pool_destroy(r.pool);
	if (rt)
		pel_destroy(rt);
	if (mp)
		rte_mempool_free(mp);
	rte_eal_cleanup();
	return ret;
}
