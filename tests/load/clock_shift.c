/* SPDX-License-Identifier: MIT */
/*
 * tests/load/clock_shift.c - an LD_PRELOAD library for tests/load/test_pel_load.sh: every
 * clock_gettime(CLOCK_REALTIME) of the process reads PEL_TEST_REALTIME_SHIFT_NS (signed) off
 * the kernel's, as after a step of the wall clock. The kernel's RX stamps stay on the true wall
 * clock, so pel-load's offset (realtime - monotonic) no longer matches them: its stamps fall
 * outside [planned send time, now] and must be refused, not used.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

int clock_gettime(clockid_t id, struct timespec *ts);

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*next)(clockid_t, struct timespec *);
	const char *shift;
	long long ns;
	int ret;

	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "clock_gettime");
	ret = next(id, ts);
	shift = getenv("PEL_TEST_REALTIME_SHIFT_NS");
	if (ret || id != CLOCK_REALTIME || !shift)
		return ret;
	ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + atoll(shift);
	ts->tv_sec = (time_t)(ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
	return 0;
}
