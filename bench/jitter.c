/* SPDX-License-Identifier: MIT */
/*
 * bench/jitter.c - "pel-bench jitter": what a parking worker does to a thread spinning on another
 * CPU of the same process, and what the submit path pays for the park/wake barrier.
 *
 * Jitter. A plain thread of this process, pinned to CPU B, reads the TSC in a tight loop and counts
 * the gaps between two reads longer than 1, 5 and 20 us, and the longest; it is what an isolated
 * PEL_IDLE_SPIN worker sees (a membarrier IPI reaches any thread of the process that is running).
 * On CPU A a producer sleeps to absolute times one period apart (1 ms or 100 us) and, each period:
 *   floor       nothing (the same timer wake-ups, no pel activity)
 *   park        pel_submit() of an empty task to a PEL_IDLE_PARK worker on A: it wakes, runs it,
 *               parks again; pel as built
 *   park+fence  the same with pel__barrier_force_fence(true): the fence on both sides of every
 *               pair, what pel does where membarrier is missing
 *   membarrier  no task; membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) once a period, from A: what
 *               one call costs a spinning thread (the reference for a park that makes one)
 * The variants take turns, --reps times (default 5), each for --seconds (default 1); the figures
 * are medians over the reps, per second of spinning.
 *
 * Submit cost. pel_submit() of --items empty tasks one at a time, then pel_submit_burst() in
 * bursts of 32, from A to a PEL_IDLE_SPIN worker on B (two busy threads, one a CPU), with
 * pel__barrier_force_fence() false (as built) and true, interleaved: tasks/s, median of the reps.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <pel/pel.h>

#include "bench.h"
#include "internal.h"	/* pel__barrier_force_fence(): pel-bench links the static library */

#define DEFAULT_REPS		5
#define DEFAULT_SECONDS		1
#define DEFAULT_SUBMIT_ITEMS	2000000ull
#define NRATES			2
#define MAX_REPS		1000

enum jkind {
	J_FLOOR,
	J_PARK,
	J_PARK_FENCE,
	J_MEMBARRIER,
	J_COUNT,
};

static const char *const jname[J_COUNT] = {
	[J_FLOOR] = "floor",
	[J_PARK] = "park",
	[J_PARK_FENCE] = "park+fence",
	[J_MEMBARRIER] = "membarrier",
};

/* metric names: no '+' */
static const char *const jkey[J_COUNT] = {
	[J_FLOOR] = "floor",
	[J_PARK] = "park",
	[J_PARK_FENCE] = "park_fence",
	[J_MEMBARRIER] = "membarrier",
};

static const uint64_t period_ns[NRATES] = { 1000000, 100000 };
static const char *const rate_name[NRATES] = { "1kHz", "10kHz" };

/* The spinning thread on B. */
struct spinner {
	int cpu;
	uint64_t lim[3];		/* gap thresholds in cycles: 1, 5, 20 us */
	alignas(PEL_CACHE_GUARD) _Atomic unsigned ready;
	_Atomic unsigned stop;
	int err;
	uint64_t over[3];		/* gaps above lim[i] */
	uint64_t max;			/* cycles */
	uint64_t cycles;		/* spun for */
};

/* What one run of one variant measured, per second of spinning. */
struct jrun {
	double over[3];
	double max_us;
	double parks;			/* worker parks a second (park variants) */
	double periods;			/* producer periods a second */
};

/* One (TSC, CLOCK_MONOTONIC) pair: the TSC read in the tightest of 16 clock brackets, so that a
 * preemption between the two reads (this host is shared) cannot skew the calibration. */
static void
clock_pair(uint64_t *cyc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;

	for (unsigned i = 0; i < 16; i++) {
		uint64_t a = pel_bench_mono_ns(), c = pel_bench_tsc(), b = pel_bench_mono_ns();

		if (b - a < best) {
			best = b - a;
			*cyc = c;
			*ns = a + (b - a) / 2;
		}
	}
}

static double
ns_per_cycle(void)
{
	uint64_t c0 = 0, n0 = 0, c1 = 0, n1 = 0;	/* clock_pair() sets them: its first bracket wins */

	clock_pair(&c0, &n0);
	do
		clock_pair(&c1, &n1);
	while (n1 - n0 < 20 * 1000 * 1000);
	return (double)(n1 - n0) / (double)(c1 - c0);
}

static void *
spin_main(void *arg)
{
	struct spinner *s = arg;
	uint64_t over0 = 0, over1 = 0, over2 = 0, max = 0, start, prev, now;

	s->err = pel_bench_pin(s->cpu);
	/* release: pairs with the acquire in spin_start(); err is written */
	atomic_store_explicit(&s->ready, 1, memory_order_release);
	if (s->err)
		return NULL;
	start = prev = pel_bench_tsc();
	/* relaxed: stop carries no data; the results are read after pthread_join() */
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		uint64_t gap;

		now = pel_bench_tsc();
		gap = now - prev;
		prev = now;
		if (pel_unlikely(gap > s->lim[0])) {
			over0++;
			over1 += gap > s->lim[1];
			over2 += gap > s->lim[2];
			if (gap > max)
				max = gap;
		}
	}
	s->over[0] = over0;
	s->over[1] = over1;
	s->over[2] = over2;
	s->max = max;
	s->cycles = prev - start;
	return NULL;
}

static int
spin_start(struct spinner *s, pthread_t *t)
{
	int err;

	atomic_store(&s->ready, 0);
	atomic_store(&s->stop, 0);
	err = pel_bench_thread_on(t, s->cpu, spin_main, s);
	if (err) {
		pel_bench_perror("spinning thread", err);
		return 1;
	}
	/* acquire: pairs with the release in spin_main(); err is readable */
	while (!atomic_load_explicit(&s->ready, memory_order_acquire))
		sched_yield();
	if (s->err) {
		pthread_join(*t, NULL);
		fprintf(stderr, "pel-bench: cannot pin to CPU %d: %s\n", s->cpu, strerror(s->err));
		return 1;
	}
	return 0;
}

static void
empty_task(void *arg)
{
	(void)arg;
}

static long
membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

/* A PEL_IDLE_PARK (or SPIN) runtime of one worker on @p cpu. 0, or 1 after saying why. */
static int
start_rt(int cpu, enum pel_idle idle, struct pel_runtime **rt, struct pel_producer **p)
{
	char cpus[16];
	int err;

	snprintf(cpus, sizeof(cpus), "%d", cpu);
	if (pel_bench_runtime(cpus, idle, PEL_F_SHARE_CPUS, rt))
		return 1;
	err = pel_producer_open(*rt, p);
	if (err) {
		fprintf(stderr, "pel-bench: pel_producer_open: %s: %s\n", pel_strerror(err),
			pel_last_error());
		pel_destroy(*rt);
		return 1;
	}
	return 0;
}

static void
stop_rt(struct pel_runtime *rt, struct pel_producer *p)
{
	pel_producer_close(p);
	pel_destroy(rt);
}

/* One run of @p k at @p period on A (this thread, pinned there). 0, or 1 after saying why. */
static int
jitter_run(struct spinner *s, int cpu_a, enum jkind k, uint64_t period, uint64_t seconds,
	   double npc, struct jrun *out)
{
	struct pel_runtime *rt = NULL;
	struct pel_producer *p = NULL;
	struct pel_worker_stats st0 = { 0 }, st1 = { 0 };
	struct timespec next;
	uint64_t n, periods = seconds * 1000000000ull / period;
	pthread_t t;
	int ret = 0;

	if (k == J_PARK || k == J_PARK_FENCE) {
		pel__barrier_force_fence(k == J_PARK_FENCE);
		if (start_rt(cpu_a, PEL_IDLE_PARK, &rt, &p))
			return 1;
	}
	/* the runtime is set up (and later destroyed) outside the measured window */
	if (spin_start(s, &t)) {
		ret = 1;
		goto out;
	}
	if (rt)
		pel_stats(rt, 0, &st0);
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (n = 0; n < periods; n++) {
		next.tv_nsec += (long)period;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		if (k == J_MEMBARRIER) {
			membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
		} else if (rt) {
			while (pel_submit(p, 0, empty_task, NULL) == -EAGAIN)
				sched_yield();
		}
	}
	if (rt) {
		pel_drain(rt, 10 * PEL_NS_PER_S);
		pel_stats(rt, 0, &st1);
	}
	atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
	pthread_join(t, NULL);
	{
		double sec = (double)s->cycles * npc * 1e-9;

		for (unsigned i = 0; i < 3; i++)
			out->over[i] = (double)s->over[i] / sec;
		out->max_us = (double)s->max * npc * 1e-3;
		out->parks = (double)(st1.parks - st0.parks) / sec;
		out->periods = (double)periods / sec;
	}
out:
	if (rt)
		stop_rt(rt, p);
	pel__barrier_force_fence(false);
	return ret;
}

static void
count_task(void *arg)
{
	_Atomic uint64_t *n = arg;

	/* relaxed: one writer (the worker); read after pel_drain() */
	atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* tasks/s of one submit run; 0 on failure (said why). */
static double
submit_run(int cpu_b, bool fence, bool burst, uint64_t items)
{
	static _Atomic uint64_t ran;
	struct pel_runtime *rt;
	struct pel_producer *p;
	struct pel_task t[PEL_BENCH_BURST];
	uint64_t sent = 0, t0, t1;
	int err;

	pel__barrier_force_fence(fence);
	if (start_rt(cpu_b, PEL_IDLE_SPIN, &rt, &p)) {
		pel__barrier_force_fence(false);
		return 0;
	}
	atomic_store(&ran, 0);
	for (unsigned i = 0; i < PEL_BENCH_BURST; i++) {
		t[i].fn = count_task;
		t[i].arg = (void *)&ran;
	}
	t0 = pel_bench_mono_ns();
	if (burst) {
		while (sent < items) {
			uint64_t left = items - sent;
			unsigned n = left < PEL_BENCH_BURST ? (unsigned)left : PEL_BENCH_BURST;

			sent += pel_submit_burst(p, 0, t, n);
		}
	} else {
		while (sent < items) {
			if (!pel_submit(p, 0, count_task, (void *)&ran))
				sent++;
		}
	}
	err = pel_drain(rt, 30 * PEL_NS_PER_S);
	t1 = pel_bench_mono_ns();
	stop_rt(rt, p);
	pel__barrier_force_fence(false);
	if (err || atomic_load(&ran) != items) {
		fprintf(stderr, "pel-bench: submit: %llu of %llu tasks ran (%s)\n",
			(unsigned long long)atomic_load(&ran), (unsigned long long)items,
			err ? pel_strerror(err) : "drained");
		return 0;
	}
	return (double)items / ((double)(t1 - t0) * 1e-9);
}

int
pel_bench_jitter(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	static double v[NRATES][J_COUNT][6][MAX_REPS];
	static double sv[2][2][MAX_REPS];
	static const char *const col[6] = { "gt1us", "gt5us", "gt20us", "max_us", "parks",
					    "periods" };
	unsigned reps = o->reps ? o->reps : DEFAULT_REPS;
	uint64_t seconds = o->seconds ? o->seconds : DEFAULT_SECONDS;
	uint64_t items = o->items ? o->items : DEFAULT_SUBMIT_ITEMS;
	struct pel_bench_figure f[6];
	struct spinner s = { 0 };
	char name[64];
	double npc;
	int err;

	/* A: the parking worker and its producer; B: the spinning thread */
	err = pel_bench_pin(o->cpu_a);
	if (err) {
		fprintf(stderr, "pel-bench: cannot pin to CPU %d: %s\n", o->cpu_a, strerror(err));
		return 1;
	}
	prctl(PR_SET_TIMERSLACK, 1UL);	/* 100 us periods: not the default 50 us of slack */
	pel__barrier_init();	/* registers membarrier, as pel_create() would */
	npc = ns_per_cycle();
	s.cpu = o->cpu_b;
	s.lim[0] = (uint64_t)(1000.0 / npc);
	s.lim[1] = (uint64_t)(5000.0 / npc);
	s.lim[2] = (uint64_t)(20000.0 / npc);

	pel_bench_print_cpu();
	printf("jitter cpus=%d,%d seconds=%llu reps=%u tsc_mhz=%.1f membarrier=%s\n", o->cpu_a,
	       o->cpu_b, (unsigned long long)seconds, reps, 1e3 / npc,
	       membarrier(MEMBARRIER_CMD_QUERY) & MEMBARRIER_CMD_PRIVATE_EXPEDITED ? "yes" : "no");
	printf("note: a thread spins on CPU %d reading the TSC; CPU %d: a producer, and a "
	       "PEL_IDLE_PARK worker it wakes once a period\n", o->cpu_b, o->cpu_a);
	printf("note: per second of spinning, median of %u interleaved runs\n", reps);
	fflush(stdout);

	for (unsigned r = 0; r < reps; r++) {
		for (unsigned q = 0; q < NRATES; q++) {
			for (unsigned k = 0; k < J_COUNT; k++) {
				struct jrun out = { 0 };

				if (jitter_run(&s, o->cpu_a, k, period_ns[q], seconds, npc, &out))
					return 1;
				v[q][k][0][r] = out.over[0];
				v[q][k][1][r] = out.over[1];
				v[q][k][2][r] = out.over[2];
				v[q][k][3][r] = out.max_us;
				v[q][k][4][r] = out.parks;
				v[q][k][5][r] = out.periods;
			}
		}
	}

	printf("%-6s %-11s %9s %9s %9s %9s %9s %9s\n", "rate", "variant", "gaps>1us", ">5us",
	       ">20us", "max_us", "parks/s", "periods/s");
	for (unsigned q = 0; q < NRATES; q++) {
		double floor5 = 0;

		for (unsigned k = 0; k < J_COUNT; k++) {
			for (unsigned c = 0; c < 6; c++) {
				f[c] = pel_bench_summarise(v[q][k][c], reps);
				snprintf(name, sizeof(name), "%s_%s_%s", rate_name[q], jkey[k],
					 col[c]);
				pel_bench_metric(rep, name, f[c].median,
						 c == 3 ? "us" : "1/s");
			}
			printf("%-6s %-11s %9.0f %9.0f %9.0f %9.1f %9.0f %9.0f\n", rate_name[q],
			       jname[k], f[0].median, f[1].median, f[2].median, f[3].median,
			       f[4].median, f[5].median);
			if (k == J_FLOOR) {
				floor5 = f[1].median;
			} else {
				snprintf(name, sizeof(name), "%s_%s_gt5us_over_floor",
					 rate_name[q], jkey[k]);
				pel_bench_ratio(rep, name, (f[1].median + 1) / (floor5 + 1));
			}
		}
		printf("%-6s max_us min..max over the runs:", rate_name[q]);
		for (unsigned k = 0; k < J_COUNT; k++) {
			f[3] = pel_bench_summarise(v[q][k][3], reps);
			printf(" %s %.1f..%.1f", jname[k], f[3].min, f[3].max);
		}
		printf("\n");
	}
	/* gaps > 5 us: a membarrier IPI under KVM makes one each; the host's own noise few */
	for (unsigned q = 0; q < NRATES; q++) {
		printf("ratio  %-6s (gaps>5us + 1) / (floor's + 1):", rate_name[q]);
		for (unsigned k = J_PARK; k < J_COUNT; k++)
			printf(" %s %.2f", jname[k],
			       (pel_bench_summarise(v[q][k][1], reps).median + 1) /
			       (pel_bench_summarise(v[q][J_FLOOR][1], reps).median + 1));
		printf("\n");
	}
	fflush(stdout);

	/* ---- submit cost ---- */
	printf("submit cpus=%d,%d items=%llu reps=%u (PEL_IDLE_SPIN worker on %d)\n", o->cpu_a,
	       o->cpu_b, (unsigned long long)items, reps, o->cpu_b);
	fflush(stdout);
	for (unsigned r = 0; r < reps; r++) {
		for (unsigned b = 0; b < 2; b++) {
			for (unsigned fence = 0; fence < 2; fence++) {
				uint64_t t0 = pel_bench_mono_ns();

				sv[b][fence][r] = submit_run(o->cpu_b, fence, b, items);
				if (sv[b][fence][r] == 0)
					return 1;
				pel_bench_rest(pel_bench_mono_ns() - t0);
			}
		}
	}
	for (unsigned b = 0; b < 2; b++) {
		struct pel_bench_figure g[2];
		const char *call = b ? "pel_submit_burst" : "pel_submit";

		for (unsigned fence = 0; fence < 2; fence++) {
			g[fence] = pel_bench_summarise(sv[b][fence], reps);
			printf("%-16s %-10s Mtasks/s median=%-7.2f min=%-7.2f max=%.2f\n", call,
			       fence ? "force_fence" : "as built", g[fence].median / 1e6,
			       g[fence].min / 1e6, g[fence].max / 1e6);
			snprintf(name, sizeof(name), "submit_%s_%s_tasks_per_s",
				 b ? "burst" : "single", fence ? "fence" : "built");
			pel_bench_metric(rep, name, g[fence].median, "1/s");
		}
		printf("ratio  %-16s force_fence/as built = %.3f (1.0: no cost)\n", call,
		       g[1].median / g[0].median);
		snprintf(name, sizeof(name), "submit_%s_fence_over_built", b ? "burst" : "single");
		pel_bench_ratio(rep, name, g[1].median / g[0].median);
	}
	return 0;
}
