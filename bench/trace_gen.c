/* SPDX-License-Identifier: MIT */
/*
 * bench/trace_gen.c - seeded arrival and service-time traces (see trace_gen.h).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_gen.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void
pel_rng_seed(struct pel_rng *r, uint64_t seed)
{
	unsigned i;

	/* splitmix64 never yields four zero words in a row, so the state is never all zero */
	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
pel_rng_next(struct pel_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double
pel_rng_uniform(struct pel_rng *r)
{
	return (double)(pel_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t
pel_rng_below(struct pel_rng *r, uint32_t n)
{
	uint64_t m = (pel_rng_next(r) >> 32) * n;
	uint32_t low = (uint32_t)m;

	if (low < n) {
		uint32_t floor = (uint32_t)-n % n;

		while (low < floor) {
			m = (pel_rng_next(r) >> 32) * n;
			low = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

double
pel_rng_exp(struct pel_rng *r, double mean)
{
	/* 1 - U is in (0, 1]: log() never sees 0 */
	return -mean * log(1.0 - pel_rng_uniform(r));
}

static int
fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A positive finite number; *end past it. */
static int
parse_number(const char *s, char **end, double *out)
{
	double v;

	if (!((*s >= '0' && *s <= '9') || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, end);
	if (errno || *end == s || !isfinite(v) || v <= 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "<number><unit>" up to a ':' or the end, into ns; *end at the ':' or the end. */
static int
parse_time(const char *s, const char **end, double *ns)
{
	static const struct {
		const char *name;
		double ns;
	} units[] = { { "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 } };
	char *p;
	size_t len;
	unsigned i;
	double v;

	if (parse_number(s, &p, &v))
		return -EINVAL;
	len = strcspn(p, ":");
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strlen(units[i].name) == len && !strncmp(p, units[i].name, len)) {
			*ns = v * units[i].ns;
			*end = p + len;
			/* 1e12 s would still be finite but is no service time */
			return *ns <= 1e15 ? 0 : -EINVAL;
		}
	}
	return -EINVAL;
}

int
pel_service_parse(const char *spec, struct pel_service *out, char *err, size_t errlen)
{
	const char *p;
	struct pel_service s = { 0 };
	char *q;

	if (!strncmp(spec, "fixed:", 6) || !strncmp(spec, "exp:", 4)) {
		s.kind = spec[0] == 'f' ? PEL_SERVICE_FIXED : PEL_SERVICE_EXP;
		p = strchr(spec, ':') + 1;
		if (parse_time(p, &p, &s.a) || *p)
			return fail(err, errlen,
				    "service \"%s\": wants a time with its unit (exp:10us)", spec);
	} else if (!strncmp(spec, "bimodal:", 8)) {
		s.kind = PEL_SERVICE_BIMODAL;
		if (parse_number(spec + 8, &q, &s.p) || *q != ':' || s.p >= 100)
			return fail(err, errlen,
				    "service \"%s\": wants bimodal:P:A:B, 0 < P < 100", spec);
		s.p /= 100;
		p = q + 1;
		if (parse_time(p, &p, &s.a) || *p != ':' || parse_time(p + 1, &p, &s.b) || *p)
			return fail(err, errlen,
				    "service \"%s\": wants bimodal:P:A:B, times A, B: 5us", spec);
	} else {
		return fail(err, errlen,
			    "service \"%s\": unknown; wants fixed:T, exp:T or bimodal:P:A:B", spec);
	}
	*out = s;
	return 0;
}

double
pel_service_mean(const struct pel_service *s)
{
	switch (s->kind) {
	case PEL_SERVICE_BIMODAL:
		return s->p * s->a + (1 - s->p) * s->b;
	case PEL_SERVICE_FIXED:
	case PEL_SERVICE_EXP:
	default:
		return s->a;
	}
}

double
pel_service_moment2(const struct pel_service *s)
{
	switch (s->kind) {
	case PEL_SERVICE_EXP:
		return 2 * s->a * s->a;
	case PEL_SERVICE_BIMODAL:
		return s->p * s->a * s->a + (1 - s->p) * s->b * s->b;
	case PEL_SERVICE_FIXED:
	default:
		return s->a * s->a;
	}
}

/* ns as the shortest "<number><unit>" that gives it back. */
static void
format_time(double ns, char *buf, size_t len)
{
	if (ns >= 1e9 && fmod(ns, 1e9) == 0)
		snprintf(buf, len, "%gs", ns / 1e9);
	else if (ns >= 1e6 && fmod(ns, 1e6) == 0)
		snprintf(buf, len, "%gms", ns / 1e6);
	else if (ns >= 1e2)
		snprintf(buf, len, "%gus", ns / 1e3);
	else
		snprintf(buf, len, "%gns", ns);
}

void
pel_service_format(const struct pel_service *s, char *buf, size_t len)
{
	char a[32], b[32];

	format_time(s->a, a, sizeof(a));
	switch (s->kind) {
	case PEL_SERVICE_FIXED:
		snprintf(buf, len, "fixed:%s", a);
		break;
	case PEL_SERVICE_EXP:
		snprintf(buf, len, "exp:%s", a);
		break;
	case PEL_SERVICE_BIMODAL:
	default:
		format_time(s->b, b, sizeof(b));
		snprintf(buf, len, "bimodal:%g:%s:%s", s->p * 100, a, b);
		break;
	}
}

double
pel_service_draw(const struct pel_service *s, struct pel_rng *r)
{
	switch (s->kind) {
	case PEL_SERVICE_EXP:
		return pel_rng_exp(r, s->a);
	case PEL_SERVICE_BIMODAL:
		return pel_rng_uniform(r) < s->p ? s->a : s->b;
	case PEL_SERVICE_FIXED:
	default:
		return s->a;
	}
}

int
pel_arrival_parse(const char *spec, struct pel_arrival *out, char *err, size_t errlen)
{
	struct pel_arrival a = { .kind = PEL_ARRIVAL_POISSON, .burst = 1 };
	char *end;
	unsigned long b;

	if (!strcmp(spec, "poisson")) {
		a.kind = PEL_ARRIVAL_POISSON;
	} else if (!strcmp(spec, "fixed")) {
		a.kind = PEL_ARRIVAL_FIXED;
	} else if (!strcmp(spec, "bursty")) {
		a.kind = PEL_ARRIVAL_BURSTY;
		a.burst = PEL_GEN_BURST_DEFAULT;
	} else if (!strncmp(spec, "bursty:", 7)) {
		a.kind = PEL_ARRIVAL_BURSTY;
		errno = 0;
		b = spec[7] >= '0' && spec[7] <= '9' ? strtoul(spec + 7, &end, 10) : 0;
		if (errno || !b || b > 1000000 || *end)
			return fail(err, errlen,
				    "arrivals \"%s\": bursty:B wants B in 1 .. 1000000", spec);
		a.burst = (unsigned)b;
	} else {
		return fail(err, errlen,
			    "arrivals \"%s\": unknown; wants poisson, fixed, bursty or bursty:B",
			    spec);
	}
	*out = a;
	return 0;
}

void
pel_arrival_format(const struct pel_arrival *a, char *buf, size_t len)
{
	switch (a->kind) {
	case PEL_ARRIVAL_FIXED:
		snprintf(buf, len, "fixed");
		break;
	case PEL_ARRIVAL_BURSTY:
		snprintf(buf, len, "bursty:%u", a->burst);
		break;
	case PEL_ARRIVAL_POISSON:
	default:
		snprintf(buf, len, "poisson");
		break;
	}
}

void
pel_gen_init(struct pel_gen *g, const struct pel_arrival *arr, const struct pel_service *svc,
	     double rate, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->arr = *arr;
	g->svc = *svc;
	g->gap = 1.0 / rate;
	pel_rng_seed(&g->arr_rng, seed);
	pel_rng_seed(&g->svc_rng, seed ^ PEL_GEN_SERVICE_SALT);
}

/* Geometric on 1, 2, ... with mean m >= 1: P(k) = (1 - q) q^(k-1), q = 1 - 1/m. */
static uint64_t
geometric(struct pel_rng *r, double m)
{
	double u, k;

	if (m <= 1)
		return 1;
	u = 1.0 - pel_rng_uniform(r);	/* (0, 1] */
	k = floor(log(u) / log1p(-1.0 / m));
	return k < 1e12 ? 1 + (uint64_t)k : UINT64_C(1000000000000);
}

struct pel_req
pel_gen_next(struct pel_gen *g)
{
	struct pel_req q;

	switch (g->arr.kind) {
	case PEL_ARRIVAL_FIXED:
		/* a product, not a running sum: no rounding error builds up */
		g->now = (double)(g->count + 1) * g->gap;
		break;
	case PEL_ARRIVAL_BURSTY:
		/* a burst of mean size B every B gaps on average keeps the mean rate */
		if (!g->left) {
			g->now += pel_rng_exp(&g->arr_rng, g->gap * g->arr.burst);
			g->left = geometric(&g->arr_rng, g->arr.burst);
		}
		g->left--;
		break;
	case PEL_ARRIVAL_POISSON:
	default:
		g->now += pel_rng_exp(&g->arr_rng, g->gap);
		break;
	}
	g->count++;
	q.arrival = g->now;
	q.service = pel_service_draw(&g->svc, &g->svc_rng);
	return q;
}
