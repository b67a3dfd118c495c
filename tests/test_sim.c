/* SPDX-License-Identifier: MIT */
/*
 * tests/test_sim.c - bench/sim.c, the placement simulator, against queueing theory.
 *
 * - d-FCFS on 1 worker with Poisson arrivals and exponential service is M/M/1: mean sojourn
 *   1/(mu - lambda), sojourn exponential with rate mu - lambda, so P(T <= t_p) = p at
 *   t_p = -ln(1 - p)/(mu - lambda) (p50, p90, p99).
 * - d-FCFS on N workers is N independent M/M/1 queues at the same load (a random split of a
 *   Poisson stream is Poisson).
 * - c-FCFS on c workers is M/M/c: P(wait) = Erlang C, mean wait C/(c mu - lambda).
 * - d-FCFS on 1 worker with fixed and bimodal service is M/G/1 (Pollaczek-Khinchine).
 *
 * Sojourn times of a queue are correlated, so the standard error of each estimate comes from
 * batch means (the measured requests cut into 40 batches; SE = sd of the batch means /
 * sqrt(40)); a check passes within 5 SE. The seed is fixed, so each run is the same run. The
 * SE itself is bounded (a check never passes for want of precision), and every figure is printed.
 *
 * Then the policies against each other at load 0.9 on 16 workers (exp:10us): p99 and mean of
 * c-FCFS <= stealing <= d-FCFS, c-FCFS <= JSQ <= P2C <= d-FCFS; and the bookkeeping of every
 * policy: each request once, never before it arrived, one at a time per worker, FIFO where the
 * policy says so.
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
#include "sim.h"
#include "trace_gen.h"

#define BATCHES		40
#define K_SE		5.0

/* Per-batch sums of what the closed forms predict. */
struct batches {
	uint64_t warmup;
	uint64_t per_batch;
	double t[3];			/* sojourn thresholds for the CDF checks, ns */
	double sojourn[BATCHES];
	double wait[BATCHES];
	double waited[BATCHES];		/* requests that waited at all */
	double below[3][BATCHES];	/* sojourn <= t[k] */
};

static void
on_done(const struct pel_sim_done *d, void *arg)
{
	struct batches *b = arg;
	uint64_t i;
	unsigned k;
	double t = d->finish - d->arrival;

	if (d->index < b->warmup)
		return;
	i = (d->index - b->warmup) / b->per_batch;
	if (i >= BATCHES)
		return;
	b->sojourn[i] += t;
	b->wait[i] += d->start - d->arrival;
	b->waited[i] += d->start > d->arrival;
	for (k = 0; k < 3; k++)
		b->below[k][i] += t <= b->t[k];
}

/* Mean and batch-means SE of per-batch sums @p v (each over per_batch requests). */
static void
batch_stats(const double *v, uint64_t per_batch, double *mean, double *se)
{
	double m = 0, s2 = 0;
	unsigned i;

	for (i = 0; i < BATCHES; i++)
		m += v[i] / (double)per_batch;
	m /= BATCHES;
	for (i = 0; i < BATCHES; i++)
		s2 += pow(v[i] / (double)per_batch - m, 2);
	*mean = m;
	*se = sqrt(s2 / (BATCHES - 1) / BATCHES);
}

/*
 * |estimate - exact| <= K_SE * SE, and SE <= @p max_rel_se of exact: an estimate too noisy to
 * tell a wrong simulator from a right one fails too.
 */
static void
check_batches(const char *what, const double *v, uint64_t per_batch, double exact,
	      double max_rel_se)
{
	double m, se;

	batch_stats(v, per_batch, &m, &se);
	print_message("%-40s sim %-10.5g exact %-10.5g diff %+.2f%% SE %.2f%% (%.1f SE)\n", what,
		      m, exact, 100 * (m - exact) / exact, 100 * se / exact,
		      se > 0 ? fabs(m - exact) / se : 0);
	assert_true(se <= max_rel_se * exact);
	assert_true(fabs(m - exact) <= K_SE * se);
}

static struct pel_sim_cfg
cfg_of(enum pel_sim_policy p, unsigned workers, double load, const char *svc, uint64_t requests)
{
	struct pel_sim_cfg c = {
		.policy = p,
		.workers = workers,
		.load = load,
		.arr = { .kind = PEL_ARRIVAL_POISSON, .burst = 1 },
		.requests = requests,
		.warmup = requests / 50,
		.seed = 2026,
	};
	char err[256];

	assert_int_equal(pel_service_parse(svc, &c.svc, err, sizeof(err)), 0);
	return c;
}

static void
run_batches(const struct pel_sim_cfg *c, struct batches *b, struct pel_hist *h,
	    struct pel_sim_result *res)
{
	b->warmup = c->warmup;
	b->per_batch = (c->requests - c->warmup) / BATCHES;
	assert_int_equal(pel_sim_run(c, h, on_done, b, res), 0);
	assert_true(res->measured == c->requests - c->warmup);
}

/* The run's utilisation is its load, within 5 SE of n busy periods and n gaps (~sqrt(2/n)). */
static void
check_util(const struct pel_sim_cfg *c, const struct pel_sim_result *res)
{
	double bound = K_SE * c->load * sqrt(2.0 / (double)c->requests);

	print_message("  utilisation %.5f, load %.2f (bound %.5f)\n", res->util, c->load, bound);
	assert_true(fabs(res->util - c->load) <= bound);
}

static void
check_mm1(double rho)
{
	struct pel_sim_cfg c = cfg_of(PEL_SIM_DFCFS, 1, rho, "exp:10us", 1000000);
	static const double ps[3] = { 0.5, 0.9, 0.99 };
	double mu = 1 / 10000.0, lambda = rho * mu, m, se, tol;
	struct batches b = { 0 };
	struct pel_sim_result res;
	struct pel_hist h;
	uint64_t got;
	char what[64];
	unsigned k;

	print_message("M/M/1, rho %.2f, %llu requests (d-FCFS, 1 worker)\n", rho,
		      (unsigned long long)c.requests);
	for (k = 0; k < 3; k++)
		b.t[k] = -log(1 - ps[k]) / (mu - lambda);
	assert_int_equal(pel_hist_init(&h), 0);
	run_batches(&c, &b, &h, &res);
	check_util(&c, &res);
	check_batches("  mean sojourn, ns", b.sojourn, b.per_batch, 1 / (mu - lambda), 0.03);
	assert_true(fabs(pel_sim_model_mean(&c) - 1 / (mu - lambda)) < 1e-9 / (mu - lambda));
	/* the exact mean of the run agrees with the batches' */
	batch_stats(b.sojourn, b.per_batch, &m, &se);
	assert_true(fabs(res.mean_sojourn - m) <= 3 * se);
	check_batches("  mean wait, ns", b.wait, b.per_batch, rho / (mu - lambda), 0.05);
	check_batches("  P(wait > 0) = rho", b.waited, b.per_batch, rho, 0.02);
	for (k = 0; k < 3; k++) {
		snprintf(what, sizeof(what), "  P(T <= p%g = %.0f ns)", 100 * ps[k], b.t[k]);
		check_batches(what, b.below[k], b.per_batch, ps[k], 0.02);
		/*
		 * The histogram's quantile: the SE of P(T <= t) over the density at t (delta
		 * method), plus the histogram's own half bucket.
		 */
		batch_stats(b.below[k], b.per_batch, &m, &se);
		tol = K_SE * se / ((mu - lambda) * (1 - ps[k])) + b.t[k] / 2048;
		got = pel_hist_quantile(&h, ps[k]);
		print_message("  hist p%-4g %llu ns, exact %.0f ns, diff %+.2f%% (bound %.2f%%)\n",
			      100 * ps[k], (unsigned long long)got, b.t[k],
			      100 * ((double)got - b.t[k]) / b.t[k], 100 * tol / b.t[k]);
		assert_true(fabs((double)got - b.t[k]) <= tol);
	}
	pel_hist_fini(&h);
}

static void
test_mm1(void **state)
{
	(void)state;
	check_mm1(0.5);
	check_mm1(0.8);
}

/* d-FCFS on 16 workers: 16 M/M/1 queues at load rho. */
static void
test_dfcfs_is_n_mm1(void **state)
{
	struct pel_sim_cfg c = cfg_of(PEL_SIM_DFCFS, 16, 0.7, "exp:10us", 1000000);
	double mu = 1 / 10000.0, lambda = 0.7 * mu;
	struct batches b = { 0 };
	struct pel_sim_result res;

	(void)state;
	print_message("16 x M/M/1, rho 0.70 (d-FCFS, 16 workers)\n");
	b.t[0] = M_LN2 / (mu - lambda);
	run_batches(&c, &b, NULL, &res);
	check_util(&c, &res);
	check_batches("  mean sojourn, ns", b.sojourn, b.per_batch, 1 / (mu - lambda), 0.03);
	check_batches("  P(T <= p50)", b.below[0], b.per_batch, 0.5, 0.02);
}

static void
check_mmc(unsigned servers, double rho)
{
	struct pel_sim_cfg c = cfg_of(PEL_SIM_CFCFS, servers, rho, "exp:10us", 1000000);
	double mu = 1 / 10000.0, lambda = rho * servers * mu, pw, wq;
	struct batches b = { 0 };
	struct pel_sim_result res;

	print_message("M/M/%u, rho %.2f (c-FCFS, %u workers)\n", servers, rho, servers);
	pw = pel_sim_erlang_c(servers, lambda / mu);
	wq = pw / (servers * mu - lambda);
	run_batches(&c, &b, NULL, &res);
	check_util(&c, &res);
	check_batches("  P(wait > 0) = Erlang C", b.waited, b.per_batch, pw, 0.05);
	check_batches("  mean wait, ns", b.wait, b.per_batch, wq, 0.08);
	check_batches("  mean sojourn, ns", b.sojourn, b.per_batch, 1 / mu + wq, 0.03);
	assert_true(fabs(pel_sim_model_mean(&c) - (1 / mu + wq)) < 1e-9 / mu);
}

static void
test_mmc(void **state)
{
	(void)state;
	check_mmc(4, 0.8);
	check_mmc(16, 0.9);
	check_mmc(64, 0.95);
}

/* Erlang C against values worked by hand. */
static void
test_erlang_c(void **state)
{
	(void)state;
	/* M/M/1: P(wait) = rho */
	assert_true(fabs(pel_sim_erlang_c(1, 0.3) - 0.3) < 1e-12);
	/* c = 2, a = 1: (1/2 * 2/1) / (1 + 1 + 1) = 1/3 */
	assert_true(fabs(pel_sim_erlang_c(2, 1) - 1.0 / 3) < 1e-12);
	/* c = 3, a = 2: top 4/3 * 3 = 4; sum 1 + 2 + 2 = 5; 4/9 */
	assert_true(fabs(pel_sim_erlang_c(3, 2) - 4.0 / 9) < 1e-12);
	assert_true(pel_sim_erlang_c(4, 4) == 1);
	/* 64 servers: no overflow of a^c / c! */
	assert_true(pel_sim_erlang_c(64, 60.8) > 0 && pel_sim_erlang_c(64, 60.8) < 1);
}

/* M/G/1 (Pollaczek-Khinchine) for fixed (M/D/1) and bimodal service on one worker. */
static void
check_mg1(const char *svc, double rho)
{
	struct pel_sim_cfg c = cfg_of(PEL_SIM_DFCFS, 1, rho, svc, 1000000);
	double es = pel_service_mean(&c.svc), es2 = pel_service_moment2(&c.svc);
	struct batches b = { 0 };
	struct pel_sim_result res;
	char what[96];

	print_message("M/G/1 %s, rho %.2f\n", svc, rho);
	run_batches(&c, &b, NULL, &res);
	check_util(&c, &res);
	snprintf(what, sizeof(what), "  mean wait, ns (P-K)");
	check_batches(what, b.wait, b.per_batch, rho * es2 / (2 * es * (1 - rho)), 0.08);
	check_batches("  P(wait > 0) = rho", b.waited, b.per_batch, rho, 0.02);
	assert_true(fabs(pel_sim_model_mean(&c) - (es + rho * es2 / (2 * es * (1 - rho)))) <
		    1e-9 * es);
}

static void
test_mg1(void **state)
{
	(void)state;
	check_mg1("fixed:1us", 0.8);
	check_mg1("bimodal:90:5us:55us", 0.7);
}

/* Bookkeeping, for every policy: see check_trace(). */
struct trace_check {
	const struct pel_sim_cfg *cfg;
	uint8_t *seen;
	double prev_finish[PEL_SIM_MAX_WORKERS];
	double *start;			/* by index */
	unsigned *worker;		/* by index */
	uint64_t n;
	uint64_t stolen;
	double sum_service;
};

static void
on_trace(const struct pel_sim_done *d, void *arg)
{
	struct trace_check *t = arg;
	double extra = d->stolen ? t->cfg->steal_cost : 0;

	assert_true(d->index < t->cfg->requests);
	assert_int_equal(t->seen[d->index], 0);	/* once */
	t->seen[d->index] = 1;
	assert_true(d->worker < t->cfg->workers);
	assert_true(d->start >= d->arrival);		/* never before it arrived */
	assert_true(fabs(d->finish - d->start - d->service) <= 1e-6 * d->service);
	/* one at a time per worker: reported in completion order, each starts after the last */
	assert_true(d->start - extra >= t->prev_finish[d->worker] - 1e-6);
	t->prev_finish[d->worker] = d->finish;
	t->start[d->index] = d->start;
	t->worker[d->index] = d->worker;
	if (t->cfg->policy != PEL_SIM_STEAL)
		assert_int_equal(d->stolen, 0);
	t->stolen += d->stolen;
	t->sum_service += d->service;
	t->n++;
}

/*
 * The start times again, by the textbook recursions on the same trace rather than events: for
 * c-FCFS the request starts at max(arrival, earliest free worker) (Kiefer-Wolfowitz); without
 * stealing, at max(arrival, when its worker finished its previous request).
 */
static void
replay(const struct pel_sim_cfg *c, const struct trace_check *t)
{
	double free_at[PEL_SIM_MAX_WORKERS] = { 0 }, rate, start;
	struct pel_gen g;
	struct pel_req q;
	unsigned w, k;
	uint64_t i;

	rate = c->load * c->workers / pel_service_mean(&c->svc);
	pel_gen_init(&g, &c->arr, &c->svc, rate, c->seed);
	for (i = 0; i < c->requests; i++) {
		q = pel_gen_next(&g);
		w = t->worker[i];
		if (c->policy == PEL_SIM_CFCFS)
			for (k = 0, w = 0; k < c->workers; k++)
				if (free_at[k] < free_at[w])
					w = k;
		start = q.arrival > free_at[w] ? q.arrival : free_at[w];
		assert_true(fabs(start - t->start[i]) <= 1e-9 * start);
		free_at[w] = start + q.service;
	}
}

static void
check_trace(enum pel_sim_policy p, unsigned workers, double load, const char *svc,
	    double steal_cost)
{
	struct pel_sim_cfg c = cfg_of(p, workers, load, svc, 200000);
	struct trace_check t = { .cfg = &c };
	struct pel_sim_result res;
	struct pel_gen g;
	double rate, sum = 0;
	uint64_t i;

	c.steal_cost = steal_cost;
	t.seen = calloc(c.requests, 1);
	t.start = calloc(c.requests, sizeof(*t.start));
	t.worker = calloc(c.requests, sizeof(*t.worker));
	assert_true(t.seen && t.start && t.worker);
	assert_int_equal(pel_sim_run(&c, NULL, on_trace, &t, &res), 0);
	assert_true(t.n == c.requests);
	/* one FIFO: requests start in arrival order (the index order) */
	for (i = 1; p == PEL_SIM_CFCFS && i < c.requests; i++)
		assert_true(t.start[i] >= t.start[i - 1]);
	if (p != PEL_SIM_STEAL)
		replay(&c, &t);
	assert_true(t.stolen == res.steals);
	if (p == PEL_SIM_STEAL)
		assert_true(res.steals > 0);
	/* the services run are the trace's */
	rate = c.load * c.workers / pel_service_mean(&c.svc);
	pel_gen_init(&g, &c.arr, &c.svc, rate, c.seed);
	for (i = 0; i < c.requests; i++)
		sum += pel_gen_next(&g).service;
	assert_true(fabs(sum - t.sum_service) <= 1e-9 * sum);
	free(t.seen);
	free(t.start);
	free(t.worker);
}

static void
test_bookkeeping(void **state)
{
	int p;

	(void)state;
	for (p = 0; p < PEL_SIM_NPOLICIES; p++) {
		check_trace((enum pel_sim_policy)p, 8, 0.9, "bimodal:90:5us:55us", 0);
		check_trace((enum pel_sim_policy)p, 16, 0.5, "bimodal:99.5:0.5us:500us", 0);
	}
	check_trace(PEL_SIM_STEAL, 8, 0.9, "bimodal:90:5us:55us", 2000);
}

struct figures {
	double mean;
	uint64_t p99;
};

static struct figures
run_policy(enum pel_sim_policy p, double steal_cost)
{
	struct pel_sim_cfg c = cfg_of(p, 16, 0.9, "exp:10us", 400000);
	struct pel_sim_result res;
	struct pel_hist h;
	struct figures f;

	c.steal_cost = steal_cost;
	assert_int_equal(pel_hist_init(&h), 0);
	assert_int_equal(pel_sim_run(&c, &h, NULL, NULL, &res), 0);
	f.mean = res.mean_sojourn;
	f.p99 = pel_hist_quantile(&h, 0.99);
	print_message("  %-6s steal cost %4.0f ns: mean %8.0f ns, p99 %8llu ns\n",
		      pel_sim_policy_name(p), steal_cost, f.mean, (unsigned long long)f.p99);
	pel_hist_fini(&h);
	return f;
}

/* At load 0.9 on 16 workers, exp:10us: the order the theory gives. */
static void
test_policy_order(void **state)
{
	struct figures cf, df, jsq, p2c, st, st_cost;

	(void)state;
	print_message("16 workers, load 0.9, exp:10us, same trace for each policy\n");
	cf = run_policy(PEL_SIM_CFCFS, 0);
	df = run_policy(PEL_SIM_DFCFS, 0);
	jsq = run_policy(PEL_SIM_JSQ, 0);
	p2c = run_policy(PEL_SIM_P2C, 0);
	st = run_policy(PEL_SIM_STEAL, 0);
	st_cost = run_policy(PEL_SIM_STEAL, 1000);
	/* c-FCFS is best for exponential service */
	assert_true(cf.p99 <= jsq.p99 && cf.p99 <= p2c.p99 && cf.p99 <= st.p99);
	assert_true(cf.mean <= jsq.mean && cf.mean <= p2c.mean && cf.mean <= df.mean);
	/*
	 * Free stealing never leaves a worker idle while a request waits, like c-FCFS: with
	 * exponential service both have the M/M/c number in system, so by Little's law the same
	 * mean (not the same tail: stealing serves out of arrival order).
	 */
	assert_true(fabs(st.mean - cf.mean) <= 0.02 * cf.mean);
	/* balancing beats random placement; full information beats two samples */
	assert_true(jsq.p99 <= p2c.p99 && p2c.p99 < df.p99);
	assert_true(jsq.mean <= p2c.mean && p2c.mean < df.mean);
	/* stealing sits between c-FCFS and d-FCFS, and a steal cost moves it toward d-FCFS */
	assert_true(st.p99 < df.p99 && st.mean < df.mean);
	assert_true(st_cost.p99 >= st.p99 && st_cost.mean > st.mean && st_cost.p99 < df.p99);
	/* d-FCFS is far from the rest here: a factor, not noise */
	assert_true(df.p99 > 3 * p2c.p99);
}

static void
test_deterministic(void **state)
{
	struct pel_sim_cfg c = cfg_of(PEL_SIM_P2C, 8, 0.8, "exp:10us", 50000);
	struct pel_sim_result a, b, d;

	(void)state;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &a), 0);
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	c.seed++;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &d), 0);
	assert_true(d.mean_sojourn != a.mean_sojourn);
}

static void
test_bad_config(void **state)
{
	struct pel_sim_cfg good = cfg_of(PEL_SIM_JSQ, 4, 0.5, "exp:10us", 1000), c;
	struct pel_sim_result res;

	(void)state;
	c = good;
	c.workers = 0;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c.workers = PEL_SIM_MAX_WORKERS + 1;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c = good;
	c.load = 0;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c.load = 1;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c.load = NAN;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c = good;
	c.requests = 0;
	c.warmup = 0;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c = good;
	c.warmup = c.requests;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c = good;
	c.steal_cost = -1;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c.steal_cost = INFINITY;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	c = good;
	c.policy = PEL_SIM_NPOLICIES;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);
	assert_int_equal(pel_sim_run(&good, NULL, NULL, NULL, &res), 0);
	assert_int_equal(pel_sim_policy_parse("nope"), -1);
	assert_int_equal(pel_sim_policy_parse("steal"), PEL_SIM_STEAL);
}

static void
collect_sojourn(const struct pel_sim_done *d, void *arg)
{
	double *soj = arg;

	soj[d->index] = d->finish - d->arrival;
}

/*
 * A replayed trace (pel-load's ideal FCFS): a hand-made one with known sojourns on 1 and 2
 * servers, and the generator's own trace replayed gives the run it generated.
 */
static void
test_replay(void **state)
{
	/* 1 server: 0+5, waits 5 then 5, then idle until 20: 5, 10, 5 (+ 3 more at 20..) */
	static const struct pel_req hand[] = {
		{ 0, 5 }, { 0, 5 }, { 20, 5 }, { 20, 1 }, { 20.5, 0 },
	};
	static const double one[] = { 5, 10, 5, 6, 5.5 }, two[] = { 5, 5, 5, 1, 0.5 };
	struct pel_sim_cfg c = { .policy = PEL_SIM_CFCFS, .workers = 1, .requests = 5,
				 .trace = hand };
	struct pel_sim_result res, res2;
	struct pel_hist h, h2;
	struct pel_req *tr;
	struct pel_gen g;
	double soj[5];
	unsigned i;

	(void)state;
	assert_int_equal(pel_sim_run(&c, NULL, collect_sojourn, soj, &res), 0);
	for (i = 0; i < 5; i++)
		assert_true(soj[i] == one[i]);
	c.workers = 2;
	assert_int_equal(pel_sim_run(&c, NULL, collect_sojourn, soj, &res), 0);
	for (i = 0; i < 5; i++)
		assert_true(soj[i] == two[i]);
	c.warmup = 5;
	assert_int_equal(pel_sim_run(&c, NULL, NULL, NULL, &res), -EINVAL);

	c = cfg_of(PEL_SIM_CFCFS, 4, 0.8, "exp:10us", 20000);
	assert_int_equal(pel_hist_init(&h), 0);
	assert_int_equal(pel_hist_init(&h2), 0);
	assert_int_equal(pel_sim_run(&c, &h, NULL, NULL, &res), 0);
	tr = malloc(c.requests * sizeof(*tr));
	assert_non_null(tr);
	pel_gen_init(&g, &c.arr, &c.svc, c.load * c.workers / pel_service_mean(&c.svc), c.seed);
	for (i = 0; i < c.requests; i++)
		tr[i] = pel_gen_next(&g);
	c.trace = tr;
	c.load = 7;		/* not used, nor checked, on a replay */
	assert_int_equal(pel_sim_run(&c, &h2, NULL, NULL, &res2), 0);
	assert_true(res.mean_sojourn == res2.mean_sojourn);
	assert_int_equal(h.n, h2.n);
	assert_int_equal(pel_hist_quantile(&h, 0.99), pel_hist_quantile(&h2, 0.99));
	free(tr);
	pel_hist_fini(&h);
	pel_hist_fini(&h2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_erlang_c),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_bookkeeping),
		cmocka_unit_test(test_mm1),
		cmocka_unit_test(test_dfcfs_is_n_mm1),
		cmocka_unit_test(test_mmc),
		cmocka_unit_test(test_mg1),
		cmocka_unit_test(test_policy_order),
		cmocka_unit_test(test_replay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
