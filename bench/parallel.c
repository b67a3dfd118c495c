/* SPDX-License-Identifier: MIT */
/*
 * bench/parallel.c - pel-bench parallel: fork/join and placement under a skewed load.
 *
 * Fork/join: one request split into M members (M = 1 .. 64), each the same fixed work; the time
 * from the request's start to its completion callback. pel: a root task on worker 0 opens a group
 * (pel/group.h), spawns M members (PEL_ANY_WORKER, round robin), closes it; on_done runs on
 * worker 0; the caller sleeps on a semaphore meanwhile. Baselines in the same run, on the same
 * two CPUs, each in its own block with a rest between: a mutex+condvar thread pool of two threads
 * (bench/mutexq.h; the last member to finish stops the clock), and OpenMP (a parallel for of M
 * iterations, schedule(dynamic, 1), two threads; the implicit barrier stops the clock) when
 * built with it.
 *
 * Skew: an open-loop Poisson stream of requests of 50 us service, 80% of the keys hashed to
 * worker 0 (the hot one), at a total load of 55% of two workers (the hot one at 88%). Sojourn =
 * completion time - planned arrival. Workers run at nice 10 and the generator sleeps until each
 * arrival (the last 20 us spinning), so on two vCPUs it still keeps its schedule. Fixed hash
 * placement (pel_submit to hash(key)) against pel_submit_any() with PEL_PLACE_P2C, and against
 * the same hash placement of stealable tasks (group members on hash(key)) with PEL_F_STEAL.
 */
#include <errno.h>
#include <math.h>
#include <semaphore.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pel/par.h>

#include "bench.h"
#include "mutexq.h"

#if defined(PEL_BENCH_HAVE_OPENMP)
#include <omp.h>
#endif

#define MAX_M		64
#define WORK_ITERS	400u	/* per member: a dependent multiply chain, about 1 us */

static const unsigned members[] = { 1, 2, 4, 8, 16, 32, 64 };
#define NM		(sizeof(members) / sizeof(members[0]))

static uint64_t
work(uint64_t seed)
{
	uint64_t x = seed | 1;

	for (unsigned i = 0; i < WORK_ITERS; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x;
}

static _Atomic uint64_t sink;

static int
qcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(double *v, unsigned n, double p)
{
	unsigned i;

	qsort(v, n, sizeof(*v), qcmp);
	i = (unsigned)(p * (n - 1) + 0.5);
	return v[i];
}

/* ---- pel fork/join ---- */

/* The caller sleeps on a semaphore the completion posts after stopping the clock: a polling
 * caller would be a third thread on the two CPUs the runtimes race on. */
struct fj {
	struct pel_group g;
	unsigned m;
	uint64_t t0, t1;
	sem_t done;
};

static void
fj_member(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&sink, work((uintptr_t)arg), memory_order_relaxed);
}

static void
fj_done(void *arg)
{
	struct fj *f = arg;

	f->t1 = pel_now_ns();
	sem_post(&f->done);
}

static void
fj_root(void *arg)
{
	struct fj *f = arg;

	f->t0 = pel_now_ns();
	if (pel_group_init(&f->g, fj_done, f, PEL_ANY_WORKER))
		abort();
	for (unsigned i = 0; i < f->m; i++)
		while (pel_group_spawn(&f->g, PEL_ANY_WORKER, fj_member, (void *)(uintptr_t)i))
			;
	pel_group_close(&f->g);
}

static double
fj_pel(struct pel_producer *p, unsigned m)
{
	struct fj f = { .m = m };

	sem_init(&f.done, 0, 0);
	while (pel_submit(p, 0, fj_root, &f))
		;
	while (sem_wait(&f.done))
		;
	pel_group_destroy(&f.g);
	sem_destroy(&f.done);
	return (double)(f.t1 - f.t0);
}

/* ---- mutex+condvar pool ---- */

struct pool {
	struct pel_bench_mq q;
	pthread_t th[2];
	int cpu[2];
};

struct pfj {
	unsigned m;
	_Atomic unsigned left;
	uint64_t t0, t1;
	sem_t done;
	struct pel_bench_mq *q;
};

static void
pfj_member(void *arg)
{
	struct pfj *f = arg;

	atomic_fetch_add_explicit(&sink, work(atomic_load(&f->left)), memory_order_relaxed);
	if (atomic_fetch_sub(&f->left, 1) == 1) {
		f->t1 = pel_bench_mono_ns();
		sem_post(&f->done);
	}
}

static void
pfj_root(void *arg)
{
	struct pfj *f = arg;
	struct pel_task t[MAX_M];

	f->t0 = pel_bench_mono_ns();
	atomic_store(&f->left, f->m);
	for (unsigned i = 0; i < f->m; i++)
		t[i] = (struct pel_task){ pfj_member, f };
	for (unsigned i = 0; i < f->m;)
		i += pel_bench_mq_push(f->q, t + i, f->m - i);
}

struct pool_arg {
	struct pool *pool;
	int cpu;
};

static void *
pool_thread(void *arg)
{
	struct pool_arg *a = arg;
	struct pel_task t;

	pel_bench_pin(a->cpu);
	while (pel_bench_mq_pop(&a->pool->q, &t, 1))
		t.fn(t.arg);
	return NULL;
}

static double
fj_pool(struct pool *pool, unsigned m)
{
	struct pfj f = { .m = m, .q = &pool->q };
	struct pel_task root = { pfj_root, &f };

	sem_init(&f.done, 0, 0);
	pel_bench_mq_push(&pool->q, &root, 1);
	while (sem_wait(&f.done))
		;
	sem_destroy(&f.done);
	return (double)(f.t1 - f.t0);
}

/* ---- OpenMP ---- */

#if defined(PEL_BENCH_HAVE_OPENMP)
static double
fj_omp(unsigned m)
{
	uint64_t t0 = pel_bench_mono_ns();

#pragma omp parallel for num_threads(2) schedule(dynamic, 1)
	for (unsigned i = 0; i < m; i++)
		atomic_fetch_add_explicit(&sink, work(i), memory_order_relaxed);
	return (double)(pel_bench_mono_ns() - t0);
}

static void
omp_pin(int a, int b)
{
#pragma omp parallel num_threads(2)
	pel_bench_pin(omp_get_thread_num() ? b : a);
}
#endif

static int
forkjoin(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	unsigned reps = o->reps ? o->reps * 200 : 2000;
	struct pel_runtime *rt = NULL;
	struct pel_producer *p = NULL;
	struct pel_config cfg;
	struct pool pool;
	struct pool_arg pa[2];
	double *v[3];
	char cpus[32], name[64];
	double omp16 = NAN, pel16 = NAN;
	int err;

	snprintf(cpus, sizeof(cpus), "%d,%d", o->cpu_a < o->cpu_b ? o->cpu_a : o->cpu_b,
		 o->cpu_a < o->cpu_b ? o->cpu_b : o->cpu_a);
	pel_config_default(&cfg);
	cfg.cpus = cpus;
	cfg.idle = PEL_IDLE_BACKOFF;
	cfg.idle_spin_ns = 200 * PEL_NS_PER_US;	/* as long as libgomp spins, about */
	cfg.idle_park_ns = 1 * PEL_NS_PER_MS;
	cfg.log = pel_bench_log_once;
	err = pel_create(&cfg, &rt);
	if (!err)
		err = pel_par_enable(rt, 0);
	if (!err)
		err = pel_producer_open(rt, &p);
	if (err) {
		fprintf(stderr, "pel-bench: parallel: %s\n", pel_last_error());
		return 1;
	}
	if (pel_bench_mq_init(&pool.q, 1024))
		return 1;
	for (int i = 0; i < 2; i++) {
		pa[i] = (struct pool_arg){ &pool, i ? o->cpu_b : o->cpu_a };
		if (pthread_create(&pool.th[i], NULL, pool_thread, &pa[i]))
			return 1;
	}
#if defined(PEL_BENCH_HAVE_OPENMP)
	omp_pin(o->cpu_a, o->cpu_b);
#endif
	for (int k = 0; k < 3; k++)
		v[k] = calloc(reps, sizeof(double));
	printf("forkjoin cpus=%s members of %u iterations (~1 us) reps=%u; ns from the request's "
	       "start to on_done\n", cpus, WORK_ITERS, reps);
	printf("%-8s %-26s %10s %10s\n", "members", "runtime", "p50 ns", "p99 ns");
	for (unsigned mi = 0; mi < NM; mi++) {
		unsigned m = members[mi];

		/* in blocks, with a rest between: each runtime's threads spin a while after
		 * their last job (pel's BACKOFF 200 us, libgomp's GOMP_SPINCOUNT), and on two
		 * CPUs that would tax the runtime measured next */
		for (unsigned r = 0; r < reps; r++)
			v[0][r] = fj_pel(p, m);
		pel_bench_rest(0);
		for (unsigned r = 0; r < reps; r++)
			v[1][r] = fj_pool(&pool, m);
		pel_bench_rest(0);
#if defined(PEL_BENCH_HAVE_OPENMP)
		for (unsigned r = 0; r < reps; r++)
			v[2][r] = fj_omp(m);
		pel_bench_rest(0);
#endif
		for (int k = 0; k < 3; k++) {
			static const char *const label[] = { "pel group", "mutex+condvar pool",
							     "openmp" };
			static const char *const key[] = { "pel", "pool", "openmp" };
			double p50, p99;

#if !defined(PEL_BENCH_HAVE_OPENMP)
			if (k == 2)
				continue;
#endif
			p50 = pct(v[k], reps, 0.5);
			p99 = pct(v[k], reps, 0.99);
			printf("%-8u %-26s %10.0f %10.0f\n", m, label[k], p50, p99);
			snprintf(name, sizeof(name), "forkjoin%u_%s_p50", m, key[k]);
			pel_bench_metric(rep, name, p50, "ns");
			snprintf(name, sizeof(name), "forkjoin%u_%s_p99", m, key[k]);
			pel_bench_metric(rep, name, p99, "ns");
			if (m == 16 && k == 0)
				pel16 = p50;
			if (m == 16 && k == 2)
				omp16 = p50;
			if (m == 16 && k == 1)
				printf("%-8s %-26s %10.2f (p50, lower is better)\n", "ratio",
				       "pel/pool", pel16 / p50);
		}
	}
	if (!isnan(omp16)) {
		printf("ratio    forkjoin16_vs_openmp       %10.2f (p50 pel/openmp, lower is "
		       "better)\n", pel16 / omp16);
		pel_bench_ratio(rep, "forkjoin16_vs_openmp", pel16 / omp16);
	} else {
		printf("note: built without OpenMP: no openmp rows or ratio\n");
	}
	pel_bench_mq_close(&pool.q);
	for (int i = 0; i < 2; i++)
		pthread_join(pool.th[i], NULL);
	pel_bench_mq_destroy(&pool.q);
	for (int k = 0; k < 3; k++)
		free(v[k]);
	pel_producer_close(p);
	pel_destroy(rt);
	return 0;
}

/* ---- skewed load ---- */

#define SKEW_N		20000u
#define SKEW_SERVICE	50000u	/* ns: long enough that one generator thread keeps up on two vCPUs */
#define SKEW_LOAD	0.55	/* of two workers */
#define SKEW_HOT	0.8	/* share of the keys on worker 0 */

struct req {
	uint64_t planned, sent, done;
};

static void
serve(void *arg)
{
	struct req *r = arg;
	uint64_t end = pel_now_ns() + SKEW_SERVICE;

	while (pel_now_ns() < end)
		;
	r->done = pel_now_ns();
}

static void
skew_done(void *arg)
{
	(void)arg;
}

/* Workers at nice 10: the generator (nice 0) then preempts them when its next arrival is due. */
static void
skew_nice(void *arg)
{
	(void)arg;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10))
		perror("pel-bench: setpriority");
}

/* Sleep until @p t (pel_now_ns()), the last 20 us spinning. */
static void
skew_wait(uint64_t t)
{
	uint64_t now = pel_now_ns();

	if (now + 30000 < t) {
		struct timespec ts = { 0, (long)(t - now - 20000) };

		nanosleep(&ts, NULL);
	}
	while (pel_now_ns() < t)
		pel_bench_relax();
}

enum skew_mode { HASH, P2C, STEAL };

static double
skew_run(const char *cpus, enum skew_mode mode, struct req *req, const uint64_t *gap,
	 const unsigned *key, double *p50, double *p99_sent)
{
	struct pel_runtime *rt = NULL;
	struct pel_producer *p = NULL;
	struct pel_config cfg;
	struct pel_group g;
	double *soj = malloc(SKEW_N * sizeof(double));
	uint64_t t;
	int err;

	pel_config_default(&cfg);
	cfg.cpus = cpus;
	/* PARK: on two CPUs the generator needs one whenever a worker is idle */
	cfg.idle = getenv("PEL_BENCH_SKEW_BACKOFF") ? PEL_IDLE_BACKOFF : PEL_IDLE_PARK;
	cfg.log = pel_bench_log_once;
	cfg.flags = mode == STEAL ? PEL_F_STEAL : 0;
	err = pel_create(&cfg, &rt);
	if (!err)
		err = pel_par_enable(rt, 0);
	if (!err)
		err = pel_set_placement(rt, PEL_PLACE_P2C);
	if (!err)
		err = pel_producer_open(rt, &p);
	if (!err && mode == STEAL)
		err = pel_group_init_producer(&g, p, skew_done, NULL, 0);
	if (err || !soj) {
		fprintf(stderr, "pel-bench: parallel: %s\n", pel_last_error());
		exit(1);
	}
	for (unsigned w = 0; w < pel_worker_count(rt); w++)
		pel_submit(p, w, skew_nice, NULL);
	pel_drain(rt, -1);
	t = pel_now_ns() + 1000000;
	for (unsigned i = 0; i < SKEW_N; i++) {
		t += gap[i];
		req[i] = (struct req){ t, 0 };
	}
	for (unsigned i = 0; i < SKEW_N; i++) {
		skew_wait(req[i].planned);
		req[i].sent = pel_now_ns();
		do {
			if (mode == HASH)
				err = pel_submit(p, key[i], serve, &req[i]);
			else if (mode == P2C)
				err = pel_submit_any(p, serve, &req[i]);
			else
				err = pel_group_spawn(&g, key[i], serve, &req[i]);
		} while (err == -EAGAIN);
	}
	if (mode == STEAL)
		pel_group_close(&g);
	pel_drain(rt, -1);
	/* from the submit too: when the generator falls behind its schedule (a shared host;
	 * PEL_BENCH_SKEW_DEBUG=1 prints its lag), the two differ */
	for (unsigned i = 0; i < SKEW_N; i++)
		soj[i] = (double)(int64_t)(req[i].done - req[i].sent);
	*p99_sent = pct(soj, SKEW_N, 0.99);
	for (unsigned i = 0; i < SKEW_N; i++)
		soj[i] = (double)(int64_t)(req[i].done - req[i].planned);
	t = (uint64_t)pct(soj, SKEW_N, 0.99);
	*p50 = pct(soj, SKEW_N, 0.5);
	if (getenv("PEL_BENCH_SKEW_DEBUG")) {
		for (unsigned i = 0; i < SKEW_N; i++)
			soj[i] = (double)(int64_t)(req[i].sent - req[i].planned);
		printf("  mode %d: generator lag p50 %.0f ns p99 %.0f ns; span planned %.1f ms, "
		       "sent %.1f ms\n", mode, pct(soj, SKEW_N, 0.5), pct(soj, SKEW_N, 0.99),
		       (double)(req[SKEW_N - 1].planned - req[0].planned) / 1e6,
		       (double)(req[SKEW_N - 1].sent - req[0].sent) / 1e6);
		for (unsigned w = 0; w < 2; w++) {
			unsigned n = 0;

			for (unsigned i = 0; i < SKEW_N; i++)
				if (key[i] == w)
					soj[n++] = (double)(int64_t)(req[i].done - req[i].sent);
			printf("    key %u: %u requests, sojourn p50 %.0f p90 %.0f\n", w, n,
			       pct(soj, n, 0.5), pct(soj, n, 0.9));
		}
	}
	pel_producer_close(p);
	pel_destroy(rt);
	free(soj);
	return (double)t;
}

static int
skew(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	static const char *const label[] = { "fixed hash", "pel_submit_any P2C",
					     "hash + PEL_F_STEAL" };
	static const char *const key_name[] = { "hash", "p2c", "steal" };
	unsigned reps = o->reps ? o->reps : 5;
	struct req *req = calloc(SKEW_N, sizeof(*req));
	uint64_t *gap = malloc(SKEW_N * sizeof(*gap));
	unsigned *key = malloc(SKEW_N * sizeof(*key));
	double *p99[3], *p50[3], *pl[3], fig[3], fig50[3], figpl[3];
	double mean_gap = SKEW_SERVICE / (2 * SKEW_LOAD);
	uint64_t x = 88172645463325252ull;
	char cpus[32], name[64];

	snprintf(cpus, sizeof(cpus), "%d,%d", o->cpu_a < o->cpu_b ? o->cpu_a : o->cpu_b,
		 o->cpu_a < o->cpu_b ? o->cpu_b : o->cpu_a);
	for (unsigned i = 0; i < SKEW_N; i++) {
		double u;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		u = (double)(x >> 11) / 9007199254740992.0;
		gap[i] = (uint64_t)(-log(1 - u) * mean_gap);
		key[i] = (double)((x >> 3) & 1023) / 1024 < SKEW_HOT ? 0 : 1;
	}
	for (int k = 0; k < 3; k++) {
		p99[k] = calloc(reps, sizeof(double));
		p50[k] = calloc(reps, sizeof(double));
		pl[k] = calloc(reps, sizeof(double));
	}
	printf("skew cpus=%s requests=%u service=%u ns load=%.0f%% of 2 workers, %.0f%% of keys "
	       "on worker 0; sojourn = done - planned arrival; workers at nice 10\n", cpus, SKEW_N,
	       SKEW_SERVICE, SKEW_LOAD * 100, SKEW_HOT * 100);
	for (unsigned r = 0; r < reps; r++) {
		for (int k = 0; k < 3; k++) {
			p99[k][r] = skew_run(cpus, (enum skew_mode)k, req, gap, key, &p50[k][r],
					     &pl[k][r]);
			pel_bench_rest(SKEW_N * (uint64_t)mean_gap);
		}
	}
	for (int k = 0; k < 3; k++) {
		fig[k] = pct(p99[k], reps, 0.5);
		fig50[k] = pct(p50[k], reps, 0.5);
		figpl[k] = pct(pl[k], reps, 0.5);
		printf("%-26s sojourn p50 %9.0f ns p99 %9.0f ns; p99 from the submit %9.0f ns "
		       "(medians of %u runs)\n", label[k], fig50[k], fig[k], figpl[k], reps);
		snprintf(name, sizeof(name), "skew_%s_p99_from_submit", key_name[k]);
		pel_bench_metric(rep, name, figpl[k], "ns");
		snprintf(name, sizeof(name), "skew_%s_p99", key_name[k]);
		pel_bench_metric(rep, name, fig[k], "ns");
		snprintf(name, sizeof(name), "skew_%s_p50", key_name[k]);
		pel_bench_metric(rep, name, fig50[k], "ns");
		free(p99[k]);
		free(p50[k]);
		free(pl[k]);
	}
	printf("ratio    p99_p2c_vs_hash   %.2f (lower is better)\n", fig[1] / fig[0]);
	printf("ratio    p99_steal_vs_hash %.2f (lower is better)\n", fig[2] / fig[0]);
	pel_bench_ratio(rep, "p99_p2c_vs_hash", fig[1] / fig[0]);
	pel_bench_ratio(rep, "p99_steal_vs_hash", fig[2] / fig[0]);
	free(req);
	free(gap);
	free(key);
	return 0;
}

int
pel_bench_parallel(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	if (forkjoin(o, rep))
		return 1;
	return skew(o, rep);
}
