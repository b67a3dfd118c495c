/* SPDX-License-Identifier: MIT */
/*
 * bench/sim.c - the discrete-event simulator of bench/sim.h.
 *
 * Two kinds of event: the next arrival of the trace, and the completion of each busy worker.
 * With at most 64 workers a scan for the earliest completion costs less than a heap would; on a
 * tie the completion goes first, so a worker freed at t can take a request arriving at t.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const policy_names[PEL_SIM_NPOLICIES] = {
	[PEL_SIM_CFCFS] = "cfcfs",
	[PEL_SIM_DFCFS] = "dfcfs",
	[PEL_SIM_JSQ] = "jsq",
	[PEL_SIM_P2C] = "p2c",
	[PEL_SIM_STEAL] = "steal",
};

const char *
pel_sim_policy_name(enum pel_sim_policy p)
{
	return (unsigned)p < PEL_SIM_NPOLICIES ? policy_names[p] : "?";
}

int
pel_sim_policy_parse(const char *name)
{
	int i;

	for (i = 0; i < PEL_SIM_NPOLICIES; i++)
		if (!strcmp(name, policy_names[i]))
			return i;
	return -1;
}

struct item {
	double arrival;
	double service;
	uint64_t index;
};

/* A growable FIFO of requests. */
struct fifo {
	struct item *v;
	size_t head;
	size_t len;
	size_t cap;		/* a power of two, or 0 */
};

static int
fifo_push(struct fifo *f, const struct item *it)
{
	if (f->len == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64, i;
		struct item *v = malloc(cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (i = 0; i < f->len; i++)
			v[i] = f->v[(f->head + i) & (f->cap - 1)];
		free(f->v);
		f->v = v;
		f->head = 0;
		f->cap = cap;
	}
	f->v[(f->head + f->len) & (f->cap - 1)] = *it;
	f->len++;
	return 0;
}

static struct item
fifo_pop(struct fifo *f)
{
	struct item it = f->v[f->head];

	f->head = (f->head + 1) & (f->cap - 1);
	f->len--;
	return it;
}

struct worker {
	bool busy;
	bool stolen;		/* the current request was stolen */
	double done;		/* completion of the current request */
	double start;		/* it began to run */
	struct item cur;
	struct fifo q;		/* waiting, not counting cur */
};

struct sim {
	const struct pel_sim_cfg *cfg;
	unsigned n;
	struct worker w[PEL_SIM_MAX_WORKERS];
	struct fifo central;	/* cfcfs */
	struct pel_rng rng;	/* placement */
	struct pel_hist *hist;
	pel_sim_done_fn fn;
	void *arg;
	double busy_time;
	double sum_sojourn;
	double sum_wait;
	double last_finish;
	uint64_t steals;
};

/* Request @p i of the trace: replayed from cfg->trace, or the generator's next. */
static struct pel_req
next_req(const struct pel_sim_cfg *cfg, struct pel_gen *gen, uint64_t i)
{
	return cfg->trace ? cfg->trace[i] : pel_gen_next(gen);
}

/* Worker @p w takes @p it at @p t, running it after @p extra ns. */
static void
begin(struct sim *s, unsigned w, const struct item *it, double t, double extra, bool stolen)
{
	struct worker *k = &s->w[w];

	k->busy = true;
	k->stolen = stolen;
	k->cur = *it;
	k->start = t + extra;
	k->done = k->start + it->service;
	s->busy_time += extra + it->service;
}

/* Requests at worker @p w, waiting and in service. */
static size_t
load_of(const struct sim *s, unsigned w)
{
	return s->w[w].q.len + s->w[w].busy;
}

static unsigned
pick_jsq(struct sim *s)
{
	size_t best = SIZE_MAX, l;
	unsigned w, pick = 0, ties = 0;

	for (w = 0; w < s->n; w++) {
		l = load_of(s, w);
		if (l < best) {
			best = l;
			pick = w;
			ties = 1;
		} else if (l == best && pel_rng_below(&s->rng, ++ties) == 0) {
			/* reservoir sampling: each tied worker is picked with 1/ties */
			pick = w;
		}
	}
	return pick;
}

static unsigned
pick_p2c(struct sim *s)
{
	unsigned a, b;

	if (s->n == 1)
		return 0;
	a = pel_rng_below(&s->rng, s->n);
	b = pel_rng_below(&s->rng, s->n - 1);
	if (b >= a)
		b++;
	return load_of(s, b) < load_of(s, a) ? b : a;
}

/* Idle worker @p thief takes the oldest waiting request of the longest queue, if any, at @p t. */
static void
steal(struct sim *s, unsigned thief, double t)
{
	size_t best = 0;
	unsigned w, victim = 0;
	struct item it;

	for (w = 0; w < s->n; w++) {
		if (s->w[w].q.len > best) {
			best = s->w[w].q.len;
			victim = w;
		}
	}
	if (!best)
		return;
	it = fifo_pop(&s->w[victim].q);
	s->steals++;
	begin(s, thief, &it, t, s->cfg->steal_cost, true);
}

static int
arrive(struct sim *s, const struct item *it)
{
	double t = it->arrival;
	unsigned w;
	int err;

	switch (s->cfg->policy) {
	case PEL_SIM_CFCFS:
		for (w = 0; w < s->n; w++) {
			if (!s->w[w].busy) {
				begin(s, w, it, t, 0, false);
				return 0;
			}
		}
		return fifo_push(&s->central, it);
	case PEL_SIM_JSQ:
		w = pick_jsq(s);
		break;
	case PEL_SIM_P2C:
		w = pick_p2c(s);
		break;
	case PEL_SIM_DFCFS:
	case PEL_SIM_STEAL:
	default:
		w = pel_rng_below(&s->rng, s->n);
		break;
	}
	if (!s->w[w].busy) {
		begin(s, w, it, t, 0, false);
		return 0;
	}
	err = fifo_push(&s->w[w].q, it);
	if (err || s->cfg->policy != PEL_SIM_STEAL)
		return err;
	/* an idle worker polls the others' queues all the time: it sees this one at once */
	for (w = 0; w < s->n; w++) {
		if (!s->w[w].busy) {
			steal(s, w, t);
			break;
		}
	}
	return 0;
}

static void
complete(struct sim *s, unsigned w)
{
	struct worker *k = &s->w[w];
	double t = k->done;
	struct pel_sim_done d = {
		.index = k->cur.index,
		.arrival = k->cur.arrival,
		.start = k->start,
		.finish = t,
		.service = k->cur.service,
		.worker = w,
		.stolen = k->stolen,
	};
	struct item it;

	if (d.index >= s->cfg->warmup) {
		s->sum_sojourn += t - d.arrival;
		s->sum_wait += d.start - d.arrival;
		if (s->hist)
			pel_hist_record(s->hist, (uint64_t)llround(t - d.arrival));
	}
	if (s->fn)
		s->fn(&d, s->arg);
	s->last_finish = t;
	k->busy = false;

	if (s->cfg->policy == PEL_SIM_CFCFS) {
		if (s->central.len) {
			it = fifo_pop(&s->central);
			begin(s, w, &it, t, 0, false);
		}
		return;
	}
	if (k->q.len) {
		it = fifo_pop(&k->q);
		begin(s, w, &it, t, 0, false);
	} else if (s->cfg->policy == PEL_SIM_STEAL) {
		steal(s, w, t);
	}
}

static int
check_cfg(const struct pel_sim_cfg *c)
{
	if ((unsigned)c->policy >= PEL_SIM_NPOLICIES || !c->workers ||
	    c->workers > PEL_SIM_MAX_WORKERS || !c->requests || c->warmup >= c->requests ||
	    !(c->steal_cost >= 0 && isfinite(c->steal_cost)))
		return -EINVAL;
	if (!c->trace && (!(c->load > 0 && c->load < 1) || !(pel_service_mean(&c->svc) > 0)))
		return -EINVAL;
	return 0;
}

int
pel_sim_run(const struct pel_sim_cfg *cfg, struct pel_hist *hist, pel_sim_done_fn fn,
	    void *arg, struct pel_sim_result *res)
{
	struct sim *s;
	struct pel_gen gen = { 0 };
	struct pel_req r;
	struct item next;
	uint64_t arrived = 0, done = 0;
	unsigned w, first;
	double rate;
	int err = 0;

	if (check_cfg(cfg))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = cfg;
	s->n = cfg->workers;
	s->hist = hist;
	s->fn = fn;
	s->arg = arg;
	pel_rng_seed(&s->rng, cfg->seed ^ PEL_SIM_POLICY_SALT);
	if (!cfg->trace) {
		rate = cfg->load * cfg->workers / pel_service_mean(&cfg->svc);
		pel_gen_init(&gen, &cfg->arr, &cfg->svc, rate, cfg->seed);
	}
	r = next_req(cfg, &gen, 0);
	next = (struct item){ r.arrival, r.service, 0 };

	while (done < cfg->requests) {
		first = s->n;
		for (w = 0; w < s->n; w++)
			if (s->w[w].busy && (first == s->n || s->w[w].done < s->w[first].done))
				first = w;
		if (arrived < cfg->requests &&
		    (first == s->n || next.arrival < s->w[first].done)) {
			err = arrive(s, &next);
			if (err)
				break;
			if (++arrived < cfg->requests) {
				r = next_req(cfg, &gen, arrived);
				next = (struct item){ r.arrival, r.service, arrived };
			}
		} else {
			complete(s, first);
			done++;
		}
	}

	if (!err && res) {
		res->measured = cfg->requests - cfg->warmup;
		res->mean_sojourn = s->sum_sojourn / (double)res->measured;
		res->mean_wait = s->sum_wait / (double)res->measured;
		res->util = s->busy_time / (s->n * s->last_finish);
		res->steals = s->steals;
	}
	for (w = 0; w < PEL_SIM_MAX_WORKERS; w++)
		free(s->w[w].q.v);
	free(s->central.v);
	free(s);
	return err;
}

double
pel_sim_erlang_c(unsigned c, double a)
{
	double term = 1, sum = 0, top;
	unsigned k;

	if (!c || a <= 0 || a >= c)
		return a >= c ? 1 : 0;
	/* sum of a^k / k! for k < c, built term by term: no overflow of a^c or c! */
	for (k = 0; k < c; k++) {
		sum += term;
		term *= a / (k + 1);
	}
	top = term * c / (c - a);	/* term is now a^c / c! */
	return top / (sum + top);
}

double
pel_sim_model_mean(const struct pel_sim_cfg *cfg)
{
	double es = pel_service_mean(&cfg->svc), rho = cfg->load, rate, mu;

	if (cfg->arr.kind != PEL_ARRIVAL_POISSON)
		return NAN;
	if (cfg->policy == PEL_SIM_DFCFS || (cfg->policy == PEL_SIM_CFCFS && cfg->workers == 1))
		return es + rho * pel_service_moment2(&cfg->svc) / (2 * es * (1 - rho));
	if (cfg->policy == PEL_SIM_CFCFS && cfg->svc.kind == PEL_SERVICE_EXP) {
		mu = 1 / es;
		rate = rho * cfg->workers * mu;
		return es + pel_sim_erlang_c(cfg->workers, rate / mu) /
				    (cfg->workers * mu - rate);
	}
	return NAN;
}
