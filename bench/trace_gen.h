/* SPDX-License-Identifier: MIT */
/*
 * bench/trace_gen.h - seeded arrival and service-time traces for pel-sim and the load generator.
 *
 * A trace is a sequence of requests {arrival time, service time}, both in ns (double: the
 * simulator keeps sub-ns precision; a load generator rounds). It is a pure function of the
 * arrival process, the service distribution, the arrival rate and a 64-bit seed: the same four
 * give the same trace on every host and build, so the simulator and the load generator can replay
 * one trace against every policy (common random numbers).
 *
 * Randomness: xoshiro256** (Blackman and Vigna, 2018), its 256-bit state filled by splitmix64
 * from the seed. Arrivals and services draw from two separate streams (seeded seed and
 * seed ^ PEL_GEN_SERVICE_SALT), so a different service distribution leaves the arrival times as
 * they were, and the reverse.
 *
 * Nothing here allocates or keeps global state; a generator belongs to one thread.
 */
#ifndef PEL_BENCH_TRACE_GEN_H
#define PEL_BENCH_TRACE_GEN_H

#include <stddef.h>
#include <stdint.h>

#define PEL_GEN_SERVICE_SALT	UINT64_C(0x5e41ce5e41ce5e41)
#define PEL_GEN_BURST_DEFAULT	16	/* mean requests per burst of "bursty" */

/* xoshiro256** state. */
struct pel_rng {
	uint64_t s[4];
};

/** Seed @p r from @p seed through splitmix64 (any seed is fine, 0 too). */
void pel_rng_seed(struct pel_rng *r, uint64_t seed);

/** The next 64 random bits. */
uint64_t pel_rng_next(struct pel_rng *r);

/** Uniform double in [0, 1), 53 random bits. */
double pel_rng_uniform(struct pel_rng *r);

/** Uniform integer in [0, n), n >= 1 (Lemire's multiply-shift with rejection: no bias). */
uint32_t pel_rng_below(struct pel_rng *r, uint32_t n);

/** Exponential with mean @p mean (inverse transform of a uniform in (0, 1]). */
double pel_rng_exp(struct pel_rng *r, double mean);

enum pel_service_kind {
	PEL_SERVICE_FIXED,	/* always a */
	PEL_SERVICE_EXP,	/* exponential, mean a */
	PEL_SERVICE_BIMODAL,	/* a with probability p, else b */
};

/* A service-time distribution; times in ns. */
struct pel_service {
	enum pel_service_kind kind;
	double a;
	double b;
	double p;		/* bimodal: probability of a, in (0, 1) */
};

/**
 * Parse a service-time spec.
 *   fixed:T          every request takes T                      fixed:1us
 *   exp:T            exponential with mean T                    exp:10us
 *   bimodal:P:A:B    A with probability P percent, else B       bimodal:90:5us:55us
 * T, A and B are positive numbers with a unit: ns, us, ms or s (bimodal:99.5:0.5us:500us).
 * @return 0, or -EINVAL with a message in @p err (@p errlen bytes).
 */
int pel_service_parse(const char *spec, struct pel_service *out, char *err, size_t errlen);

/** The distribution's mean, ns. */
double pel_service_mean(const struct pel_service *s);

/** The distribution's second moment E[S^2], ns^2 (for the Pollaczek-Khinchine formula). */
double pel_service_moment2(const struct pel_service *s);

/** Format @p s back as a spec ("exp:10us") into @p buf. */
void pel_service_format(const struct pel_service *s, char *buf, size_t len);

enum pel_arrival_kind {
	PEL_ARRIVAL_POISSON,	/* exponential gaps, mean 1/rate */
	PEL_ARRIVAL_FIXED,	/* every 1/rate exactly */
	PEL_ARRIVAL_BURSTY,	/* Poisson bursts, one instant each, geometric size of mean burst */
};

/* An arrival process (its rate is given to pel_gen_init()). */
struct pel_arrival {
	enum pel_arrival_kind kind;
	unsigned burst;		/* bursty: mean requests per burst, >= 1 */
};

/**
 * Parse an arrival spec: "poisson", "fixed", "bursty" (mean burst PEL_GEN_BURST_DEFAULT) or
 * "bursty:B" (mean burst B, 1 .. 1000000).
 * @return 0, or -EINVAL with a message in @p err.
 */
int pel_arrival_parse(const char *spec, struct pel_arrival *out, char *err, size_t errlen);

/** Format @p a back as a spec ("bursty:16") into @p buf. */
void pel_arrival_format(const struct pel_arrival *a, char *buf, size_t len);

/* One request of a trace. */
struct pel_req {
	double arrival;		/* ns since the start of the trace, non-decreasing */
	double service;		/* ns */
};

/* A trace generator. */
struct pel_gen {
	struct pel_arrival arr;
	struct pel_service svc;
	double gap;		/* mean gap between arrivals, ns (1 / rate) */
	double now;		/* arrival time of the last request */
	uint64_t left;		/* bursty: requests left in the current burst */
	uint64_t count;		/* requests so far */
	struct pel_rng arr_rng;
	struct pel_rng svc_rng;
};

/**
 * Start the trace of @p arr at @p rate requests per ns with services from @p svc, seeded @p seed.
 * For a load rho on c servers: rate = rho * c / pel_service_mean(svc).
 */
void pel_gen_init(struct pel_gen *g, const struct pel_arrival *arr, const struct pel_service *svc,
		  double rate, uint64_t seed);

/** The next request of the trace. */
struct pel_req pel_gen_next(struct pel_gen *g);

/** A service time of @p s drawn from @p r (the service stream of pel_gen_next()). */
double pel_service_draw(const struct pel_service *s, struct pel_rng *r);

#endif /* PEL_BENCH_TRACE_GEN_H */
