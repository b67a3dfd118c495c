/* SPDX-License-Identifier: MIT */
/*
 * bench/cli.h - what the benchmark programs (pel-bench, pel-sim) share on their command lines.
 */
#ifndef PEL_BENCH_CLI_H
#define PEL_BENCH_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/** "PROG: message", a blank line and @p usage on stderr, then exit(2). @p fmt NULL: usage only. */
void pel_cli_usage_exit(const char *prog, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

/**
 * A count with an optional k, M or G suffix (x1000, saturating), in [@p min, @p max].
 * @return true with *@p out set; false on garbage or out of range.
 */
bool pel_cli_count(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/** CLOCK_MONOTONIC in ns. */
uint64_t pel_cli_mono_ns(void);

/** @p v as a JSON number with @p digits significant digits on @p f; inf and nan as null. */
void pel_cli_json_number(FILE *f, double v, int digits);

/** @p s as a JSON string (quoted, escaped) on @p f. */
void pel_cli_json_string(FILE *f, const char *s);

#endif /* PEL_BENCH_CLI_H */
