/* SPDX-License-Identifier: MIT */
/*
 * bench/pool.c - "pel-bench pool": what an alloc+free pair costs, in ns, for 64-byte objects.
 *
 * Three allocators, each on CPU B, in the same run and with the same loops:
 *   baseline  glibc malloc/free, on this thread
 *   peer      DPDK rte_mempool (4095 objects, per-lcore cache of 256), on this thread, which
 *             rte_eal_init() made the EAL main lcore on B; get/put, and get_bulk/put_bulk for
 *             bursts (left out with a note when DPDK is not built in or the EAL cannot start)
 *   pel       a pel_pool (4096 objects per worker) of a runtime with one PEL_IDLE_PARK worker on
 *             B; one task submitted to it runs the timed loop, so every call is on the owner's
 *             fast path
 * Modes: single (alloc one, free it), burst32 (alloc 32, free the 32), and for pel batch128
 * (alloc 128, free them) as the like-for-like reference of the remote cycle:
 *   pel remote  a runtime with workers 0 on A and 1 on B; worker 0 allocates 128 objects and
 *               spawns a task on worker 1 carrying their array; worker 1 frees all 128 (remote
 *               frees: chained per owner, pushed every 32) and spawns a task back on worker 0,
 *               which allocates the next 128 (refilling its cache from its shared stack), and so
 *               on. Worker 0 reads the clock at the start of the first timed cycle and after the
 *               last: the time per object covers the whole cycle, handoffs included.
 * Every run first does an eighth of its pairs untimed (warm-up). Every allocation is checked
 * (a NULL, a failed get, or pel_pool_stats() counts that disagree with the loop are a
 * correctness failure: exit 1); the figures are never checked. Each row runs --reps times,
 * interleaved, and the median is printed; after each run the program rests (pel_bench_rest()).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pel/pel.h>

#include "bench.h"

#ifdef PEL_BENCH_HAVE_DPDK
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#endif

#define OBJ_SIZE		64
#define PER_WORKER		4096u		/* pel: objects per worker's slab */
#define RTE_OBJS		4095u		/* rte_mempool: 2^q - 1 is its best size */
#define RTE_CACHE		256u		/* per-lcore cache (RTE_MEMPOOL_CACHE_MAX_SIZE 512) */
#define BATCH			128u		/* the remote cycle's batch, and the local reference */
#define DEFAULT_PAIRS		4000000ull
#define DEFAULT_REPS		5
#define DRAIN_NS		(60 * PEL_NS_PER_S)

#if defined(__GNUC__)
#define always_inline		inline __attribute__((always_inline))
#else
#define always_inline		inline
#endif

/* Make @p p used, so no compiler drops an allocation whose object nobody touches. */
#define escape(p)		__asm__ __volatile__("" : : "r"(p) : "memory")

enum alloc {
	A_MALLOC,
	A_RTE,
	A_PEL,
	A_PEL_BULK,	/* pel, bursts with pel_alloc_bulk()/pel_free_bulk() */
};

enum mode {
	M_SINGLE,
	M_BURST,
	M_BATCH,
	M_COUNT,
};

static const char *const mode_name[M_COUNT] = { "single", "burst32", "batch128" };
static const unsigned mode_n[M_COUNT] = { 1, PEL_BENCH_BURST, BATCH };

enum row {
	R_MALLOC_SINGLE,
	R_RTE_SINGLE,
	R_PEL_SINGLE,
	R_MALLOC_BURST,
	R_RTE_BURST,
	R_PEL_BURST,
	R_PEL_BURST_CALLS,
	R_PEL_BATCH,
	R_REMOTE_BATCH,
	R_COUNT,
};

static const struct {
	enum alloc alloc;
	enum mode mode;
	bool remote;
	const char *role;
	const char *label;
	const char *name;		/* in metric names */
} rows[R_COUNT] = {
	[R_MALLOC_SINGLE] = { A_MALLOC, M_SINGLE, false, "baseline", "glibc malloc", "malloc" },
	[R_RTE_SINGLE] = { A_RTE, M_SINGLE, false, "peer", "rte_mempool", "rte_mempool" },
	[R_PEL_SINGLE] = { A_PEL, M_SINGLE, false, "pel", "pel local", "pel_local" },
	[R_MALLOC_BURST] = { A_MALLOC, M_BURST, false, "baseline", "glibc malloc", "malloc" },
	[R_RTE_BURST] = { A_RTE, M_BURST, false, "peer", "rte_mempool", "rte_mempool" },
	[R_PEL_BURST] = { A_PEL_BULK, M_BURST, false, "pel", "pel local bulk", "pel_local" },
	[R_PEL_BURST_CALLS] = { A_PEL, M_BURST, false, "pel", "pel local 1by1", "pel_calls" },
	[R_PEL_BATCH] = { A_PEL, M_BATCH, false, "pel", "pel local", "pel_local" },
	[R_REMOTE_BATCH] = { A_PEL, M_BATCH, true, "pel", "pel remote", "pel_remote" },
};

/* One timed loop: what it allocates from, how, how much; what it saw. */
struct job {
	enum mode mode;
	bool bulk;			/* pel: the bulk calls */
	uint64_t warm;			/* pairs before the clock starts */
	uint64_t pairs;			/* pairs timed; a multiple of the mode's n */
	struct pel_pool *pool;
#ifdef PEL_BENCH_HAVE_DPDK
	struct rte_mempool *mp;
#endif
	uint64_t ns;			/* time of the timed pairs */
	uint64_t nulls;			/* allocations that failed, warm-up included */
	uint64_t alloc_ns;		/* pel remote: of ns, worker 0's allocation loops */
	uint64_t free_ns;		/* pel remote: of ns, worker 1's free loops */
};

static always_inline void *
get_one(struct job *j, enum alloc k)
{
	switch (k) {
	case A_MALLOC:
		return malloc(OBJ_SIZE);
	case A_PEL:
	case A_PEL_BULK:
		return pel_alloc(j->pool);
	case A_RTE:
#ifdef PEL_BENCH_HAVE_DPDK
		{
			void *p;

			return rte_mempool_get(j->mp, &p) ? NULL : p;
		}
#endif
	default:
		return NULL;
	}
}

static always_inline void
put_one(struct job *j, enum alloc k, void *p)
{
	switch (k) {
	case A_MALLOC:
		free(p);
		break;
	case A_PEL:
	case A_PEL_BULK:
		pel_free(j->pool, p);
		break;
	case A_RTE:
#ifdef PEL_BENCH_HAVE_DPDK
		if (p)
			rte_mempool_put(j->mp, p);
#endif
		break;
	default:
		break;
	}
}

/* @p pairs alloc+free pairs, @p n objects at a time; returns the NULLs seen. */
static always_inline uint64_t
pairs_loop(struct job *j, enum alloc k, unsigned n, uint64_t pairs)
{
	void *obj[BATCH];
	uint64_t nulls = 0;

	if (n == 1) {
		for (uint64_t i = 0; i < pairs; i++) {
			void *p = get_one(j, k);

			nulls += !p;
			escape(p);
			put_one(j, k, p);
		}
		return nulls;
	}
	for (uint64_t i = 0; i < pairs; i += n) {
		if (k == A_PEL_BULK) {
			/* all or nothing */
			if (pel_alloc_bulk(j->pool, obj, n)) {
				nulls += n;
				continue;
			}
			escape(obj);
			pel_free_bulk(j->pool, obj, n);
			continue;
		}
#ifdef PEL_BENCH_HAVE_DPDK
		if (k == A_RTE) {
			/* all or nothing */
			if (rte_mempool_get_bulk(j->mp, obj, n)) {
				nulls += n;
				continue;
			}
			escape(obj);
			rte_mempool_put_bulk(j->mp, obj, n);
			continue;
		}
#endif
		for (unsigned m = 0; m < n; m++) {
			obj[m] = get_one(j, k);
			nulls += !obj[m];
		}
		escape(obj);
		for (unsigned m = 0; m < n; m++)
			put_one(j, k, obj[m]);
	}
	return nulls;
}

/* Warm up, then time j->pairs pairs. */
static always_inline void
timed(struct job *j, enum alloc k)
{
	unsigned n = mode_n[j->mode];
	uint64_t t0;

	j->nulls = pairs_loop(j, k, n, j->warm);
	t0 = pel_bench_mono_ns();
	j->nulls += pairs_loop(j, k, n, j->pairs);
	j->ns = pel_bench_mono_ns() - t0;
}

/* The loops, specialised per allocator so each one's calls are inlined. */
static void timed_malloc(struct job *j) { timed(j, A_MALLOC); }
static void timed_pel(struct job *j) { timed(j, A_PEL); }
static void timed_pel_bulk(struct job *j) { timed(j, A_PEL_BULK); }
#ifdef PEL_BENCH_HAVE_DPDK
static void timed_rte(struct job *j) { timed(j, A_RTE); }
#endif

/* The task the pel worker runs: the whole timed loop. */
static void
pel_local_task(void *arg)
{
	struct job *j = arg;

	if (j->bulk)
		timed_pel_bulk(j);
	else
		timed_pel(j);
}

/* ---- the remote cycle ---- */

/* Worker 0's fields, worker 1's and the handed-over array on separate lines: no false sharing. */
struct remote {
	struct pel_pool *pool;
	uint64_t cycles;		/* done so far */
	uint64_t warm;			/* cycles before the clock starts */
	uint64_t total;			/* warm + timed */
	uint64_t t0;
	uint64_t t1;
	uint64_t alloc_ns;		/* timed cycles: worker 0's pel_alloc() loops */
	uint64_t nulls;
	int err;			/* a pel_spawn() that failed */
	alignas(128) uint64_t free_ns;	/* timed cycles: worker 1's pel_free() loops */
	alignas(128) void *obj[BATCH];	/* the batch, handed over outside the timed loops */
};

static void remote_free(void *arg);

/* On worker 0: stop, or allocate a batch and hand it to worker 1. */
static void
remote_alloc(void *arg)
{
	struct remote *r = arg;
	uint64_t t = pel_bench_mono_ns();
	int err;

	if (r->cycles == r->warm)
		r->t0 = t;
	if (r->cycles == r->total) {
		r->t1 = t;
		return;
	}
	r->cycles++;
	{
		void *mine[BATCH];	/* timed: pel_alloc() into this core's own array */

		for (unsigned m = 0; m < BATCH; m++) {
			mine[m] = pel_alloc(r->pool);
			r->nulls += !mine[m];
		}
		if (r->cycles > r->warm)
			r->alloc_ns += pel_bench_mono_ns() - t;
		memcpy(r->obj, mine, sizeof(mine));	/* the handover, untimed */
	}
	while ((err = pel_spawn(1, remote_free, r)) == -EAGAIN)
		pel_bench_relax();
	if (err)
		r->err = err;
}

/* On worker 1: free the batch (remote frees to worker 0's slab), hand the turn back. */
static void
remote_free(void *arg)
{
	struct remote *r = arg;
	void *mine[BATCH];
	uint64_t t;
	int err;

	memcpy(mine, r->obj, sizeof(mine));	/* the handover, untimed */
	t = pel_bench_mono_ns();
	for (unsigned m = 0; m < BATCH; m++)
		pel_free(r->pool, mine[m]);
	if (r->cycles > r->warm)
		r->free_ns += pel_bench_mono_ns() - t;
	while ((err = pel_spawn(0, remote_alloc, r)) == -EAGAIN)
		pel_bench_relax();
	if (err)
		r->err = err;
}

/* ---- runs ---- */

struct suite {
	int cpu_a;
	int cpu_b;
	uint64_t pairs;			/* per run, each row */
	bool rte;			/* the EAL is up and the mempool made */
	uint64_t remote_objs;		/* pel remote, every rep: objects timed */
	uint64_t remote_ns;		/* their time */
	uint64_t remote_alloc_ns;	/* of which worker 0 allocating */
	uint64_t remote_free_ns;	/* and worker 1 freeing */
#ifdef PEL_BENCH_HAVE_DPDK
	struct rte_mempool *mp;
#endif
};

/* pel's log lines to stderr, each distinct line once: every run creates a runtime. */
static int
pin_or_say(int cpu)
{
	int err = pel_bench_pin(cpu);

	if (err)
		fprintf(stderr, "pel-bench: cannot pin to CPU %d: %s\n", cpu, strerror(err));
	return err ? 1 : 0;
}

/* A runtime on @p cpus, @p nworkers workers, and a pool of it. 0, or 1 after saying why. */
static int
pel_up(const char *cpus, unsigned nworkers, enum pel_idle idle, struct pel_runtime **rt,
       struct pel_pool **pool)
{
	int err;

	if (pel_bench_runtime(cpus, idle, 0, rt))
		return 1;
	if (pel_worker_count(*rt) != nworkers) {
		fprintf(stderr, "pel-bench: pel_create(cpus \"%s\"): %u workers, not %u\n", cpus,
			pel_worker_count(*rt), nworkers);
		pel_destroy(*rt);
		return 1;
	}
	err = pel_pool_create(*rt, OBJ_SIZE, PER_WORKER, 0, pool);
	if (err) {
		fprintf(stderr, "pel-bench: pel_pool_create(%d, %u): %s: %s\n", OBJ_SIZE,
			PER_WORKER, pel_strerror(err), pel_last_error());
		pel_destroy(*rt);
		return 1;
	}
	return 0;
}

/* pel_pool_stats() of @p worker must show these counts; 0, or 1 after saying why. */
static int
check_stats(struct pel_pool *pool, unsigned worker, uint64_t allocs, uint64_t frees,
	    uint64_t remote_frees, const char *what)
{
	struct pel_pool_stats st;

	if (pel_pool_stats(pool, worker, &st)) {
		fprintf(stderr, "pel-bench: pool: %s: pel_pool_stats(%u): %s\n", what, worker,
			pel_last_error());
		return 1;
	}
	if (st.allocs != allocs || st.frees != frees || st.remote_frees != remote_frees ||
	    st.failures) {
		fprintf(stderr, "pel-bench: pool: %s: worker %u's slab counted allocs=%llu "
			"frees=%llu remote_frees=%llu failures=%llu, the loop did %llu, %llu, %llu, "
			"0\n", what, worker, (unsigned long long)st.allocs,
			(unsigned long long)st.frees, (unsigned long long)st.remote_frees,
			(unsigned long long)st.failures, (unsigned long long)allocs,
			(unsigned long long)frees, (unsigned long long)remote_frees);
		return 1;
	}
	return 0;
}

/* pel local: one task on the one worker (CPU B) runs the loop. */
static int
run_pel_local(const struct suite *s, struct job *j)
{
	struct pel_runtime *rt;
	struct pel_producer *p = NULL;
	char cpus[16];
	uint64_t total = j->warm + j->pairs;
	int err, ret = 1;

	snprintf(cpus, sizeof(cpus), "%d", s->cpu_b);
	if (pel_up(cpus, 1, PEL_IDLE_PARK, &rt, &j->pool))
		return 1;
	err = pel_producer_open(rt, &p);
	if (!err)
		err = pel_submit(p, 0, pel_local_task, j);
	if (!err)
		err = pel_drain(rt, DRAIN_NS);
	if (err) {
		fprintf(stderr, "pel-bench: pool: pel local %s: %s: %s\n", mode_name[j->mode],
			pel_strerror(err), pel_last_error());
		goto out;
	}
	if (check_stats(j->pool, 0, total, total, 0, "pel local"))
		goto out;
	ret = 0;
out:
	pel_producer_close(p);
	pel_pool_destroy(j->pool);
	pel_destroy(rt);
	j->pool = NULL;
	return ret;
}

/* pel remote: batches cycle between worker 0 (A) and worker 1 (B). */
static int
run_pel_remote(const struct suite *s, struct job *j)
{
	static struct remote r;
	struct pel_runtime *rt;
	struct pel_producer *p = NULL;
	char cpus[32];
	uint64_t objs;
	int err, ret = 1;

	snprintf(cpus, sizeof(cpus), "%d,%d", s->cpu_a, s->cpu_b);
	/* BACKOFF: a worker waiting for the next batch polls (20 us) instead of parking */
	if (pel_up(cpus, 2, PEL_IDLE_BACKOFF, &rt, &r.pool))
		return 1;
	memset(r.obj, 0, sizeof(r.obj));
	r.cycles = 0;
	r.warm = j->warm / BATCH;
	r.total = r.warm + j->pairs / BATCH;
	r.t0 = r.t1 = 0;
	r.alloc_ns = r.free_ns = 0;
	r.nulls = 0;
	r.err = 0;
	err = pel_producer_open(rt, &p);
	if (!err)
		err = pel_submit(p, 0, remote_alloc, &r);
	if (!err)
		err = pel_drain(rt, DRAIN_NS);
	if (!err)
		err = r.err;
	if (err) {
		fprintf(stderr, "pel-bench: pool: pel remote: %s: %s\n", pel_strerror(err),
			pel_last_error());
		goto out;
	}
	objs = r.total * BATCH;
	if (r.cycles != r.total || !r.t1) {
		fprintf(stderr, "pel-bench: pool: pel remote: %llu cycles of %llu ran\n",
			(unsigned long long)r.cycles, (unsigned long long)r.total);
		goto out;
	}
	if (check_stats(r.pool, 0, objs, 0, objs, "pel remote") ||
	    check_stats(r.pool, 1, 0, 0, 0, "pel remote"))
		goto out;
	j->ns = r.t1 - r.t0;
	j->alloc_ns = r.alloc_ns;
	j->free_ns = r.free_ns;
	j->nulls = r.nulls;
	ret = 0;
out:
	pel_producer_close(p);
	pel_pool_destroy(r.pool);
	pel_destroy(rt);
	r.pool = NULL;
	return ret;
}

/* One run of @p row; @p ns_per_pair receives its figure. 0, or 1 after saying why. */
static int
run_one(struct suite *s, enum row row, double *ns_per_pair)
{
	struct job j = { 0 };
	unsigned n = mode_n[rows[row].mode];
	int err = 0;

	j.mode = rows[row].mode;
	j.bulk = rows[row].alloc == A_PEL_BULK;
	j.pairs = s->pairs / n * n;
	j.warm = s->pairs / 8 / n * n;
	if (rows[row].alloc == A_PEL || rows[row].alloc == A_PEL_BULK) {
		/* this thread sleeps in pel_drain() meanwhile; off B, out of the worker's way */
		if (pin_or_say(s->cpu_a))
			return 1;
		err = rows[row].remote ? run_pel_remote(s, &j) : run_pel_local(s, &j);
		/* back on B, the EAL main lcore's CPU, for malloc and rte_mempool */
		if (pin_or_say(s->cpu_b) || err)
			return 1;
	} else if (rows[row].alloc == A_MALLOC) {
		timed_malloc(&j);
	} else {
#ifdef PEL_BENCH_HAVE_DPDK
		j.mp = s->mp;
		timed_rte(&j);
#endif
	}
	if (j.nulls) {
		fprintf(stderr, "pel-bench: pool: %s %s: %llu allocations of %llu failed\n",
			rows[row].label, mode_name[j.mode], (unsigned long long)j.nulls,
			(unsigned long long)(j.warm + j.pairs));
		return 1;
	}
	*ns_per_pair = (double)j.ns / (double)j.pairs;
	if (rows[row].remote)	/* pel's own calls: the alloc on the owner + the remote free */
		*ns_per_pair = (double)(j.alloc_ns + j.free_ns) / (double)j.pairs;
	if (rows[row].remote) {
		s->remote_objs += j.pairs;
		s->remote_ns += j.ns;
		s->remote_alloc_ns += j.alloc_ns;
		s->remote_free_ns += j.free_ns;
	}
	pel_bench_rest(j.ns);
	return 0;
}

/* ---- DPDK ---- */

#ifdef PEL_BENCH_HAVE_DPDK
/* Start the EAL with one lcore, B, this thread; make the mempool. false, with a note, if not. */
static bool
rte_up(struct suite *s)
{
	char lcores[16];
	char *argv[] = {
		"pel-bench", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
		"--file-prefix=pel-bench", "--log-level=error", "-l", lcores, NULL,
	};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

	snprintf(lcores, sizeof(lcores), "%d", s->cpu_b);
	fflush(stdout);
	if (rte_eal_init(argc, argv) < 0) {
		printf("note: rte_eal_init() failed (%s): no rte_mempool rows or ratios\n",
		       rte_strerror(rte_errno));
		return false;
	}
	if (rte_lcore_id() == LCORE_ID_ANY) {
		printf("note: this thread is no EAL lcore: no rte_mempool rows or ratios\n");
		rte_eal_cleanup();
		return false;
	}
	s->mp = rte_mempool_create("pelb", RTE_OBJS, OBJ_SIZE, RTE_CACHE, 0, NULL, NULL, NULL,
				   NULL, SOCKET_ID_ANY, 0);
	if (!s->mp) {
		printf("note: rte_mempool_create() failed (%s): no rte_mempool rows or ratios\n",
		       rte_strerror(rte_errno));
		rte_eal_cleanup();
		return false;
	}
	return true;
}

static void
rte_down(struct suite *s)
{
	rte_mempool_free(s->mp);
	rte_eal_cleanup();
}
#endif

/* ---- the suite ---- */

static void
ratio(struct pel_bench_report *rep, const char *label, enum mode m, double x, const char *name)
{
	printf("%-9s %-15s %-8s ns/pair x=%.2f (%s, lower is better)\n", "ratio", label,
	       mode_name[m], x, name);
	pel_bench_ratio(rep, name, x);
}

int
pel_bench_pool(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	struct suite s = { 0 };
	struct pel_bench_figure fig[R_COUNT];
	unsigned reps = o->reps ? o->reps : DEFAULT_REPS, r, k;
	double *v;
	char name[64];
	int ret = 1;

	s.cpu_a = o->cpu_a;
	s.cpu_b = o->cpu_b;
	s.pairs = o->items ? o->items : DEFAULT_PAIRS;
	if (s.pairs < 8 * BATCH) {
		fprintf(stderr, "pel-bench: pool: --items %llu: under %u\n",
			(unsigned long long)s.pairs, 8 * BATCH);
		return 1;
	}
	if (pin_or_say(s.cpu_b))
		return 1;

	printf("pool cpus=%d,%d obj=%d per_worker=%u burst=%u batch=%u pairs=%llu reps=%u\n",
	       s.cpu_a, s.cpu_b, OBJ_SIZE, PER_WORKER, PEL_BENCH_BURST, BATCH,
	       (unsigned long long)s.pairs, reps);
#ifdef PEL_BENCH_HAVE_DPDK
	s.rte = rte_up(&s);
#else
	printf("note: built without DPDK: no rte_mempool rows or ratios\n");
#endif
	printf("note: ns per alloc+free pair, median of %u interleaved runs; all on CPU %d but "
	       "pel remote\n", reps, s.cpu_b);
	printf("note: pel remote: worker 0 on CPU %d allocates %u, worker 1 on CPU %d frees them, "
	       "handoffs by pel_spawn; the row times pel's calls (pel_alloc on the owner + "
	       "pel_free on the other worker), the cycle is below\n", s.cpu_a, BATCH, s.cpu_b);
#ifdef PEL_BENCH_HAVE_DPDK
	if (s.rte)
		printf("note: rte_mempool: %u objects, cache %u, EAL main lcore %u; burst32 is "
		       "get_bulk/put_bulk\n", RTE_OBJS, RTE_CACHE, rte_lcore_id());
	printf("note: pel burst32: \"bulk\" is pel_alloc_bulk/pel_free_bulk, \"1by1\" 32 "
	       "pel_alloc then 32 pel_free\n");
#endif
	fflush(stdout);

	v = calloc((size_t)R_COUNT * reps, sizeof(*v));
	if (!v) {
		pel_bench_perror("calloc", ENOMEM);
		goto out;
	}
	for (r = 0; r < reps; r++) {
		for (k = 0; k < R_COUNT; k++) {
			if (rows[k].alloc == A_RTE && !s.rte)
				continue;
			if (run_one(&s, k, &v[k * reps + r]))
				goto out_free;
		}
	}
	for (k = 0; k < R_COUNT; k++) {
		if (rows[k].alloc == A_RTE && !s.rte)
			continue;
		fig[k] = pel_bench_summarise(&v[k * reps], reps);
		printf("%-9s %-15s %-8s ns/pair median=%-6.2f min=%-6.2f max=%-6.2f Mpair/s=%.1f\n",
		       rows[k].role, rows[k].label, mode_name[rows[k].mode], fig[k].median,
		       fig[k].min, fig[k].max, 1e3 / fig[k].median);
		snprintf(name, sizeof(name), "%s_%s_ns_per_pair", rows[k].name,
			 mode_name[rows[k].mode]);
		pel_bench_metric(rep, name, fig[k].median, "ns");
	}
	if (s.rte)
		ratio(rep, "pel/rte_mempool", M_SINGLE,
		      fig[R_PEL_SINGLE].median / fig[R_RTE_SINGLE].median,
		      "local_pair_vs_rte_mempool");
	ratio(rep, "pel/malloc", M_SINGLE, fig[R_PEL_SINGLE].median / fig[R_MALLOC_SINGLE].median,
	      "local_pair_vs_malloc");
	if (s.rte)
		ratio(rep, "pel/rte_mempool", M_BURST,
		      fig[R_PEL_BURST].median / fig[R_RTE_BURST].median,
		      "local_burst_vs_rte_mempool");
	ratio(rep, "pel/malloc", M_BURST, fig[R_PEL_BURST].median / fig[R_MALLOC_BURST].median,
	      "local_burst_vs_malloc");
	ratio(rep, "bulk/1by1", M_BURST, fig[R_PEL_BURST].median / fig[R_PEL_BURST_CALLS].median,
	      "local_burst_bulk_vs_calls");
	ratio(rep, "remote/local", M_BATCH, fig[R_REMOTE_BATCH].median / fig[R_PEL_BATCH].median,
	      "remote_vs_local");
	{
		double n = (double)s.remote_objs;

		printf("note: pel remote, the whole cycle in ns per object over all runs: %.2f = "
		       "worker 0 in pel_alloc %.2f + worker 1 in pel_free %.2f + handing the "
		       "batch over and back %.2f\n", (double)s.remote_ns / n,
		       (double)s.remote_alloc_ns / n, (double)s.remote_free_ns / n,
		       (double)(s.remote_ns - s.remote_alloc_ns - s.remote_free_ns) / n);
	}
	ret = 0;
out_free:
	free(v);
out:
#ifdef PEL_BENCH_HAVE_DPDK
	if (s.rte)
		rte_down(&s);
#endif
	return ret;
}
