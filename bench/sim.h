/* SPDX-License-Identifier: MIT */
/*
 * bench/sim.h - a discrete-event simulator of load-placement policies on N identical workers.
 *
 * Requests come from a trace of bench/trace_gen.h (the load generator's traces). Each worker
 * serves one request at a time, to completion, without preemption; the policies differ in where
 * a request waits and who serves it:
 *
 *   cfcfs  one central FIFO; a free worker takes its head (M/G/c FCFS)
 *   dfcfs  each arrival goes to a uniformly random worker's own FIFO, and stays there
 *   jsq    each arrival goes to the worker with the fewest requests (waiting + in service),
 *          ties broken uniformly at random
 *   p2c    two distinct random workers, the one with fewer requests (the first on a tie)
 *   steal  dfcfs, and a worker with nothing to do takes the oldest waiting request of the
 *          longest other queue (lowest index on a tie), at once: when it finishes, or when a
 *          request arrives at a busy worker while it idles. A stolen request costs the thief
 *          steal_cost ns more before it starts (moving it, cache misses).
 *
 * Placement and stealing are free and instant (but for steal_cost): the simulator shows what the
 * policies can do, not what an implementation costs. Every policy sees the same trace for the
 * same seed, load and workers; placement draws from a third random stream.
 */
#ifndef PEL_BENCH_SIM_H
#define PEL_BENCH_SIM_H

#include <stdint.h>

#include "hist.h"
#include "trace_gen.h"

#define PEL_SIM_MAX_WORKERS	64
#define PEL_SIM_POLICY_SALT	UINT64_C(0x91ac3ee9d0c5b2a7)

enum pel_sim_policy {
	PEL_SIM_CFCFS,
	PEL_SIM_DFCFS,
	PEL_SIM_JSQ,
	PEL_SIM_P2C,
	PEL_SIM_STEAL,
	PEL_SIM_NPOLICIES,
};

struct pel_sim_cfg {
	enum pel_sim_policy policy;
	unsigned workers;		/* 1 .. PEL_SIM_MAX_WORKERS */
	double load;			/* rho = rate * mean service / workers, in (0, 1) */
	struct pel_arrival arr;
	struct pel_service svc;
	uint64_t requests;		/* simulated, >= 1 */
	uint64_t warmup;		/* the first ones left out of the figures, < requests */
	uint64_t seed;
	double steal_cost;		/* ns, >= 0; steal only */
	/*
	 * NULL: generate the trace from arr, svc, load and seed. Else replay trace[0 .. requests-1]
	 * (arrivals non-decreasing, services >= 0), as pel-load does with the trace it sent; load
	 * and the service spec are then not used (nor checked), seed only seeds placement.
	 */
	const struct pel_req *trace;
};

/* One finished request, to the pel_sim_run() callback. */
struct pel_sim_done {
	uint64_t index;			/* 0-based, in arrival order */
	double arrival;			/* ns */
	double start;			/* began to run (after a steal's cost) */
	double finish;
	double service;
	unsigned worker;
	int stolen;
};

typedef void (*pel_sim_done_fn)(const struct pel_sim_done *d, void *arg);

/* What a run measured over the requests past the warm-up. */
struct pel_sim_result {
	uint64_t measured;		/* requests - warmup */
	double mean_sojourn;		/* ns, finish - arrival, exact */
	double mean_wait;		/* ns, start - arrival, exact */
	double util;			/* busy time (with steal costs) / (workers * makespan) */
	uint64_t steals;		/* whole run */
};

/** "cfcfs", "dfcfs", ... */
const char *pel_sim_policy_name(enum pel_sim_policy p);

/** The policy called @p name, or -1. */
int pel_sim_policy_parse(const char *name);

/**
 * Simulate @p cfg. Sojourn times (ns, rounded) of the measured requests go into @p hist if not
 * NULL; every finished request, warm-up included, goes to @p fn if not NULL.
 * @return 0; -EINVAL a field of @p cfg out of range; -ENOMEM.
 */
int pel_sim_run(const struct pel_sim_cfg *cfg, struct pel_hist *hist, pel_sim_done_fn fn,
		void *arg, struct pel_sim_result *res);

/** Erlang C: the probability that an arrival waits in M/M/c with offered load @p a = rate/mu. */
double pel_sim_erlang_c(unsigned c, double a);

/**
 * The closed-form mean sojourn (ns) of @p cfg where there is one, else a NaN:
 * dfcfs with Poisson arrivals: each worker is an M/G/1 queue at load rho (Pollaczek-Khinchine,
 * S + rho E[S^2] / (2 E[S] (1 - rho))); cfcfs with Poisson arrivals and exponential service:
 * M/M/c (1/mu + C(c, a) / (c mu - rate)); cfcfs on one worker: M/G/1.
 */
double pel_sim_model_mean(const struct pel_sim_cfg *cfg);

#endif /* PEL_BENCH_SIM_H */
