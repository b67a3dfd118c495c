/* SPDX-License-Identifier: MIT */
/*
 * bench/bench.h - what pel-bench's suites share: options, the report, pinning, clocks.
 *
 * Benchmarks print figures and never fail on one; a suite fails only when it cannot run or when
 * a correctness check (items lost, reordered or corrupted) trips.
 */
#ifndef PEL_BENCH_H
#define PEL_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <pel/pel.h>
#include <pel/ring.h>

#define PEL_BENCH_MAX_METRICS	64
#define PEL_BENCH_MAX_RATIOS	16
#define PEL_BENCH_BURST		32	/* items per op in the burst mode */

/* Options; 0 means "the suite's default". */
struct pel_bench_opts {
	const char *suite;
	const char *json;		/* --json FILE, NULL: no file */
	int cpu_a;			/* producer */
	int cpu_b;			/* consumer, worker */
	unsigned slots;			/* ring: --slots */
	uint64_t items;			/* ring: --items, both modes; pool: pairs per run */
	unsigned reps;			/* ring, pool: --reps */
	uint64_t samples;		/* handoff: --samples; io: echoes per run */
	uint64_t interval_ns;		/* handoff: --interval-ns */
	unsigned rounds;		/* handoff: --rounds */
	uint64_t seconds;		/* jitter: --seconds */
};

struct pel_bench_metric {
	char name[64];
	double value;
	const char *unit;
};

struct pel_bench_ratio {
	char name[64];
	double value;
};

/* What a suite measured, for --json. */
struct pel_bench_report {
	const char *bench;
	const char *cpu;		/* the CPU's model name (/proc/cpuinfo) */
	unsigned nmetrics;
	unsigned nratios;
	struct pel_bench_metric metric[PEL_BENCH_MAX_METRICS];
	struct pel_bench_ratio ratio[PEL_BENCH_MAX_RATIOS];
};

void pel_bench_metric(struct pel_bench_report *rep, const char *name, double value,
		      const char *unit);
void pel_bench_ratio(struct pel_bench_report *rep, const char *name, double value);

/* Suites: 0, or 1 after printing why to stderr. */
/** Median, min and max of @p v (sorted in place). */
struct pel_bench_figure {
	double median;
	double min;
	double max;
};
struct pel_bench_figure pel_bench_summarise(double *v, unsigned n);

/** A pel log callback that prints each distinct line once. */
void pel_bench_log_once(enum pel_log_level level, const char *msg, void *arg);

/*
 * pel_create() with cpus @p cpus, idle @p idle, flags @p flags and the once-only log; on failure
 * says why on stderr. @return 0, or 1.
 */
int pel_bench_runtime(const char *cpus, enum pel_idle idle, unsigned flags,
		      struct pel_runtime **rt);

int pel_bench_ring(const struct pel_bench_opts *o, struct pel_bench_report *rep);
int pel_bench_trace(const struct pel_bench_opts *o, struct pel_bench_report *rep);
int pel_bench_handoff(const struct pel_bench_opts *o, struct pel_bench_report *rep);
int pel_bench_pool(const struct pel_bench_opts *o, struct pel_bench_report *rep);
int pel_bench_jitter(const struct pel_bench_opts *o, struct pel_bench_report *rep);
int pel_bench_io(const struct pel_bench_opts *o, struct pel_bench_report *rep);
int pel_bench_parallel(const struct pel_bench_opts *o, struct pel_bench_report *rep);
int pel_bench_rt(const struct pel_bench_opts *o, struct pel_bench_report *rep);

/** The CPU's "model name" from /proc/cpuinfo into @p buf ("unknown" if there is none). */
void pel_bench_cpu_model(char *buf, size_t len);

/** Pin the calling thread to @p cpu. @return 0 or a positive errno. */
int pel_bench_pin(int cpu);

/**
 * Start a thread that begins life on @p cpu (its body still pins itself with pel_bench_pin()).
 * @return 0 or a positive errno.
 */
int pel_bench_thread_on(pthread_t *t, int cpu, void *(*fn)(void *), void *arg);

/** Print "cpu: <model name of /proc/cpuinfo>, <N> online": figures depend on it. */
void pel_bench_print_cpu(void);

/** Print "pel-bench: <what>: <strerror(err)>" to stderr; @p err is a positive errno. */
void pel_bench_perror(const char *what, int err);

static inline uint64_t
pel_bench_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The TSC (cntvct_el0 on arm64, the monotonic clock elsewhere). */
static inline uint64_t
pel_bench_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
	uint64_t v;

	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
	return pel_bench_mono_ns();
#endif
}

static inline void
pel_bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/*
 * Sleep after a run that kept both CPUs busy for @p busy_ns: four times as long, at least 50 ms,
 * at most 5 s. On a shared host (a VM's vCPUs are threads of the host) a guest that spins on every
 * vCPU for more than a second or so gets descheduled for milliseconds at a time; on the dev
 * machine one part spinning in five kept the runs clear of that. It also lets other processes on.
 */
static inline void
pel_bench_rest(uint64_t busy_ns)
{
	struct timespec ts;
	uint64_t ns = 4 * busy_ns;

	if (ns < 50 * 1000 * 1000)
		ns = 50 * 1000 * 1000;
	if (ns > 5ull * 1000 * 1000 * 1000)
		ns = 5ull * 1000 * 1000 * 1000;
	ts.tv_sec = (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	nanosleep(&ts, NULL);
}

#endif /* PEL_BENCH_H */
