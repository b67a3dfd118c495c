/* SPDX-License-Identifier: MIT */
/*
 * bench/cli.c - command-line helpers of pel-bench and pel-sim (bench/cli.h).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"

void
pel_cli_usage_exit(const char *prog, const char *usage, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "%s: ", prog);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputs("\n\n", stderr);
	}
	fputs(usage, stderr);
	exit(2);
}

bool
pel_cli_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const struct {
		char c;
		uint64_t mul;
	} suffix[] = { { 'k', 1000ull }, { 'M', 1000000ull }, { 'G', 1000000000ull } };
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	for (unsigned i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++)
		if (*end == suffix[i].c) {
			v = v > UINT64_MAX / suffix[i].mul ? UINT64_MAX : v * suffix[i].mul;
			end++;
			break;
		}
	if (*end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

uint64_t
pel_cli_mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void
pel_cli_json_number(FILE *f, double v, int digits)
{
	if (isfinite(v))	/* JSON has no inf or nan */
		fprintf(f, "%.*g", digits, v);
	else
		fputs("null", f);
}

void
pel_cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}
