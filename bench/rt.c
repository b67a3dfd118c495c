/* SPDX-License-Identifier: MIT */
/*
 * bench/rt.c - pel-bench rt: what priorities buy a stream of urgent tasks on a loaded worker.
 *
 * One worker on CPU B (PEL_IDLE_SPIN), one producer on CPU A, open loop (latency from the planned
 * submit time, so a late producer does not hide queueing). The background: a plain task every
 * --interval-ns (default 6 us), bimodal: 99.5% spin 0.5 us, 0.5% spin 500 us in 0.5 us steps,
 * checking pel_should_yield() between steps and queueing their rest with pel_yield_to(). The
 * stream: a short task every 20 us, its latency from the planned submit to its first instruction.
 * Two modes, alternating in rounds on the same runtime:
 *   fifo  the stream submitted with pel_submit(), no quantum: every task in FIFO order
 *   prio  the stream submitted with pel_submit_rt() class 0, quantum 20 us
 * Ratio hi_p99_prio_vs_fifo = p99 prio / p99 fifo (lower is better).
 * Then: timer lateness (a chain of timers 10..200 us apart on the idle worker, due time to the
 * callback) and ns per pel_should_yield() call in a task.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pel/rt.h>

#include "bench.h"

#define HI_INTERVAL_NS		20000ull
#define DEFAULT_BG_NS		6000ull
#define DEFAULT_SAMPLES		20000ull	/* stream tasks per mode */
#define DEFAULT_ROUNDS		10
#define MAX_ROUNDS		1000
#define LATE_NS			20000ull	/* a producer this late at a submit: noted */
#define SHORT_NS		500ull
#define LONG_NS			500000ull
#define LONG_EVERY		200		/* 0.5% */
#define QUANTUM_NS		20000ull
#define TIMERS			4000
#define YIELD_CALLS		20000000ull
#define LONG_SLOTS		1024

static double ns_per_cycle;
static uint64_t short_cycles, long_cycles;

static uint64_t
cycles_of(uint64_t ns)
{
	return (uint64_t)((double)ns / ns_per_cycle);
}

/* ---- the background ---- */

struct long_state {
	uint64_t left;		/* cycles still to spin */
};

static struct long_state longs[LONG_SLOTS];
static _Atomic uint64_t bg_done;

static void
spin_cycles(uint64_t c)
{
	uint64_t t0 = pel_bench_tsc();

	while (pel_bench_tsc() - t0 < c)
		pel_bench_relax();
}

static void
bg_short(void *arg)
{
	(void)arg;
	spin_cycles(short_cycles);
	atomic_fetch_add_explicit(&bg_done, 1, memory_order_relaxed);
}

static void
bg_long(void *arg)
{
	struct long_state *s = arg;

	while (s->left) {
		uint64_t step = s->left < short_cycles ? s->left : short_cycles;

		spin_cycles(step);
		s->left -= step;
		if (s->left && pel_should_yield() && !pel_yield_to(bg_long, s))
			return;
	}
	atomic_fetch_add_explicit(&bg_done, 1, memory_order_relaxed);
}

/* ---- the stream ---- */

static uint64_t *planned;	/* planned submit TSC of stream task i */
static uint64_t late_submits[2], late_max[2];	/* per mode: the producer > LATE_NS late */
static int64_t *lat;		/* its latency in cycles */
static _Atomic uint64_t hi_done;

static void
hi_task(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	lat[i] = (int64_t)(pel_bench_tsc() - planned[i]);
	atomic_fetch_add_explicit(&hi_done, 1, memory_order_release);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const int64_t *v, uint64_t n, double p)
{
	uint64_t k = (uint64_t)(p * (double)n);

	if (k >= n)
		k = n - 1;
	return (double)v[k] * ns_per_cycle;
}

static void
submit_spin(struct pel_producer *p, pel_task_fn fn, void *arg)
{
	while (pel_submit(p, 0, fn, arg) == -EAGAIN)
		pel_bench_relax();
}

/* One run of @p n stream tasks in @p prio mode; their latencies go to lat[base ...]. */
static int
run_mode(struct pel_producer *p, bool prio, uint64_t base, uint64_t n, uint64_t bg_ns,
	 uint64_t *bg_sent)
{
	uint64_t hi_c = cycles_of(HI_INTERVAL_NS), bg_c = cycles_of(bg_ns);
	uint64_t t0 = pel_bench_tsc() + cycles_of(100000), next_hi = t0, next_bg = t0;
	uint64_t sent = 0, nbg = 0;

	atomic_store(&hi_done, 0);
	while (sent < n) {
		if (next_bg <= next_hi) {
			while (pel_bench_tsc() < next_bg)
				pel_bench_relax();
			if (++nbg % LONG_EVERY == 0) {
				struct long_state *s = &longs[(nbg / LONG_EVERY) % LONG_SLOTS];

				s->left = long_cycles;
				submit_spin(p, bg_long, s);
			} else {
				submit_spin(p, bg_short, NULL);
			}
			next_bg += bg_c;
		} else {
			uint64_t i = base + sent;
			uint64_t now;

			while ((now = pel_bench_tsc()) < next_hi)
				pel_bench_relax();
			if (now - next_hi > cycles_of(LATE_NS)) {
				late_submits[prio]++;
				if (now - next_hi > late_max[prio])
					late_max[prio] = now - next_hi;
			}
			planned[i] = next_hi;
			if (prio) {
				struct pel_rt_task t = { hi_task, (void *)(uintptr_t)i,
							 PEL_NO_DEADLINE, 0 };
				int err;

				while ((err = pel_submit_rt(p, 0, &t)) == -EAGAIN)
					pel_bench_relax();
				if (err) {
					fprintf(stderr, "pel-bench: pel_submit_rt: %s\n",
						pel_last_error());
					return 1;
				}
			} else {
				submit_spin(p, hi_task, (void *)(uintptr_t)i);
			}
			sent++;
			next_hi += hi_c;
		}
	}
	*bg_sent += nbg;
	/* acquire: pairs with the release in hi_task(); every latency is written */
	while (atomic_load_explicit(&hi_done, memory_order_acquire) < n)
		pel_bench_relax();
	return 0;
}

/* ---- timers ---- */

static int64_t timer_lat[TIMERS];
static _Atomic int timers_fired;
static uint64_t timer_due;
static uint64_t timer_seed = 88172645463325252ull;

static void timer_cb(void *arg);

static void
timer_arm_next(void)
{
	uint64_t delay;

	timer_seed ^= timer_seed << 13;
	timer_seed ^= timer_seed >> 7;
	timer_seed ^= timer_seed << 17;
	delay = 10000 + timer_seed % 190000;
	timer_due = pel_now_ns() + delay;
	if (pel_timer_at(0, timer_due, timer_cb, NULL, NULL))
		atomic_store(&timers_fired, -1);
}

static void
timer_cb(void *arg)
{
	int n = atomic_load_explicit(&timers_fired, memory_order_relaxed);

	(void)arg;
	timer_lat[n] = (int64_t)(pel_now_ns() - timer_due);
	if (n + 1 < TIMERS)
		timer_arm_next();
	atomic_store_explicit(&timers_fired, n + 1, memory_order_release);
}

static void
timers_start(void *arg)
{
	(void)arg;
	timer_arm_next();
}

/* ---- pel_should_yield() ---- */

static _Atomic uint64_t yield_cycles, yield_base_cycles;
static _Atomic int yield_true;

static void
yield_cost(void *arg)
{
	uint64_t t0, t1, t2;
	int n = 0;

	(void)arg;
	t0 = pel_bench_tsc();
	for (uint64_t i = 0; i < YIELD_CALLS; i++)
		n += pel_should_yield();
	t1 = pel_bench_tsc();
	/* the same loop around a bare TSC read: the part of the cost that is the clock */
	for (uint64_t i = 0; i < YIELD_CALLS; i++)
		n += (int)(pel_bench_tsc() >> 63);
	t2 = pel_bench_tsc();
	atomic_store(&yield_true, n);
	atomic_store(&yield_cycles, t1 - t0);
	atomic_store(&yield_base_cycles, t2 - t1);
}

static double
measure_ns_per_cycle(void)
{
	uint64_t m0 = pel_bench_mono_ns(), c0 = pel_bench_tsc(), m1, c1;

	do {
		m1 = pel_bench_mono_ns();
	} while (m1 - m0 < 50000000ull);
	c1 = pel_bench_tsc();
	return (double)(m1 - m0) / (double)(c1 - c0);
}

int
pel_bench_rt(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	uint64_t n = o->samples ? o->samples : DEFAULT_SAMPLES;
	uint64_t bg_ns = o->interval_ns ? o->interval_ns : DEFAULT_BG_NS;
	unsigned rounds = o->rounds ? o->rounds : DEFAULT_ROUNDS;
	uint64_t per = n / rounds, bg_sent[2] = { 0, 0 };
	struct pel_runtime *rt = NULL;
	struct pel_producer *p = NULL;
	static double round_p99[2][MAX_ROUNDS];
	int64_t *sorted[2], *tmp = NULL;
	double p50[2], p90[2], p99[2], p999[2], maxv[2], med[2];
	char cpus[16];
	int err = 1;

	if (rounds > MAX_ROUNDS)
		rounds = MAX_ROUNDS;
	if (per < 100)
		per = 100;
	n = per * rounds;
	planned = calloc(2 * n, sizeof(*planned));
	lat = calloc(2 * n, sizeof(*lat));
	tmp = calloc(per, sizeof(*tmp));
	if (!planned || !lat || !tmp) {
		pel_bench_perror("calloc", ENOMEM);
		goto out;
	}
	err = pel_bench_pin(o->cpu_a);
	if (err) {
		pel_bench_perror("pinning the producer", err);
		err = 1;
		goto out;
	}
	ns_per_cycle = measure_ns_per_cycle();
	short_cycles = cycles_of(SHORT_NS);
	long_cycles = cycles_of(LONG_NS);
	snprintf(cpus, sizeof(cpus), "%d", o->cpu_b);
	if (pel_bench_runtime(cpus, PEL_IDLE_SPIN, PEL_F_SHARE_CPUS, &rt))
		goto out;
	if (pel_rt_init(rt, NULL) || pel_producer_open(rt, &p)) {
		fprintf(stderr, "pel-bench: real-time set-up: %s\n", pel_last_error());
		goto out;
	}
	printf("rt cpus=%d,%d stream=%llu tasks/mode every %llu ns, background every %llu ns "
	       "(%.1f%% of %llu ns, else %llu ns), quantum %llu ns, rounds=%u\n", o->cpu_a,
	       o->cpu_b, (unsigned long long)n, HI_INTERVAL_NS, (unsigned long long)bg_ns,
	       100.0 / LONG_EVERY, LONG_NS, SHORT_NS, QUANTUM_NS, rounds);
	printf("note: latency from the planned submit time to the stream task's first "
	       "instruction; the modes alternate, %u rounds of %llu\n", rounds,
	       (unsigned long long)per);
	fflush(stdout);
	for (unsigned r = 0; r < rounds; r++)
		for (int m = 0; m < 2; m++) {
			bool prio = (r + (unsigned)m) % 2;	/* alternate which goes first */

			if (pel_rt_set_quantum(rt, prio ? QUANTUM_NS : 0))
				goto out_rt;
			if (run_mode(p, prio, (prio ? n : 0) + r * per, per, bg_ns,
				     &bg_sent[prio]))
				goto out_rt;
			if (pel_drain(rt, 30 * PEL_NS_PER_S)) {
				fprintf(stderr, "pel-bench: drain: %s\n", pel_last_error());
				goto out_rt;
			}
			/* this round's p99: a host stall hits a round, not the median of rounds */
			memcpy(tmp, lat + (prio ? n : 0) + r * per, per * sizeof(*tmp));
			qsort(tmp, per, sizeof(*tmp), cmp_i64);
			round_p99[prio][r] = pct(tmp, per, 0.99);
		}
	for (int m = 0; m < 2; m++) {
		sorted[m] = lat + (m ? n : 0);
		qsort(sorted[m], n, sizeof(int64_t), cmp_i64);
		p50[m] = pct(sorted[m], n, 0.50);
		p90[m] = pct(sorted[m], n, 0.90);
		p99[m] = pct(sorted[m], n, 0.99);
		p999[m] = pct(sorted[m], n, 0.999);
		maxv[m] = (double)sorted[m][n - 1] * ns_per_cycle;
	}
	for (int m = 0; m < 2; m++) {
		double v[MAX_ROUNDS];

		memcpy(v, round_p99[m], rounds * sizeof(v[0]));
		med[m] = pel_bench_summarise(v, rounds).median;
	}
	for (int m = 0; m < 2; m++)
		printf("%-9s %-22s ns p50=%-8.0f p90=%-8.0f p99=%-8.0f p99.9=%-8.0f "
		       "max=%-8.0f rounds' p99 median=%.0f\n", m ? "prio" : "fifo",
		       m ? "stream, class 0" : "stream, plain FIFO", p50[m], p90[m], p99[m],
		       p999[m], maxv[m], med[m]);
	printf("ratio     prio/fifo stream p99   x=%.4f (hi_p99_prio_vs_fifo: median of the "
	       "rounds' p99; lower is better; target <= 0.1)\n", med[1] / med[0]);
	printf("ratio     prio/fifo stream p99   x=%.4f (hi_p99_prio_vs_fifo_pooled: all "
	       "samples)\n", p99[1] / p99[0]);
	for (int m = 0; m < 2; m++)
		printf("note: %s: the producer was >%llu us late at %llu stream submits (by up "
		       "to %.0f us): the host stopped it\n", m ? "prio" : "fifo", LATE_NS / 1000,
		       (unsigned long long)late_submits[m],
		       (double)late_max[m] * ns_per_cycle / 1e3);
	pel_bench_metric(rep, "hi_p50_fifo_ns", p50[0], "ns");
	pel_bench_metric(rep, "hi_p99_fifo_ns", p99[0], "ns");
	pel_bench_metric(rep, "hi_p50_prio_ns", p50[1], "ns");
	pel_bench_metric(rep, "hi_p99_prio_ns", p99[1], "ns");
	pel_bench_metric(rep, "hi_p999_prio_ns", p999[1], "ns");
	pel_bench_metric(rep, "hi_p99_fifo_round_median_ns", med[0], "ns");
	pel_bench_metric(rep, "hi_p99_prio_round_median_ns", med[1], "ns");
	pel_bench_ratio(rep, "hi_p99_prio_vs_fifo", med[1] / med[0]);
	pel_bench_ratio(rep, "hi_p99_prio_vs_fifo_pooled", p99[1] / p99[0]);

	/* timers: a chain on the (otherwise idle) spinning worker */
	atomic_store(&timers_fired, 0);
	pel_rt_set_quantum(rt, 0);
	submit_spin(p, timers_start, NULL);
	while (atomic_load_explicit(&timers_fired, memory_order_acquire) < TIMERS &&
	       atomic_load_explicit(&timers_fired, memory_order_relaxed) >= 0)
		pel_bench_rest(0);
	if (atomic_load(&timers_fired) < 0) {
		fprintf(stderr, "pel-bench: pel_timer_at() failed\n");
		goto out_rt;
	}
	qsort(timer_lat, TIMERS, sizeof(int64_t), cmp_i64);
	if (timer_lat[0] < 0) {
		fprintf(stderr, "pel-bench: a timer fired %lld ns early\n",
			(long long)-timer_lat[0]);
		goto out_rt;
	}
	printf("%-9s %-22s ns p50=%-9lld p99=%-9lld max=%lld (%d timers, 10..200 us apart)\n",
	       "timer", "lateness, idle worker", (long long)timer_lat[TIMERS / 2],
	       (long long)timer_lat[TIMERS * 99 / 100], (long long)timer_lat[TIMERS - 1], TIMERS);
	pel_bench_metric(rep, "timer_late_p50_ns", (double)timer_lat[TIMERS / 2], "ns");
	pel_bench_metric(rep, "timer_late_p99_ns", (double)timer_lat[TIMERS * 99 / 100], "ns");

	/* pel_should_yield() */
	submit_spin(p, yield_cost, NULL);
	if (pel_drain(rt, 60 * PEL_NS_PER_S))
		goto out_rt;
	printf("%-9s %-22s ns/call=%.2f (a bare TSC read in the same loop: %.2f)\n", "yield",
	       "pel_should_yield()",
	       (double)atomic_load(&yield_cycles) * ns_per_cycle / (double)YIELD_CALLS,
	       (double)atomic_load(&yield_base_cycles) * ns_per_cycle / (double)YIELD_CALLS);
	pel_bench_metric(rep, "should_yield_ns",
			 (double)atomic_load(&yield_cycles) * ns_per_cycle / (double)YIELD_CALLS,
			 "ns");
	err = 0;
out_rt:
	pel_producer_close(p);
	pel_destroy(rt);
out:
	free(planned);
	free(lat);
	free(tmp);
	return err;
}
