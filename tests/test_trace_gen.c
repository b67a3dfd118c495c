/* SPDX-License-Identifier: MIT */
/*
 * tests/test_trace_gen.c - bench/trace_gen.c and bench/hist.c: spec parsing, determinism per
 * seed, each distribution's sample moments and fractions against its spec, and the histogram's
 * quantiles against exact sorted quantiles.
 *
 * Statistical checks use a fixed seed and a bound of 5 standard errors of the statistic for the
 * sample size (the SE of a mean of n independent draws is sigma / sqrt(n)); each also prints its
 * figures. A wrong mean, rate or mixing fraction of 1% or more fails them.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"
#include "trace_gen.h"

#define N_DRAWS		1000000
#define K_SE		5.0

/* |got - want| <= K_SE * se, printed. */
static void
check_within(const char *what, double got, double want, double se)
{
	print_message("%-44s got %.6g want %.6g (|diff| %.3g, bound %.3g = %.0f SE)\n", what, got,
		      want, fabs(got - want), K_SE * se, K_SE);
	assert_true(fabs(got - want) <= K_SE * se);
}

static void
test_service_parse_errors(void **state)
{
	static const char *const bad[] = {
		"", "exp", "exp:", "exp:10", "exp:10xs", "exp:-1us", "exp:0us", "exp:nanus",
		"exp:infus", "fixed:1us:", "fixed:1usx", "bimodal:90:5us", "bimodal:0:5us:55us",
		"bimodal:100:5us:55us", "bimodal:x:5us:55us", "bimodal:90:5us:55us:1us",
		"bimodal:90:5:55us", "gauss:1us", "exp:1e300s",
	};
	struct pel_service s;
	char err[256];
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(pel_service_parse(bad[i], &s, err, sizeof(err)), -EINVAL);
		/* the message names the spec it rejects */
		assert_non_null(strstr(err, bad[i]));
	}
}

static void
test_arrival_parse_errors(void **state)
{
	static const char *const bad[] = {
		"", "Poisson", "poisson:1", "bursty:", "bursty:0", "bursty:-1", "bursty:1000001",
		"bursty:4x", "fixed ",
	};
	struct pel_arrival a;
	char err[256];
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(pel_arrival_parse(bad[i], &a, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "arrivals"));
	}
}

static void
test_parse_round_trip(void **state)
{
	static const struct {
		const char *spec;
		enum pel_service_kind kind;
		double a, b, p, mean;
	} ok[] = {
		{ "fixed:1us", PEL_SERVICE_FIXED, 1000, 0, 0, 1000 },
		{ "exp:10us", PEL_SERVICE_EXP, 10000, 0, 0, 10000 },
		{ "bimodal:90:5us:55us", PEL_SERVICE_BIMODAL, 5000, 55000, 0.9, 10000 },
		{ "bimodal:99.5:0.5us:500us", PEL_SERVICE_BIMODAL, 500, 500000, 0.995, 2.9975e3 },
		{ "exp:250ns", PEL_SERVICE_EXP, 250, 0, 0, 250 },
		{ "fixed:2ms", PEL_SERVICE_FIXED, 2e6, 0, 0, 2e6 },
		{ "fixed:1s", PEL_SERVICE_FIXED, 1e9, 0, 0, 1e9 },
	};
	struct pel_service s, t;
	struct pel_arrival a;
	char buf[64], err[256];
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(pel_service_parse(ok[i].spec, &s, err, sizeof(err)), 0);
		assert_int_equal(s.kind, ok[i].kind);
		assert_true(fabs(s.a - ok[i].a) < 1e-9 * ok[i].a);
		if (s.kind == PEL_SERVICE_BIMODAL) {
			assert_true(fabs(s.b - ok[i].b) < 1e-9 * ok[i].b);
			assert_true(fabs(s.p - ok[i].p) < 1e-12);
		}
		assert_true(fabs(pel_service_mean(&s) - ok[i].mean) < 1e-9 * ok[i].mean);
		pel_service_format(&s, buf, sizeof(buf));
		assert_int_equal(pel_service_parse(buf, &t, err, sizeof(err)), 0);
		assert_int_equal(t.kind, s.kind);
		assert_true(fabs(t.a - s.a) < 1e-9 * s.a && fabs(t.p - s.p) < 1e-12);
	}
	assert_int_equal(pel_arrival_parse("bursty", &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, PEL_ARRIVAL_BURSTY);
	assert_int_equal(a.burst, PEL_GEN_BURST_DEFAULT);
	assert_int_equal(pel_arrival_parse("bursty:4", &a, err, sizeof(err)), 0);
	assert_int_equal(a.burst, 4);
	pel_arrival_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "bursty:4");
	assert_int_equal(pel_arrival_parse("fixed", &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, PEL_ARRIVAL_FIXED);
}

/* The seeding is splitmix64 from the seed: its published first outputs from 0. */
static void
test_rng_seeding(void **state)
{
	struct pel_rng r;

	(void)state;
	pel_rng_seed(&r, 0);
	assert_true(r.s[0] == UINT64_C(0xe220a8397b1dcdaf));
	assert_true(r.s[1] == UINT64_C(0x6e789e6aa1b965f4));
	assert_true(r.s[2] == UINT64_C(0x06c45d188009454f));
	assert_true(r.s[3] == UINT64_C(0xf88bb8a8724c81ec));
}

static void
test_rng_below(void **state)
{
	static unsigned hits[7];
	struct pel_rng r;
	unsigned i;
	double p = 1.0 / 7, se = sqrt(p * (1 - p) / N_DRAWS);

	(void)state;
	pel_rng_seed(&r, 42);
	for (i = 0; i < N_DRAWS; i++) {
		uint32_t v = pel_rng_below(&r, 7);

		assert_true(v < 7);
		hits[v]++;
	}
	for (i = 0; i < 7; i++)
		check_within("pel_rng_below(7): fraction of one value", (double)hits[i] / N_DRAWS,
			     p, se);
	for (i = 0; i < 1000; i++)
		assert_int_equal(pel_rng_below(&r, 1), 0);
}

static void
test_deterministic_per_seed(void **state)
{
	const char *specs[] = { "exp:10us", "bimodal:99.5:0.5us:500us" };
	const char *arrs[] = { "poisson", "bursty:8" };
	struct pel_service svc, other;
	struct pel_arrival arr;
	struct pel_gen g1, g2, g3, g4;
	struct pel_req a, b, c, d;
	char err[256];
	unsigned i, k, differ, same_arrival;

	(void)state;
	for (k = 0; k < 2; k++) {
		assert_int_equal(pel_service_parse(specs[k], &svc, err, sizeof(err)), 0);
		assert_int_equal(pel_arrival_parse(arrs[k], &arr, err, sizeof(err)), 0);
		pel_gen_init(&g1, &arr, &svc, 0.001, 12345);
		pel_gen_init(&g2, &arr, &svc, 0.001, 12345);
		pel_gen_init(&g3, &arr, &svc, 0.001, 12346);
		/* another service distribution: the same arrival times */
		assert_int_equal(pel_service_parse("fixed:3us", &other, err, sizeof(err)), 0);
		pel_gen_init(&g4, &arr, &other, 0.001, 12345);
		differ = 0;
		same_arrival = 0;
		for (i = 0; i < 100000; i++) {
			a = pel_gen_next(&g1);
			b = pel_gen_next(&g2);
			c = pel_gen_next(&g3);
			d = pel_gen_next(&g4);
			assert_memory_equal(&a, &b, sizeof(a));
			differ += a.arrival != c.arrival;
			same_arrival += a.arrival == d.arrival;
			assert_true(d.service == 3000);
		}
		assert_true(differ > 99000);
		assert_int_equal(same_arrival, 100000);
	}
}

/* Sample mean, second moment and a fraction of draws of @p spec against the spec. */
static void
check_service(const char *spec, uint64_t seed)
{
	struct pel_service s;
	struct pel_rng r;
	char err[256], what[96];
	double sum = 0, sum2 = 0, x, mean, m2, var, m4;
	unsigned i, below = 0;

	assert_int_equal(pel_service_parse(spec, &s, err, sizeof(err)), 0);
	pel_rng_seed(&r, seed);
	mean = pel_service_mean(&s);
	m2 = pel_service_moment2(&s);
	for (i = 0; i < N_DRAWS; i++) {
		x = pel_service_draw(&s, &r);
		assert_true(x > 0);
		sum += x;
		sum2 += x * x;
		switch (s.kind) {
		case PEL_SERVICE_FIXED:
			assert_true(x == s.a);
			break;
		case PEL_SERVICE_BIMODAL:
			assert_true(x == s.a || x == s.b);
			below += x == s.a;
			break;
		case PEL_SERVICE_EXP:
			below += x <= s.a * M_LN2;	/* the median */
			break;
		}
	}
	var = m2 - mean * mean;
	snprintf(what, sizeof(what), "%s: mean", spec);
	if (s.kind == PEL_SERVICE_FIXED) {
		assert_true(fabs(sum / N_DRAWS - mean) < 1e-9 * mean);
		return;
	}
	check_within(what, sum / N_DRAWS, mean, sqrt(var / N_DRAWS));
	/* second moment: Var(S^2) = E[S^4] - E[S^2]^2 */
	m4 = s.kind == PEL_SERVICE_EXP ? 24 * pow(s.a, 4) :
					 s.p * pow(s.a, 4) + (1 - s.p) * pow(s.b, 4);
	snprintf(what, sizeof(what), "%s: E[S^2]", spec);
	check_within(what, sum2 / N_DRAWS, m2, sqrt((m4 - m2 * m2) / N_DRAWS));
	if (s.kind == PEL_SERVICE_EXP) {
		snprintf(what, sizeof(what), "%s: fraction <= median", spec);
		check_within(what, (double)below / N_DRAWS, 0.5, sqrt(0.25 / N_DRAWS));
	} else {
		snprintf(what, sizeof(what), "%s: fraction of A", spec);
		check_within(what, (double)below / N_DRAWS, s.p, sqrt(s.p * (1 - s.p) / N_DRAWS));
	}
}

static void
test_service_distributions(void **state)
{
	(void)state;
	check_service("fixed:1us", 1);
	check_service("exp:10us", 2);
	check_service("bimodal:90:5us:55us", 3);
	check_service("bimodal:99.5:0.5us:500us", 4);
}

static void
test_arrivals_poisson_fixed(void **state)
{
	struct pel_service s = { .kind = PEL_SERVICE_FIXED, .a = 1000 };
	struct pel_arrival arr = { .kind = PEL_ARRIVAL_POISSON, .burst = 1 };
	struct pel_gen g;
	struct pel_req q;
	double gap = 2000, prev = 0, x, sum = 0;
	unsigned i, below = 0;

	(void)state;
	pel_gen_init(&g, &arr, &s, 1 / gap, 7);
	for (i = 0; i < N_DRAWS; i++) {
		q = pel_gen_next(&g);
		x = q.arrival - prev;
		assert_true(x >= 0);
		sum += x;
		below += x <= gap * M_LN2;
		prev = q.arrival;
	}
	check_within("poisson: mean gap", sum / N_DRAWS, gap, gap / sqrt(N_DRAWS));
	check_within("poisson: fraction of gaps <= median", (double)below / N_DRAWS, 0.5,
		     sqrt(0.25 / N_DRAWS));

	arr.kind = PEL_ARRIVAL_FIXED;
	pel_gen_init(&g, &arr, &s, 1 / gap, 7);
	for (i = 1; i <= N_DRAWS; i++) {
		q = pel_gen_next(&g);
		assert_true(fabs(q.arrival - i * gap) <= 1e-9 * i * gap);
	}
}

static void
test_arrivals_bursty(void **state)
{
	struct pel_service s = { .kind = PEL_SERVICE_FIXED, .a = 1000 };
	struct pel_arrival arr = { .kind = PEL_ARRIVAL_BURSTY, .burst = 16 };
	struct pel_gen g;
	struct pel_req q;
	double gap = 1000, prev = -1, bursts = 0, b = arr.burst, end;
	unsigned i;

	(void)state;
	pel_gen_init(&g, &arr, &s, 1 / gap, 9);
	for (i = 0; i < N_DRAWS; i++) {
		q = pel_gen_next(&g);
		assert_true(q.arrival >= prev);
		/* a new instant starts a burst (two bursts at one instant have probability 0) */
		bursts += q.arrival != prev;
		prev = q.arrival;
	}
	end = prev;
	/*
	 * K = n / B bursts of geometric size (sd ~ B): the mean size has relative SE
	 * sqrt((1 - 1/B) / K); the span is K exponential gaps of mean B * gap, relative SE
	 * 1/sqrt(K), plus the size noise.
	 */
	check_within("bursty:16: mean burst size", N_DRAWS / bursts, b,
		     b * sqrt((1 - 1 / b) / (N_DRAWS / b)));
	check_within("bursty:16: mean gap per request", end / N_DRAWS, gap,
		     gap * sqrt((1 + (1 - 1 / b)) / (N_DRAWS / b)));
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void
test_hist_buckets(void **state)
{
	uint64_t low, width, next_low, w2;
	unsigned b;

	(void)state;
	assert_int_equal(pel_hist_bucket(0), 0);
	assert_int_equal(pel_hist_bucket(UINT64_MAX), PEL_HIST_BUCKETS - 1);
	/* buckets tile 0 .. 2^64 - 1 without a gap or an overlap, each within 1/1024 */
	for (b = 0; b < PEL_HIST_BUCKETS; b++) {
		low = pel_hist_bucket_low(b, &width);
		assert_int_equal(pel_hist_bucket(low), b);
		assert_int_equal(pel_hist_bucket(low + (width - 1)), b);
		if (low >= 2048)
			assert_true(width * 1024 <= low);
		else
			assert_true(width == 1);
		if (b + 1 < PEL_HIST_BUCKETS) {
			next_low = pel_hist_bucket_low(b + 1, &w2);
			assert_true(next_low == low + width);
		} else {
			assert_true(low + (width - 1) == UINT64_MAX);
		}
	}
}

static void
test_hist_quantiles(void **state)
{
	static const double qs[] = { 0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1 };
	struct pel_hist h, h1, h2;
	struct pel_rng r;
	uint64_t *v, exact, got, rank;
	double sum = 0, err, worst = 0;
	unsigned i, k, n = N_DRAWS;

	(void)state;
	v = malloc(n * sizeof(*v));
	assert_non_null(v);
	assert_int_equal(pel_hist_init(&h), 0);
	assert_int_equal(pel_hist_init(&h1), 0);
	assert_int_equal(pel_hist_init(&h2), 0);
	assert_int_equal(pel_hist_quantile(&h, 0.5), 0);
	pel_rng_seed(&r, 11);
	/* log-uniform over 1 ns .. 2^40 ns, many octaves and both sides of 2048 */
	for (i = 0; i < n; i++) {
		v[i] = (uint64_t)exp2(pel_rng_uniform(&r) * 40);
		pel_hist_record(&h, v[i]);
		pel_hist_record(i % 2 ? &h1 : &h2, v[i]);
		sum += (double)v[i];
	}
	pel_hist_merge(&h1, &h2);
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_true(h.n == n && h.min == v[0] && h.max == v[n - 1]);
	assert_true(fabs(pel_hist_mean(&h) - sum / n) <= 1e-9 * sum / n);
	for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		rank = qs[k] > 0 ? (uint64_t)ceil(qs[k] * n) : 1;
		exact = v[rank - 1];
		got = pel_hist_quantile(&h, qs[k]);
		err = fabs((double)got - (double)exact);
		print_message("hist q=%-8g exact %-14llu hist %-14llu rel err %.2e (bound %.2e)\n",
			      qs[k], (unsigned long long)exact, (unsigned long long)got,
			      exact ? err / (double)exact : 0, 1.0 / 2048);
		/* half a bucket: within 1/2048 of the value, better than 3 significant digits */
		assert_true(err <= (double)exact / 2048);
		assert_true(pel_hist_quantile(&h1, qs[k]) == got);
		if (exact < 2048)
			assert_true(got == exact);
		if (exact && err / (double)exact > worst)
			worst = err / (double)exact;
	}
	/* every percentile, 1 .. 99 */
	for (k = 1; k < 100; k++) {
		rank = (uint64_t)ceil(k / 100.0 * n);
		exact = v[rank - 1];
		got = pel_hist_quantile(&h, k / 100.0);
		assert_true(fabs((double)got - (double)exact) <= (double)exact / 2048);
	}
	print_message("hist worst relative error %.2e\n", worst);
	pel_hist_reset(&h);
	assert_true(h.n == 0 && pel_hist_quantile(&h, 0.99) == 0);
	pel_hist_record(&h, 123456789);
	assert_true(pel_hist_quantile(&h, 0.5) == 123456789);	/* clamped to min and max */
	pel_hist_fini(&h);
	pel_hist_fini(&h1);
	pel_hist_fini(&h2);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_parse_errors),
		cmocka_unit_test(test_arrival_parse_errors),
		cmocka_unit_test(test_parse_round_trip),
		cmocka_unit_test(test_rng_seeding),
		cmocka_unit_test(test_rng_below),
		cmocka_unit_test(test_deterministic_per_seed),
		cmocka_unit_test(test_service_distributions),
		cmocka_unit_test(test_arrivals_poisson_fixed),
		cmocka_unit_test(test_arrivals_bursty),
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_hist_quantiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
