/* SPDX-License-Identifier: MIT */
/*
 * bench/handoff.c - "pel-bench handoff": latency from a submit on CPU A to the task's first
 * instruction on CPU B, open loop.
 *
 * Sample i is planned at t0 + i * interval. The producer, pinned to A, spins until that time and
 * hands the sample over; the receiving side's first action is reading the TSC. Latency is arrival
 * minus the *planned* time, so a producer that falls behind (preempted, blocked on a full queue)
 * shows up in the figures instead of silently spacing the samples out (no coordinated omission).
 * Three ways across, with the same CPUs, pacing and clock:
 *   floor    a thread on B spins (with pause) on one 64-byte line; A writes the planned time and
 *            the sequence number into it: one cache-line transfer, the physical floor
 *   baseline a thread pool of one worker on B waiting on a condition variable; A locks, pushes,
 *            unlocks, signals (bench/mutexq.h)
 *   pel      a pel runtime with one PEL_IDLE_SPIN worker on B; A submits with pel_submit()
 *   pel+fence the same with pel__barrier_force_fence(true): the barriers' fallback where
 *            membarrier is missing (a seq_cst fence on each side of both Dekker pairs)
 * The variants take turns in --rounds rounds (default 10), so that whatever else the machine does
 * lands on all four alike; a round starts each variant afresh (thread, queue or runtime) and its
 * first 1% of samples are dropped as warm-up. Percentiles come from the sorted samples (no
 * histogram). The sender's lateness and B's poll period are printed as notes, to read the tails
 * and the gap to the floor by.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pel/pel.h>

#include "bench.h"
#include "internal.h"	/* pel__barrier_force_fence(): pel-bench links the static library */
#include "mutexq.h"

#define DEFAULT_SAMPLES		200000ull
#define DEFAULT_INTERVAL_NS	10000ull
#define LEAD_IN_NS		(2 * 1000 * 1000)	/* from planning to sample 0 */
#define CALIBRATE_NS		(20 * 1000 * 1000)
#define DEFAULT_ROUNDS		10

enum hkind {
	H_FLOOR,
	H_CONDVAR,
	H_PEL,
	H_PEL_FENCE,
	H_COUNT,
};

static const struct {
	const char *role;
	const char *label;
	const char *name;		/* in metric names */
} hinfo[H_COUNT] = {
	[H_FLOOR] = { "floor", "cache line", "floor" },
	[H_CONDVAR] = { "baseline", "condvar pool", "condvar" },
	[H_PEL] = { "pel", "pel_submit", "pel" },
	[H_PEL_FENCE] = { "pel+fence", "pel_submit fence", "pel_fence" },
};

/* The floor's line: A writes planned then seq; B polls seq. */
struct floor_line {
	alignas(PEL_CACHELINE) _Atomic uint64_t seq;	/* sample index + 1; 0: none yet */
	_Atomic uint64_t planned;
};

struct handoff {
	enum hkind kind;
	uint64_t n;
	uint64_t warm;			/* samples dropped as warm-up */
	uint64_t *planned;		/* TSC at which sample i is due */
	uint64_t late_cyc;		/* a send this late counts as late */
	uint64_t late;			/* sends past the warm-up later than late_cyc */
	uint64_t late_max;		/* the latest of them, in cycles */
	int cpu_a;
	int cpu_b;
	/* the B side, for the floor and the condvar pool */
	alignas(PEL_CACHE_GUARD) _Atomic unsigned b_ready;
	int b_err;
	bool failed;
	char why[160];
	uint64_t b_polls;		/* floor: empty polls, for the poll period */
	uint64_t b_poll_cyc;		/* floor: cycles from first to last arrival */
	alignas(PEL_CACHE_GUARD) struct floor_line line;
	alignas(PEL_CACHE_GUARD) struct pel_bench_mq mq;
	struct pel_runtime *rt;
	struct pel_producer *prod;
	struct pel_worker_stats stats;	/* pel's worker, at the end of the round */
};

/* Arrival TSC of each sample; written on B by whoever receives it. */
static uint64_t *arrive;

/*
 * The TSC, read only once every earlier instruction has completed (rdtsc alone may run ahead of
 * the load that saw the sample arrive). Both receiving sides stamp with it.
 */
static inline uint64_t
tsc_after(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint32_t lo, hi;

	__asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
	uint64_t v;

	__asm__ __volatile__("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
	return v;
#else
	return pel_bench_tsc();
#endif
}

/* The task: its first action is reading the clock. */
static void
stamp_task(void *arg)
{
	uint64_t now = tsc_after();

	arrive[(uintptr_t)arg] = now;
}

/* One (TSC, CLOCK_MONOTONIC) pair, the TSC taken as the midpoint of the tightest bracket. */
static void
clock_pair(uint64_t *cyc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;

	*cyc = 0;
	*ns = 0;
	for (int i = 0; i < 7; i++) {
		uint64_t c0 = pel_bench_tsc();
		uint64_t t = pel_bench_mono_ns();
		uint64_t c1 = pel_bench_tsc();

		if (c1 - c0 < best) {
			best = c1 - c0;
			*cyc = c0 + (c1 - c0) / 2;
			*ns = t;
		}
	}
}

/* Nanoseconds per TSC cycle, measured against CLOCK_MONOTONIC over CALIBRATE_NS. */
static double
calibrate(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = CALIBRATE_NS };
	uint64_t c0, t0, c1, t1;

	clock_pair(&c0, &t0);
	nanosleep(&ts, NULL);
	clock_pair(&c1, &t1);
	return (double)(t1 - t0) / (double)(c1 - c0);
}

static void
plan(struct handoff *h, double ns_per_cycle, uint64_t interval_ns)
{
	double step = (double)interval_ns / ns_per_cycle;
	uint64_t start = pel_bench_tsc() + (uint64_t)(LEAD_IN_NS / ns_per_cycle);

	for (uint64_t i = 0; i < h->n; i++)
		h->planned[i] = start + (uint64_t)((double)i * step);
}

static void say_failed(struct handoff *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Keep the first failure's reason. */
static void
say_failed(struct handoff *h, const char *fmt, ...)
{
	va_list ap;

	if (h->failed)
		return;
	h->failed = true;
	va_start(ap, fmt);
	vsnprintf(h->why, sizeof(h->why), fmt, ap);
	va_end(ap);
}

/* B side of the floor: spin on the line, stamp each new sequence number. */
static void *
floor_main(void *p)
{
	struct handoff *h = p;
	uint64_t last = 0, polls = 0, first = 0, now = 0;

	h->b_err = pel_bench_pin(h->cpu_b);
	atomic_store_explicit(&h->b_ready, 1, memory_order_release);
	if (h->b_err)
		return NULL;
	while (last < h->n) {
		/* acquire: pairs with the release of seq in run_side_a(); planned is this one's */
		uint64_t s = atomic_load_explicit(&h->line.seq, memory_order_acquire);
		uint64_t planned;

		if (s == last) {
			polls++;
			pel_bench_relax();
			continue;
		}
		now = tsc_after();
		if (!last) {
			first = now;
			polls = 0;
		}
		/* acquire: keeps the re-read of seq below after this load */
		planned = atomic_load_explicit(&h->line.planned, memory_order_acquire);
		if (s > h->n) {
			say_failed(h, "floor: sequence %llu past the last sample %llu",
				   (unsigned long long)s, (unsigned long long)h->n);
			return NULL;
		}
		/* a sample overwritten before we looked arrived, at the latest, now */
		for (uint64_t i = last; i < s; i++)
			arrive[i] = now;
		/*
		 * seq unchanged since: planned is sample s's, or already sample s + 1's (A writes
		 * planned before seq); anything else is a torn or lost write
		 */
		if (atomic_load_explicit(&h->line.seq, memory_order_acquire) == s &&
		    planned != h->planned[s - 1] && (s == h->n || planned != h->planned[s]))
			say_failed(h, "floor: sample %llu carried planned time %llu",
				   (unsigned long long)s, (unsigned long long)planned);
		last = s;
	}
	h->b_polls = polls;
	h->b_poll_cyc = now - first;
	return NULL;
}

/* B side of the condvar pool: one worker taking one task at a time. */
static void *
pool_main(void *p)
{
	struct handoff *h = p;
	struct pel_task t;

	h->b_err = pel_bench_pin(h->cpu_b);
	atomic_store_explicit(&h->b_ready, 1, memory_order_release);
	if (h->b_err)
		return NULL;
	while (pel_bench_mq_pop(&h->mq, &t, 1))
		t.fn(t.arg);
	return NULL;
}

/* A side: at each planned time hand sample i over. 0, or 1 after recording why. */
static int
run_side_a(struct handoff *h)
{
	struct pel_task t = { stamp_task, NULL };
	int err;

	h->late = 0;
	h->late_max = 0;
	for (uint64_t i = 0; i < h->n; i++) {
		uint64_t due = h->planned[i], now;

		while ((now = pel_bench_tsc()) < due)
			pel_bench_relax();
		if (pel_unlikely(now - due > h->late_cyc) && i >= h->warm) {
			h->late++;
			if (now - due > h->late_max)
				h->late_max = now - due;
		}
		switch (h->kind) {
		case H_FLOOR:
			atomic_store_explicit(&h->line.planned, due, memory_order_relaxed);
			/* release: pairs with the acquire of seq in floor_main() */
			atomic_store_explicit(&h->line.seq, i + 1, memory_order_release);
			break;
		case H_CONDVAR:
			t.arg = (void *)(uintptr_t)i;
			if (!pel_bench_mq_push(&h->mq, &t, 1)) {
				say_failed(h, "condvar pool closed at sample %llu of %llu",
					   (unsigned long long)i, (unsigned long long)h->n);
				return 1;
			}
			break;
		case H_PEL:
		case H_PEL_FENCE:
			t.arg = (void *)(uintptr_t)i;
			while ((err = pel_submit(h->prod, 0, stamp_task, t.arg)) == -EAGAIN)
				pel_bench_relax();
			if (err) {
				say_failed(h, "pel_submit() of sample %llu: %s: %s",
					   (unsigned long long)i, pel_strerror(err),
					   pel_last_error());
				return 1;
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

static int
start_b(struct handoff *h, pthread_t *b)
{
	int err;

	atomic_store(&h->b_ready, 0);
	err = pel_bench_thread_on(b, h->cpu_b, h->kind == H_FLOOR ? floor_main : pool_main, h);
	if (err) {
		pel_bench_perror("pthread_create", err);
		return 1;
	}
	while (!atomic_load_explicit(&h->b_ready, memory_order_acquire))
		pel_bench_relax();
	if (h->b_err) {
		fprintf(stderr, "pel-bench: cannot pin to CPU %d: %s\n", h->cpu_b,
			strerror(h->b_err));
		pthread_join(*b, NULL);
		return 1;
	}
	return 0;
}

/* pel's log lines to stderr, each distinct line once: every round creates a runtime. */
static int
start_pel(struct handoff *h)
{
	struct pel_config cfg;
	char cpus[16];
	int err, cpu;

	snprintf(cpus, sizeof(cpus), "%d", h->cpu_b);
	pel_config_default(&cfg);
	cfg.cpus = cpus;
	cfg.idle = PEL_IDLE_SPIN;
	cfg.log = pel_bench_log_once;
	/* this thread is already pinned to A: pel_create() checks the cgroup's cpuset, not our mask */
	err = pel_create(&cfg, &h->rt);
	if (!err) {
		err = pel_bench_pin(h->cpu_a);
		if (err) {
			fprintf(stderr, "pel-bench: cannot pin to CPU %d: %s\n", h->cpu_a,
				strerror(err));
			pel_destroy(h->rt);
			return 1;
		}
	}
	if (err) {
		fprintf(stderr, "pel-bench: pel_create(cpus \"%s\", PEL_IDLE_SPIN): %s: %s\n", cpus,
			pel_strerror(err), pel_last_error());
		return 1;
	}
	cpu = pel_worker_cpu(h->rt, 0);
	if (pel_worker_count(h->rt) != 1 || cpu != h->cpu_b) {
		fprintf(stderr, "pel-bench: pel_create(cpus \"%s\"): %u workers, worker 0 on %d\n",
			cpus, pel_worker_count(h->rt), cpu);
		pel_destroy(h->rt);
		return 1;
	}
	err = pel_producer_open(h->rt, &h->prod);
	if (err) {
		fprintf(stderr, "pel-bench: pel_producer_open: %s: %s\n", pel_strerror(err),
			pel_last_error());
		pel_destroy(h->rt);
		return 1;
	}
	return 0;
}

/* One variant, start to finish. 0, or 1 after saying why. */
static int
run_kind(struct handoff *h, enum hkind k, double ns_per_cycle, uint64_t interval_ns)
{
	pthread_t b;
	int err = 0;

	h->kind = k;
	h->failed = false;
	memset(arrive, 0, h->n * sizeof(*arrive));
	atomic_store(&h->line.seq, 0);
	atomic_store(&h->line.planned, 0);
	switch (k) {
	case H_FLOOR:
		if (start_b(h, &b))
			return 1;
		break;
	case H_CONDVAR:
		err = pel_bench_mq_init(&h->mq, 1024);
		if (err) {
			pel_bench_perror("mutex queue", err);
			return 1;
		}
		if (start_b(h, &b)) {
			pel_bench_mq_destroy(&h->mq);
			return 1;
		}
		break;
	case H_PEL:
	case H_PEL_FENCE:
		pel__barrier_force_fence(k == H_PEL_FENCE);
		if (start_pel(h)) {
			pel__barrier_force_fence(false);
			return 1;
		}
		break;
	default:
		return 1;
	}

	plan(h, ns_per_cycle, interval_ns);
	err = run_side_a(h);

	switch (k) {
	case H_FLOOR:
		if (err)	/* B waits for the last sample: hand it one */
			atomic_store(&h->line.seq, h->n);
		pthread_join(b, NULL);
		break;
	case H_CONDVAR:
		pel_bench_mq_close(&h->mq);
		pthread_join(b, NULL);
		pel_bench_mq_destroy(&h->mq);
		break;
	case H_PEL:
	case H_PEL_FENCE:
		err = pel_drain(h->rt, 10 * PEL_NS_PER_S);
		if (err)
			say_failed(h, "pel_drain(): %s: %s", pel_strerror(err), pel_last_error());
		if (pel_stats(h->rt, 0, &h->stats))
			memset(&h->stats, 0, sizeof(h->stats));
		pel_producer_close(h->prod);
		pel_destroy(h->rt);
		h->prod = NULL;
		h->rt = NULL;
		pel__barrier_force_fence(false);
		break;
	default:
		break;
	}
	if (!h->failed) {
		for (uint64_t i = 0; i < h->n; i++) {
			if (!arrive[i]) {
				say_failed(h, "sample %llu of %llu never arrived",
					   (unsigned long long)i, (unsigned long long)h->n);
				break;
			}
		}
	}
	if (h->failed) {
		fprintf(stderr, "pel-bench: handoff: %s: %s\n", hinfo[k].name, h->why);
		return 1;
	}
	return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* One variant's samples over all rounds. */
struct acc {
	int64_t *lat;			/* ns; each round's samples past its warm-up */
	uint64_t m;
	uint64_t dropped;		/* warm-up samples dropped */
	uint64_t negative;		/* arrivals stamped before they were planned */
	int64_t earliest;		/* ns, the most negative of them */
	uint64_t late;			/* sends more than 1 us late */
	uint64_t late_max;		/* cycles */
	double polls;			/* empty polls of B (floor: its loop; pel: idle passes) */
	double poll_ns;			/* time they took (floor: including arrivals) */
};

struct pct {
	double p50;
	double p99;
	double p999;
	double max;
};

/* Append this round's latencies, past its warm-up, to @p a. */
static void
collect(const struct handoff *h, struct acc *a, double ns_per_cycle)
{
	for (uint64_t i = h->warm; i < h->n; i++) {
		int64_t cyc = (int64_t)(arrive[i] - h->planned[i]);

		int64_t ns = (int64_t)((double)cyc * ns_per_cycle);

		a->lat[a->m++] = ns;
		if (ns < 0) {
			a->negative++;
			if (ns < a->earliest)
				a->earliest = ns;
		}
	}
	a->dropped += h->warm;
	if (h->kind == H_FLOOR) {
		a->polls += (double)h->b_polls;
		a->poll_ns += (double)h->b_poll_cyc * ns_per_cycle;
	} else if (h->kind == H_PEL) {
		a->polls += (double)h->stats.idle_loops;
		a->poll_ns += (double)h->stats.idle_ns;
	}
	a->late += h->late;
	if (h->late_max > a->late_max)
		a->late_max = h->late_max;
}

/* Nearest-rank percentile of sorted @p v. */
static double
rank(const int64_t *v, uint64_t n, double q)
{
	uint64_t i = (uint64_t)(q * (double)n + 0.999999);

	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return (double)v[i - 1];
}

static struct pct
summarise(struct acc *a)
{
	struct pct p;

	qsort(a->lat, a->m, sizeof(*a->lat), cmp_i64);
	p.p50 = rank(a->lat, a->m, 0.50);
	p.p99 = rank(a->lat, a->m, 0.99);
	p.p999 = rank(a->lat, a->m, 0.999);
	p.max = (double)a->lat[a->m - 1];
	return p;
}

int
pel_bench_handoff(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	static struct handoff h;
	uint64_t interval_ns = o->interval_ns ? o->interval_ns : DEFAULT_INTERVAL_NS;
	uint64_t samples = o->samples ? o->samples : DEFAULT_SAMPLES;
	unsigned rounds = o->rounds ? o->rounds : DEFAULT_ROUNDS;
	uint64_t chunk;
	struct acc acc[H_COUNT] = { 0 };
	struct pct pct[H_COUNT];
	double ns_per_cycle;
	char name[64];
	int err, ret = 1;
	unsigned k, r;

	if (samples / rounds < 100) {
		fprintf(stderr, "pel-bench: --samples %llu / --rounds %u: under 100 a round\n",
			(unsigned long long)samples, rounds);
		return 1;
	}
	memset(&h, 0, sizeof(h));
	h.cpu_a = o->cpu_a;
	h.cpu_b = o->cpu_b;
	chunk = (samples + rounds - 1) / rounds;

	err = pel_bench_pin(h.cpu_a);
	if (err) {
		fprintf(stderr, "pel-bench: cannot pin to CPU %d: %s\n", h.cpu_a, strerror(err));
		return 1;
	}
	h.planned = calloc(chunk, sizeof(*h.planned));
	arrive = calloc(chunk, sizeof(*arrive));
	if (!h.planned || !arrive)
		goto out_nomem;
	for (k = 0; k < H_COUNT; k++) {
		acc[k].lat = calloc(samples, sizeof(*acc[k].lat));
		if (!acc[k].lat)
			goto out_nomem;
	}
	ns_per_cycle = calibrate();
	h.late_cyc = (uint64_t)(1000.0 / ns_per_cycle);

	pel_bench_print_cpu();
	printf("handoff cpus=%d,%d samples=%llu interval_ns=%llu rounds=%u tsc_mhz=%.1f\n",
	       h.cpu_a, h.cpu_b, (unsigned long long)samples, (unsigned long long)interval_ns,
	       rounds, 1e3 / ns_per_cycle);
	printf("note: ns from the planned submit time on CPU %d to the TSC read on CPU %d\n",
	       h.cpu_a, h.cpu_b);
	printf("note: %u rounds of floor, condvar pool, pel, pel+fence, %llu samples each\n",
	       rounds, (unsigned long long)chunk);
	printf("note: warm-up: the first 1%% of each round's samples are dropped\n");
	fflush(stdout);

	for (r = 0; r < rounds; r++) {
		uint64_t left = samples - (uint64_t)r * chunk;

		h.n = left < chunk ? left : chunk;
		h.warm = h.n / 100;
		for (k = 0; k < H_COUNT; k++) {
			if (run_kind(&h, k, ns_per_cycle, interval_ns))
				goto out_free;
			collect(&h, &acc[k], ns_per_cycle);
			pel_bench_rest(h.n * interval_ns);
		}
	}

	for (k = 0; k < H_COUNT; k++) {
		static const char *const suffix[] = { "p50", "p99", "p999", "max" };
		double v[4];

		pct[k] = summarise(&acc[k]);
		v[0] = pct[k].p50;
		v[1] = pct[k].p99;
		v[2] = pct[k].p999;
		v[3] = pct[k].max;
		printf("%-9s %-15s ns p50=%-6.0f p99=%-6.0f p99.9=%-7.0f max=%.0f\n", hinfo[k].role,
		       hinfo[k].label, v[0], v[1], v[2], v[3]);
		for (unsigned j = 0; j < 4; j++) {
			snprintf(name, sizeof(name), "%s_%s", hinfo[k].name, suffix[j]);
			pel_bench_metric(rep, name, v[j], "ns");
		}
	}
	printf("%-9s %-15s    p50=%-6.2f p99=%-6.2f (lower is better)\n", "ratio", "pel/floor",
	       pct[H_PEL].p50 / pct[H_FLOOR].p50, pct[H_PEL].p99 / pct[H_FLOOR].p99);
	printf("%-9s %-15s    p50=%-6.2f (higher is better)\n", "ratio", "condvar/pel",
	       pct[H_CONDVAR].p50 / pct[H_PEL].p50);
	printf("%-9s %-15s    p50=%-6.2f p99=%-6.2f (1.00: the fallback costs nothing)\n",
	       "ratio", "pel+fence/pel", pct[H_PEL_FENCE].p50 / pct[H_PEL].p50,
	       pct[H_PEL_FENCE].p99 / pct[H_PEL].p99);
	pel_bench_ratio(rep, "p50_vs_floor", pct[H_PEL].p50 / pct[H_FLOOR].p50);
	pel_bench_ratio(rep, "p99_vs_floor", pct[H_PEL].p99 / pct[H_FLOOR].p99);
	pel_bench_ratio(rep, "condvar_p50_over_pel_p50", pct[H_CONDVAR].p50 / pct[H_PEL].p50);
	pel_bench_ratio(rep, "fence_p50_over_pel_p50", pct[H_PEL_FENCE].p50 / pct[H_PEL].p50);
	pel_bench_ratio(rep, "fence_p99_over_pel_p99", pct[H_PEL_FENCE].p99 / pct[H_PEL].p99);
	printf("note: %llu samples a row, %llu dropped as warm-up\n",
	       (unsigned long long)acc[H_PEL].m, (unsigned long long)acc[H_PEL].dropped);
	if (acc[H_FLOOR].polls > 0 && acc[H_PEL].polls > 0)
		printf("note: poll period on B: floor %.1f ns, pel worker %.1f ns (idle passes)\n",
		       acc[H_FLOOR].poll_ns / acc[H_FLOOR].polls,
		       acc[H_PEL].poll_ns / acc[H_PEL].polls);
	for (k = 0; k < H_COUNT; k++) {
		if (!acc[k].late)
			continue;
		printf("note: %s: sender >1 us late %llu times, by up to %.0f ns (counted)\n",
		       hinfo[k].name, (unsigned long long)acc[k].late,
		       (double)acc[k].late_max * ns_per_cycle);
	}
	for (k = 0; k < H_COUNT; k++) {
		if (!acc[k].negative)
			continue;
		printf("warning: %s: %llu arrivals up to %lld ns before planned: TSC skew?\n",
		       hinfo[k].name, (unsigned long long)acc[k].negative,
		       (long long)-acc[k].earliest);
	}
	ret = 0;
	goto out_free;
out_nomem:
	pel_bench_perror("calloc", ENOMEM);
out_free:
	for (k = 0; k < H_COUNT; k++)
		free(acc[k].lat);
	free(arrive);
	arrive = NULL;
	free(h.planned);
	return ret;
}
