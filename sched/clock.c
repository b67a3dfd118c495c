/* SPDX-License-Identifier: MIT */
/* sched/clock.c - the TSC, calibrated once against CLOCK_MONOTONIC. */
#include <pthread.h>
#include <time.h>

#include "internal.h"

static pthread_once_t clock_once = PTHREAD_ONCE_INIT;
/* ns = cycles * mult >> 32, and cycles = ns * inv_mult >> 32; fixed after calibration. */
static uint64_t cyc_mult, ns_mult;

uint64_t
pel__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * PEL_NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t
pel__clock_cycles(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	return pel__tsc();
#else
	return pel__mono_ns();
#endif
}

static void
calibrate(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	/* 10 ms against CLOCK_MONOTONIC; the best of three windows resists preemption. */
	double best = 0;

	for (int i = 0; i < 3; i++) {
		uint64_t n0 = pel__mono_ns(), c0 = pel__tsc(), n1, c1;
		struct timespec d = { 0, 3 * PEL_NS_PER_MS };

		nanosleep(&d, NULL);
		n1 = pel__mono_ns();
		c1 = pel__tsc();
		if (n1 > n0 && c1 > c0) {
			double hz = (double)(c1 - c0) * 1e9 / (double)(n1 - n0);

			if (best == 0 || hz < best)
				best = hz;
		}
	}
	if (best <= 0)
		best = 1e9;
	cyc_mult = (uint64_t)(1e9 / best * 4294967296.0);
	ns_mult = (uint64_t)(best / 1e9 * 4294967296.0);
#else
	cyc_mult = ns_mult = 1ull << 32;
#endif
}

void
pel__clock_init(void)
{
	pthread_once(&clock_once, calibrate);
}

uint64_t
pel__cycles_to_ns(uint64_t c)
{
	return (uint64_t)(((unsigned __int128)c * cyc_mult) >> 32);
}

uint64_t
pel__ns_to_cycles(uint64_t ns)
{
	return (uint64_t)(((unsigned __int128)ns * ns_mult) >> 32);
}

uint64_t
pel_now_ns(void)
{
	pel__clock_init();
	return pel__cycles_to_ns(pel__clock_cycles());
}

void
pel__nap(uint64_t *nap, uint64_t deadline_ns)
{
	uint64_t d = *nap ? *nap : PEL_NS_PER_US;
	struct timespec ts;

	*nap = d < PEL_NS_PER_MS ? 2 * d : d;
	if (deadline_ns) {
		uint64_t now = pel__mono_ns();

		if (now >= deadline_ns)
			return;
		if (d > deadline_ns - now)
			d = deadline_ns - now;
	}
	ts.tv_sec = (time_t)(d / PEL_NS_PER_S);
	ts.tv_nsec = (long)(d % PEL_NS_PER_S);
	nanosleep(&ts, NULL);
}
