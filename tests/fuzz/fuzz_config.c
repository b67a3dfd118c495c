/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_config.c - libFuzzer target: the CPU-list parser and config validation.
 *
 * Each input is a 28-byte header that fills struct pel_config, then the CPU-list text. Missing
 * header bytes read as 0. The text is copied into a buffer of its own size plus a NUL, so it ends
 * at its first NUL byte and any read past it is an ASan report.
 *
 *	offset	size	field
 *	0	4	ring_slots, little-endian u32 (0: default; else must be a power of two)
 *	4	2	max_producers, little-endian u16 (0: default; at most 4096)
 *	6	1	idle, as is (0 SPIN, 1 BACKOFF, 2 PARK; anything else is invalid)
 *	7	1	rt_priority, signed (0..99 valid)
 *	8	1	flags (bits outside PEL_F_ALL are invalid)
 *	9	1	bit 0: cfg.cpus = NULL (the text is still parsed on its own);
 *			bits 1-7: sysfs fixture, modulo the number of tests/fixtures/sysfs-* roots;
 *			0 is sysfs-2cpu, the others follow in name order
 *	10	1	CPUs this process may use (pel__set_allowed_cpus_override): bit i is CPU i;
 *			0: every CPU
 *	11	8	idle_spin_ns, little-endian u64
 *	19	8	idle_park_ns, little-endian u64
 *	27	1	size of a second buffer pel__topo_format_cpus() writes into (0: none)
 *	28	...	the CPU list, e.g. "2-5,8"
 *
 * A seed for "2-5,8", idle BACKOFF, the rest default:
 *	{ printf '\0\0\0\0\0\0\1'; head -c 21 /dev/zero; printf '2-5,8'; } >corpus/range
 *
 * Run on a copy of the corpus (libFuzzer adds new inputs to the first directory it is given):
 *	cp -r tests/fuzz/corpus /tmp/corpus && build/tests/fuzz/fuzz_config -max_total_time=60 /tmp/corpus
 * Replay one input: build/tests/fuzz/fuzz_config crash-<sha1>
 *
 * Each input runs pel__topo_parse_cpus() on the text and pel__config_resolve() on the config, and
 * checks what their contracts in sched/internal.h promise; a broken promise prints what broke and
 * traps, which libFuzzer reports as a crash and saves the input.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pel/pel.h>

#include "internal.h"

#ifndef PEL_FIXTURE_DIR
#error "PEL_FIXTURE_DIR must name tests/fixtures (tests/fuzz/meson.build sets it)"
#endif

#define HDR_LEN		28
#define FMT_BIG		8192	/* any set of CPU_SETSIZE CPUs fits */
#define MAX_FIXTURES	64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fixture[MAX_FIXTURES];	/* absolute sysfs roots; fixture[0] is sysfs-2cpu */
static unsigned nfixtures;
static const char *cur_text;		/* for the report when a check fails */
static int log_cookie;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			broken(#cond, __LINE__);                                                   \
	} while (0)

static void __attribute__((noreturn))
broken(const char *what, int line)
{
	fprintf(stderr, "fuzz_config.c:%d: broken promise: %s\n", line, what);
	fprintf(stderr, "  cpu list \"");
	for (const char *p = cur_text; p && *p; p++)
		fprintf(stderr, (*p >= 0x20 && *p < 0x7f) ? "%c" : "\\x%02x", (unsigned char)*p);
	fprintf(stderr, "\"\n  pel_last_error(): \"%s\"\n", pel_last_error());
	__builtin_trap();
}

static uint64_t
le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

static void
discard_log(enum pel_log_level level, const char *msg, void *arg)
{
	/* pel_log_fn: one line, no newline, with the log_arg we gave */
	CHECK(arg == &log_cookie);
	CHECK(level == PEL_LOG_ERROR || level == PEL_LOG_WARNING || level == PEL_LOG_INFO);
	CHECK(msg != NULL);
	CHECK(strchr(msg, '\n') == NULL);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *names[MAX_FIXTURES];
	unsigned n = 0;
	struct dirent *e;
	DIR *d;

	(void)argc;
	(void)argv;
	d = opendir(PEL_FIXTURE_DIR);
	if (!d) {
		fprintf(stderr, "fuzz_config: cannot open %s: %s\n", PEL_FIXTURE_DIR, strerror(errno));
		exit(1);
	}
	while ((e = readdir(d)) && n < MAX_FIXTURES)
		if (!strncmp(e->d_name, "sysfs-", 6) && strcmp(e->d_name, "sysfs-2cpu"))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_name);

	if (asprintf(&fixture[nfixtures++], "%s/sysfs-2cpu", PEL_FIXTURE_DIR) < 0)
		exit(1);
	d = opendir(fixture[0]);
	if (!d) {
		fprintf(stderr, "fuzz_config: fixture %s missing: %s\n", fixture[0], strerror(errno));
		exit(1);
	}
	closedir(d);
	for (unsigned i = 0; i < n; i++) {
		if (nfixtures < MAX_FIXTURES &&
		    asprintf(&fixture[nfixtures], "%s/%s", PEL_FIXTURE_DIR, names[i]) >= 0)
			nfixtures++;
		free(names[i]);
	}
	return 0;
}

/* A plain decimal CPU number, no sign, no leading zero: 1 ok, 0 too big, -1 not plain. */
static int
plain_number(const char **s, unsigned long *out)
{
	const char *p = *s;
	unsigned long v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
		return -1;		/* "007": decimal or octal, no opinion */
	for (; *p >= '0' && *p <= '9'; p++)
		if (v < CPU_SETSIZE)
			v = v * 10 + (unsigned long)(*p - '0');
	*s = p;
	*out = v;
	return v < CPU_SETSIZE ? 1 : 0;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * What pel__topo_parse_cpus() must do with @p s, as far as its contract says:
 * 1: accept it as *want; 0: refuse it; -1: the contract does not say (white space inside the
 * list, leading zeros, "3\n\n", ...).
 */
static int
expect_parse(const char *s, cpu_set_t *want)
{
	const char *p, *end;
	bool digit = false;
	int r;

	for (p = s; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digit = true;
		else if (*p != ',' && *p != '-' && !is_space(*p))
			return 0;	/* "abc", "+1", "0x3" */
	}
	if (!digit)
		return 0;		/* "", " \n", "-", "," */

	/* surrounding blanks and one final newline: "[ \t]*list[ \t]*\n?" */
	end = s + strlen(s);
	if (end > s && end[-1] == '\n')
		end--;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	p = s;
	while (*p == ' ' || *p == '\t')
		p++;
	for (const char *q = p; q < end; q++)
		if (is_space(*q))
			return -1;

	CPU_ZERO(want);
	for (;;) {
		unsigned long a, b;

		r = plain_number(&p, &a);
		if (r <= 0)
			return r < 0 && p < end && *p >= '0' && *p <= '9' ? -1 : 0;
		b = a;
		if (*p == '-') {
			p++;
			r = plain_number(&p, &b);
			if (r <= 0)
				return r < 0 && p < end && *p >= '0' && *p <= '9' ? -1 : 0;
			if (b < a)
				return 0;	/* "3-1" */
		}
		for (unsigned long c = a; c <= b; c++) {
			if (CPU_ISSET(c, want))
				return 0;	/* "0,0", "0-3,2" */
			CPU_SET(c, want);
		}
		if (p == end)
			return 1;
		if (*p != ',')
			return 0;	/* "1-2-3" */
		p++;
	}
}

static void
check_parse_format(const char *text, const cpu_set_t *set, uint8_t small_len)
{
	static char big[FMT_BIG];
	cpu_set_t again, want;
	char *small;

	CHECK(CPU_COUNT(set) > 0);
	memset(big, 'x', sizeof(big));
	CHECK(pel__topo_format_cpus(set, big, sizeof(big)) == big);
	CHECK(memchr(big, '\0', sizeof(big)) != NULL);
	/* what format writes is a plain list that parses back to the same set */
	cur_text = big;
	CHECK(expect_parse(big, &want) == 1);
	CHECK(CPU_EQUAL(&want, set));
	CHECK(pel__topo_parse_cpus(big, &again) == 0);
	CHECK(CPU_EQUAL(&again, set));
	cur_text = text;

	if (!small_len)
		return;
	/* a buffer of exactly small_len bytes: ASan reports any write past it */
	small = malloc(small_len);
	CHECK(small != NULL);
	CHECK(pel__topo_format_cpus(set, small, small_len) == small);
	CHECK(memchr(small, '\0', small_len) != NULL);
	if (strlen(big) < small_len)
		CHECK(strcmp(small, big) == 0);
	free(small);
}

static bool
pow2(unsigned v)
{
	return v && !(v & (v - 1));
}

static void
check_plan(const struct pel_config *cfg, const struct pel__plan *plan, const cpu_set_t *parsed)
{
	cpu_set_t again;
	int prev = -1;

	CHECK(cfg->idle == PEL_IDLE_SPIN || cfg->idle == PEL_IDLE_BACKOFF ||
	      cfg->idle == PEL_IDLE_PARK);
	CHECK(cfg->rt_priority >= 0 && cfg->rt_priority <= 99);
	CHECK((cfg->flags & ~PEL_F_ALL) == 0);
	CHECK(cfg->ring_slots == 0 || pow2(cfg->ring_slots));
	CHECK(cfg->max_producers <= PEL__MAX_PRODUCERS);

	/* defaults filled in, the rest copied */
	CHECK(plan->cfg.ring_slots == (cfg->ring_slots ? cfg->ring_slots : PEL__DEFAULT_SLOTS));
	CHECK(plan->cfg.max_producers ==
	      (cfg->max_producers ? cfg->max_producers : PEL__DEFAULT_PRODUCERS));
	CHECK(plan->cfg.idle_park_ns ==
	      (cfg->idle_park_ns ? cfg->idle_park_ns : (uint64_t)PEL__DEFAULT_PARK_NS));
	/* the spin phase may be cut to fit in the park time, never lengthened */
	CHECK(plan->cfg.idle_spin_ns != 0);
	CHECK(plan->cfg.idle_spin_ns <=
	      (cfg->idle_spin_ns ? cfg->idle_spin_ns : (uint64_t)PEL__DEFAULT_SPIN_NS));
	CHECK(plan->cfg.idle == cfg->idle);
	CHECK(plan->cfg.rt_priority == cfg->rt_priority);
	CHECK(plan->cfg.flags == cfg->flags);
	CHECK(plan->cfg.log == cfg->log && plan->cfg.log_arg == cfg->log_arg);
	CHECK(strcmp(plan->root, cfg->sysfs_root) == 0);
	CHECK(plan->busy == (cfg->idle == PEL_IDLE_SPIN));
	CHECK(plan->poll_some == (cfg->idle != PEL_IDLE_PARK));

	/* the workers: as asked, online, listed ascending in cpu[] and in cpus_text */
	CHECK(plan->nworkers >= 1);
	CHECK(plan->nworkers == (unsigned)CPU_COUNT(&plan->workers));
	if (cfg->cpus)
		CHECK(CPU_EQUAL(&plan->workers, parsed));
	for (unsigned i = 0; i < plan->nworkers; i++) {
		CHECK(plan->cpu[i] > prev && plan->cpu[i] < CPU_SETSIZE);
		CHECK(CPU_ISSET(plan->cpu[i], &plan->workers));
		prev = plan->cpu[i];
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &plan->workers))
			continue;
		CHECK(CPU_ISSET(c, &plan->online));
		CHECK(!!CPU_ISSET(c, &plan->not_isolated) == !CPU_ISSET(c, &plan->isolated));
	}
	for (int c = 0; c < CPU_SETSIZE; c++)
		CHECK(!CPU_ISSET(c, &plan->not_isolated) || CPU_ISSET(c, &plan->workers));
	if (cfg->flags & PEL_F_REQUIRE_ISOLATED)
		CHECK(CPU_COUNT(&plan->not_isolated) == 0);
	CHECK(plan->cfg.cpus == plan->cpus_text);
	CHECK(memchr(plan->cpus_text, '\0', sizeof(plan->cpus_text)) != NULL);
	CHECK(pel__topo_parse_cpus(plan->cpus_text, &again) == 0);
	CHECK(CPU_EQUAL(&again, &plan->workers));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[HDR_LEN] = { 0 };
	struct pel_config cfg;
	struct pel__plan plan;
	cpu_set_t parsed, want, allowed;
	size_t len = size > HDR_LEN ? size - HDR_LEN : 0;
	int expect, perr, err;
	char *text;

	memcpy(hdr, data, size < HDR_LEN ? size : HDR_LEN);
	text = malloc(len + 1);
	if (!text)
		return 0;
	if (len)
		memcpy(text, data + HDR_LEN, len);
	text[len] = '\0';
	cur_text = text;

	/* the parser on its own */
	expect = expect_parse(text, &want);
	perr = pel__topo_parse_cpus(text, &parsed);
	CHECK(perr == 0 || perr == -EINVAL);
	if (perr == 0) {
		CHECK(expect != 0);
		if (expect == 1)
			CHECK(CPU_EQUAL(&parsed, &want));
		check_parse_format(text, &parsed, hdr[27]);
	} else {
		CHECK(expect != 1);
		CHECK(pel_last_error() != NULL && pel_last_error()[0] != '\0');
	}

	/* the whole config against a fixture host */
	CPU_ZERO(&allowed);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (!hdr[10] || (c < 8 && (hdr[10] >> c & 1)))
			CPU_SET(c, &allowed);
	pel__set_allowed_cpus_override(&allowed);

	pel_config_default(&cfg);
	cfg.ring_slots = (unsigned)le(hdr + 0, 4);
	cfg.max_producers = (unsigned)le(hdr + 4, 2);
	cfg.idle = (enum pel_idle)hdr[6];
	cfg.rt_priority = (int8_t)hdr[7];
	cfg.flags = hdr[8];
	cfg.cpus = (hdr[9] & 1) ? NULL : text;
	cfg.sysfs_root = fixture[(hdr[9] >> 1) % nfixtures];
	cfg.idle_spin_ns = le(hdr + 11, 8);
	cfg.idle_park_ns = le(hdr + 19, 8);
	cfg.log = discard_log;
	cfg.log_arg = &log_cookie;

	memset(&plan, 0xa5, sizeof(plan));
	err = pel__config_resolve(&cfg, &plan);
	CHECK(err <= 0);
	if (err == 0) {
		CHECK(!cfg.cpus || perr == 0);
		check_plan(&cfg, &plan, &parsed);
	} else {
		CHECK(pel_last_error() != NULL && pel_last_error()[0] != '\0');
	}

	pel__set_allowed_cpus_override(NULL);
	free(text);
	cur_text = NULL;
	return 0;
}
