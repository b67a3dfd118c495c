/* SPDX-License-Identifier: MIT */
/* tests/helpers.h - shared by the cmocka tests: log capture, bounded waits, configs. */
#ifndef PEL_TESTS_HELPERS_H
#define PEL_TESTS_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <pel/pel.h>

/* ASan builds (gcc says __SANITIZE_ADDRESS__, clang __has_feature): mlock() is a no-op there. */
#if defined(__SANITIZE_ADDRESS__)
#define PEL_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PEL_HAS_ASAN 1
#endif
#endif
#ifndef PEL_HAS_ASAN
#define PEL_HAS_ASAN 0
#endif
/* TSan, likewise (its runtime intercepts mlock() as a no-op too). */
#if defined(__SANITIZE_THREAD__)
#define PEL_HAS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PEL_HAS_TSAN 1
#endif
#endif
#ifndef PEL_HAS_TSAN
#define PEL_HAS_TSAN 0
#endif

#ifndef PEL_FIXTURE_DIR
#error "PEL_FIXTURE_DIR must name tests/fixtures"
#endif
#define FIXTURE(name) PEL_FIXTURE_DIR "/" name

/* Log lines captured from a runtime (cfg.log = capture_log, cfg.log_arg = &struct captured). */
struct captured {
	int lines;
	int warnings;
	int errors;
	char last[512];
	char all[4096];
};

static inline void
capture_log(enum pel_log_level level, const char *msg, void *arg)
{
	struct captured *c = arg;

	c->lines++;
	c->warnings += level == PEL_LOG_WARNING;
	c->errors += level == PEL_LOG_ERROR;
	snprintf(c->last, sizeof(c->last), "%s", msg);
	strncat(c->all, msg, sizeof(c->all) - strlen(c->all) - 2);
	strcat(c->all, "\n");
}

static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait until cond holds, checking every 50 us, at most timeout_ms; evaluates to cond's value. */
#define WAIT_UNTIL(cond, timeout_ms)                                                               \
	({                                                                                         \
		uint64_t _end = now_ns() + (uint64_t)(timeout_ms) * 1000000ull;                    \
		while (!(cond) && now_ns() < _end)                                                 \
			usleep(50);                                                                \
		(cond);                                                                            \
	})

#define assert_error_contains(text)                                                                \
	do {                                                                                       \
		const char *_e = pel_last_error();                                                 \
		if (!strstr(_e, (text)))                                                           \
			fail_msg("pel_last_error() is \"%s\", expected it to contain \"%s\"", _e,  \
				 (text));                                                          \
	} while (0)

/* Workers that never busy-poll: tests share 2 CPUs with the test thread itself. */
static inline void
quiet_config(struct pel_config *cfg, const char *cpus, struct captured *log)
{
	pel_config_default(cfg);
	cfg->cpus = cpus;
	cfg->idle = PEL_IDLE_PARK;
	if (log) {
		memset(log, 0, sizeof(*log));
		cfg->log = capture_log;
		cfg->log_arg = log;
	}
}

/* The first number in a file (sysfs, procfs), or -1. */
static inline long
read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static inline int
online_cpus(void)
{
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

#endif
