/* SPDX-License-Identifier: MIT */
/*
 * sched/runtime.c - pel_create/pel_destroy, producers, submit, spawn, stats.
 *
 * Memory: each worker maps its own inbound rings (nworkers mesh rings, then max_producers producer
 * rings) from its own thread, so the pages come from its NUMA node. A producer handle's ring to
 * worker w is w's inbound ring nworkers + handle id; worker i's mesh ring to worker j is j's
 * inbound ring i. Every ring has one producer thread and one consumer thread at a time.
 */
#include <errno.h>
#include <limits.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "stamps.h"
#include "trace/trace.h"

/* CPUs busy-polled by live runtimes of this process (PEL_IDLE_SPIN without PEL_F_SHARE_CPUS). */
static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;
static cpu_set_t claimed_cpus;

static int
claim_cpus(struct pel_runtime *rt)
{
	struct pel__plan *pl = rt->plan;
	cpu_set_t both;
	int err = 0;

	if (!pl->busy || (pl->cfg.flags & PEL_F_SHARE_CPUS))
		return 0;
	pthread_mutex_lock(&claim_lock);
	CPU_AND(&both, &claimed_cpus, &pl->workers);
	if (CPU_COUNT(&both)) {
		char s[256];

		err = pel__fail(-EBUSY, "cpus %s are already busy-polled by another pel runtime in "
				"this process; two spinning workers on one CPU starve each other (set "
				"PEL_F_SHARE_CPUS to allow it)",
				pel__topo_format_cpus(&both, s, sizeof(s)));
	} else {
		CPU_OR(&claimed_cpus, &claimed_cpus, &pl->workers);
		rt->claimed = true;
	}
	pthread_mutex_unlock(&claim_lock);
	return err;
}

static void
unclaim_cpus(struct pel_runtime *rt)
{
	cpu_set_t keep;

	if (!rt->claimed)
		return;
	pthread_mutex_lock(&claim_lock);
	CPU_XOR(&keep, &claimed_cpus, &rt->plan->workers);
	CPU_AND(&claimed_cpus, &claimed_cpus, &keep);
	pthread_mutex_unlock(&claim_lock);
	rt->claimed = false;
}

static void
warn_host(struct pel_runtime *rt)
{
	struct pel__plan *pl = rt->plan;
	char s[256];

	if (pl->poll_some && CPU_COUNT(&pl->not_isolated)) {
		pel__topo_format_cpus(&pl->not_isolated, s, sizeof(s));
		pel__log(rt->log, rt->log_arg, PEL_LOG_WARNING,
			 "workers poll on cpus %s, which are not isolated: the kernel will run other "
			 "threads and interrupts there. Boot with isolcpus=managed_irq,domain,%s "
			 "nohz_full=%s rcu_nocbs=%s", s, s, s, s);
	}
	if (pl->cfg.rt_priority > 0 && pl->rt_runtime_us != -1 && pl->rt_runtime_us != LONG_MIN)
		pel__log(rt->log, rt->log_arg, PEL_LOG_WARNING,
			 "sched_rt_runtime_us is %ld, not -1: the kernel throttles SCHED_FIFO threads "
			 "and a busy worker will stall for up to %ld ms of every second; run: sysctl "
			 "-w kernel.sched_rt_runtime_us=-1", pl->rt_runtime_us,
			 (1000000 - pl->rt_runtime_us) / 1000);
}

/*
 * What is left once the workers are gone: the runtime struct (stopping) and the handle table.
 * Open handles keep them alive, so a submit on a handle after pel_destroy() reads -ESHUTDOWN from
 * live memory; the last of pel_destroy() and pel_producer_close() frees them.
 */
static void
release_table(struct pel_runtime *rt)
{
	/* acq_rel: pairs with the other holders' decrements; their last uses happen before the free */
	if (atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < rt->nlayers; i++)
		if (rt->layer[i].ops->release)
			rt->layer[i].ops->release(rt->layer[i].state);
	pthread_mutex_destroy(&rt->layer_lock);
	free(rt->producers);
	free(rt);
}

/* Everything but the table: workers, rings, layers, plan. */
/* Each worker's NUMA node (layers bind its memory there), and SMT siblings among pollers. */
static void
apply_topology(struct pel_runtime *rt)
{
	struct pel__plan *pl = rt->plan;
	struct pel__topo *topo = malloc(sizeof(*topo));
	int pairs[4][2];
	unsigned n;

	for (unsigned i = 0; i < rt->nworkers; i++)
		rt->workers[i]->node = -1;
	if (!topo || pel__topo_load(pl->root, topo)) {
		pel__log(rt->log, rt->log_arg, PEL_LOG_INFO,
			 "cannot read the CPU topology (%s); worker memory is not placed by NUMA node",
			 topo ? pel_last_error() : "out of memory");
		free(topo);
		return;
	}
	for (unsigned i = 0; i < rt->nworkers; i++)
		rt->workers[i]->node = pel__topo_cpu_node(topo, rt->workers[i]->cpu);
	n = pl->poll_some ? pel__topo_smt_pairs(topo, &pl->workers, pairs, 4) : 0;
	if (n)
		pel__log(rt->log, rt->log_arg, PEL_LOG_WARNING,
			 "%u pair%s of polling workers are SMT siblings of one core (cpus %d and %d%s): "
			 "each gets about half the core. Use one CPU per core, or PEL_IDLE_PARK", n,
			 n > 1 ? "s" : "", pairs[0][0], pairs[0][1], n > 1 ? ", ..." : "");
	free(topo);
}

static void
free_runtime(struct pel_runtime *rt)
{
	if (rt->workers) {
		for (unsigned i = 0; i < rt->nworkers; i++) {
			struct pel_worker *w = rt->workers[i];

			if (!w)
				continue;
			if (w->mem) {
				if (rt->plan->cfg.flags & PEL_F_MLOCK)
					munlock(w, sizeof(*w));
				munmap(w->mem, w->mem_len);
			}
			free(w->in);
			free(w->mesh_out);
			free(w);
		}
		free(rt->workers);
	}
	if (rt->producers) {
		for (unsigned i = 0; i < rt->nslots; i++) {
			free(rt->producers[i].ring);
			rt->producers[i].ring = NULL;
		}
	}
	unclaim_cpus(rt);
	pthread_mutex_destroy(&rt->start_lock);
	pthread_mutex_destroy(&rt->own_lock);
	pthread_mutex_destroy(&rt->drain_lock);
	pthread_cond_destroy(&rt->start_cond);
	free(rt->drain_scratch);
	free(rt->plan);
	rt->plan = NULL;
}

static void *
zalloc_aligned(size_t n)
{
	void *p = aligned_alloc(PEL_CACHE_GUARD,
				(n + PEL_CACHE_GUARD - 1) & ~(size_t)(PEL_CACHE_GUARD - 1));

	if (p)
		memset(p, 0, n);
	return p;
}

static int
alloc_runtime(struct pel_runtime *rt)
{
	unsigned n = rt->nworkers, nrings = n + rt->nslots;

	rt->drain_scratch = calloc((size_t)n * nrings, sizeof(*rt->drain_scratch));
	rt->workers = calloc(n, sizeof(*rt->workers));
	rt->producers = zalloc_aligned((size_t)rt->nslots * sizeof(*rt->producers));
	if (!rt->workers || !rt->producers || !rt->drain_scratch)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct pel_worker *w = zalloc_aligned(sizeof(*w));

		if (!w)
			return -ENOMEM;
		rt->workers[i] = w;
		w->rt = rt;
		w->id = i;
		w->cpu = rt->plan->cpu[i];
		w->in = calloc(nrings, sizeof(*w->in));
		w->mesh_out = calloc(n, sizeof(*w->mesh_out));
		if (!w->in || !w->mesh_out)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < rt->nslots; i++) {
		struct pel_producer *p = &rt->producers[i];

		p->rt = rt;
		p->id = i;
		p->nworkers = n;
		p->ring = calloc(n, sizeof(*p->ring));
		if (!p->ring)
			return -ENOMEM;
	}
	return 0;
}

static void
wire_rings(struct pel_runtime *rt)
{
	unsigned n = rt->nworkers;

	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			rt->workers[i]->mesh_out[j] = rt->workers[j]->in[i];
	for (unsigned p = 0; p < rt->nslots; p++)
		for (unsigned j = 0; j < n; j++)
			rt->producers[p].ring[j] = rt->workers[j]->in[n + p];
}

/* Start the threads; every worker sets itself up and reports before any runs a task. */
static int
start_workers(struct pel_runtime *rt)
{
	unsigned started = 0;
	int err = 0;

	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct pel_worker *w = rt->workers[i];
		pthread_attr_t attr;
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(w->cpu, &one);
		pthread_attr_init(&attr);
		err = -pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		if (!err)
			err = -pthread_create(&w->thread, &attr, pel__worker_main, w);
		pthread_attr_destroy(&attr);
		if (err) {
			err = pel__fail(err, "cannot start worker %u pinned to cpu %d: %s", i, w->cpu,
					strerror(-err));
			break;
		}
		started++;
	}
	pthread_mutex_lock(&rt->start_lock);
	while (rt->nstarted < started)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	for (unsigned i = 0; !err && i < started; i++)
		if (rt->workers[i]->start_err)
			err = pel__fail(rt->workers[i]->start_err, "%s", rt->workers[i]->start_msg);
	if (!err)
		wire_rings(rt);
	/* the unlock below publishes the wiring to the workers */
	rt->go = !err;
	rt->abort = !!err;
	pthread_cond_broadcast(&rt->start_cond);
	pthread_mutex_unlock(&rt->start_lock);
	if (err)
		for (unsigned i = 0; i < started; i++)
			pthread_join(rt->workers[i]->thread, NULL);
	return err;
}

/* Layers every runtime starts with (pel__autostart_register()), newest first. */
static struct pel__autostart *autostarts;
static pthread_mutex_t autostart_lock = PTHREAD_MUTEX_INITIALIZER;

void
pel__autostart_register(struct pel__autostart *a)
{
	pthread_mutex_lock(&autostart_lock);
	a->next = autostarts;
	autostarts = a;
	pthread_mutex_unlock(&autostart_lock);
}

/* The workers run: start the layers every runtime has. One that cannot start is logged, and its
 * calls say so (-ENODEV, with the reason); the runtime stands without it. */
static void
start_layers(struct pel_runtime *rt)
{
	pthread_mutex_lock(&autostart_lock);
	for (struct pel__autostart *a = autostarts; a; a = a->next) {
		int err = a->start(rt);

		if (err)
			pel__rt_log(rt, PEL_LOG_WARNING, "the %s layer did not start: %s", a->name,
				    pel_last_error());
	}
	pthread_mutex_unlock(&autostart_lock);
}

int
pel_create(const struct pel_config *cfg, struct pel_runtime **out)
{
	struct pel_runtime *rt;
	struct pel__plan *plan;
	int err;

	if (!out)
		return pel__fail(-EINVAL, "out pointer is NULL: pass the address of a "
				 "struct pel_runtime *");
	*out = NULL;
	plan = malloc(sizeof(*plan));
	if (!plan)
		return pel__fail(-ENOMEM, "out of memory for the runtime's plan");
	err = pel__config_resolve(cfg, plan);
	if (err) {
		free(plan);
		return err;
	}
	rt = zalloc_aligned(sizeof(*rt));
	if (!rt) {
		free(plan);
		return pel__fail(-ENOMEM, "out of memory for the runtime");
	}
	rt->plan = plan;
	rt->nworkers = plan->nworkers;
	rt->slots = plan->cfg.ring_slots;
	rt->max_producers = plan->cfg.max_producers;
	rt->nslots = rt->max_producers + 1;	/* slot 0 is the runtime's own */
	atomic_init(&rt->producer_hwm, 1);	/* slot 0 is always scanned */
	atomic_init(&rt->refs, 1);		/* pel_destroy's */
	pthread_mutex_init(&rt->own_lock, NULL);
	pthread_mutex_init(&rt->drain_lock, NULL);
	pthread_mutex_init(&rt->layer_lock, NULL);
	rt->idle = plan->cfg.idle;
	/* a SPIN worker never parks: its producers skip the wake check and its fence */
	rt->may_park = rt->idle != PEL_IDLE_SPIN;
	rt->log = plan->cfg.log;
	rt->log_arg = plan->cfg.log_arg;
	pthread_mutex_init(&rt->start_lock, NULL);
	pthread_cond_init(&rt->start_cond, NULL);
	pel__clock_init();
	pel__barrier_init();
	rt->spin_cycles = pel__ns_to_cycles(plan->cfg.idle_spin_ns);
	rt->park_cycles = pel__ns_to_cycles(plan->cfg.idle_park_ns);

	err = claim_cpus(rt);
	if (err)
		goto out_free;
	if (alloc_runtime(rt)) {
		err = pel__fail(-ENOMEM, "out of memory for %u workers and %u producer handles",
				rt->nworkers, rt->max_producers);
		goto out_free;
	}
	warn_host(rt);
	apply_topology(rt);
	err = start_workers(rt);
	if (err)
		goto out_free;
	start_layers(rt);
	*out = rt;
	return 0;

out_free:
	free_runtime(rt);
	release_table(rt);
	return err;
}

unsigned
pel_worker_count(const struct pel_runtime *rt)
{
	return rt ? rt->nworkers : 0;
}

int
pel_worker_cpu(const struct pel_runtime *rt, unsigned worker)
{
	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	if (worker >= rt->nworkers)
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, rt->nworkers);
	return rt->workers[worker]->cpu;
}

int
pel_producer_open(struct pel_runtime *rt, struct pel_producer **out)
{
	if (!out)
		return pel__fail(-EINVAL, "out pointer is NULL");
	*out = NULL;
	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	/* acquire: pairs with the store of stopping in pel_destroy(); an early refusal only, the
	 * Dekker in producer_enter() is what keeps a submit from racing destroy */
	if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	for (unsigned i = 1; i < rt->nslots; i++) {
		struct pel_producer *p = &rt->producers[i];
		uint32_t free_slot = 0;
		uint32_t hwm;

		/* acq_rel: pairs with the release in pel_producer_close(); the previous owner's
		 * ring state (tail, cached head) is visible to us */
		if (!atomic_compare_exchange_strong_explicit(&p->in_use, &free_slot, 1,
							     memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		hwm = atomic_load_explicit(&rt->producer_hwm, memory_order_relaxed);
		/* release: pairs with the workers' acquire; they scan rings below hwm */
		while (hwm < i + 1 &&
		       !atomic_compare_exchange_weak_explicit(&rt->producer_hwm, &hwm, i + 1,
							      memory_order_release,
							      memory_order_relaxed))
			;
		atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
		*out = p;
		return 0;
	}
	return pel__fail(-EMFILE, "all %u producer handles are open (max_producers = %u): close "
			 "one with pel_producer_close() or raise max_producers", rt->max_producers,
			 rt->max_producers);
}

void
pel_producer_close(struct pel_producer *p)
{
	if (!p)
		return;
	if (!atomic_load_explicit(&p->in_use, memory_order_relaxed))
		return;	/* closed already: nothing to hand on */
	/* release: pairs with the acquire in pel_producer_open(); hands the rings on */
	atomic_store_explicit(&p->in_use, 0, memory_order_release);
	release_table(p->rt);
}

/* Dekker with pel_destroy(): mark ourselves active before reading stopping. */
static inline bool
producer_enter(struct pel_producer *p)
{
	atomic_store_explicit(&p->active, 1, memory_order_relaxed);
	/* compiler barrier (a fence in the fallback): pairs with pel__barrier_heavy() in
	 * pel_destroy(), whose membarrier orders our active store before our stopping load */
	pel__barrier_light();
	if (pel_likely(!atomic_load_explicit(&p->rt->stopping, memory_order_relaxed)))
		return true;
	atomic_store_explicit(&p->active, 0, memory_order_release);
	return false;
}

static inline void
producer_leave(struct pel_producer *p)
{
	/* release: pairs with the acquire in pel_destroy(); our push is visible to it */
	atomic_store_explicit(&p->active, 0, memory_order_release);
}

/* A handle that is NULL or closed is refused; its slot may belong to another thread by now. */
static inline int
producer_check(const struct pel_producer *p)
{
	if (pel_unlikely(!p))
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_PRODUCER, 0, 0);
	if (pel_unlikely(!atomic_load_explicit(&p->in_use, memory_order_relaxed)))
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_PRODUCER, 1, 0);
	return 0;
}

int
pel_submit(struct pel_producer *p, unsigned worker, pel_task_fn fn, void *arg)
{
	int err = producer_check(p);

	if (pel_unlikely(err))
		return err;
	if (pel_unlikely(worker >= p->nworkers))
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, p->nworkers);
	if (pel_unlikely(!pel__ring_fn_ok(fn)))
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_FN, worker, 0);
	if (pel_unlikely(!producer_enter(p)))
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	if (pel_likely(pel__stamp_push(p->ring[worker], p->rt->slots, NULL, 1)))
		err = pel_ring_push(p->ring[worker], fn, arg);
	else
		err = -EAGAIN;	/* recording, and no room when it stamped: as full */
	if (pel_likely(!err)) {
		/* the position it took: tail was advanced by one */
		pel__trace(submit, worker, p->id,
			   atomic_load_explicit(&p->ring[worker]->prod.tail, memory_order_relaxed) - 1);
		if (p->rt->may_park)
			pel__wake(p->rt->workers[worker]);	/* before leaving: rt stays alive */
	}
	producer_leave(p);
	if (pel_unlikely(err)) {
		pel__trace(ring_full, worker, p->id);
		return pel__fail_lazy(-EAGAIN, PEL__LAZY_RING_FULL, worker, p->rt->slots);
	}
	return 0;
}

unsigned
pel_submit_burst(struct pel_producer *p, unsigned worker, const struct pel_task *t, unsigned n)
{
	unsigned done;

	if (pel_unlikely(producer_check(p)))
		return 0;
	if (pel_unlikely(worker >= p->nworkers)) {
		pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, p->nworkers);
		return 0;
	}
	if (pel_unlikely(n == 0))
		return 0;
	if (pel_unlikely(!t)) {
		pel__fail(-EINVAL, "task array is NULL");
		return 0;
	}
	if (pel_unlikely(!producer_enter(p))) {
		pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
		return 0;
	}
	if (pel_unlikely(pel__trace_on(submit))) {
		uint64_t tail = atomic_load_explicit(&p->ring[worker]->prod.tail,
						     memory_order_relaxed);
		unsigned k = pel__stamp_push(p->ring[worker], p->rt->slots, t, n);

		done = k ? pel_ring_push_burst(p->ring[worker], t, k) : 0;
		for (unsigned i = 0; i < done; i++)
			pel__trace(submit, worker, p->id, tail + i);
	} else {
		unsigned k = pel__stamp_push(p->ring[worker], p->rt->slots, t, n);

		done = k ? pel_ring_push_burst(p->ring[worker], t, k) : 0;
	}
	if (pel_likely(done) && p->rt->may_park)
		pel__wake(p->rt->workers[worker]);
	producer_leave(p);
	if (pel_unlikely(done < n))
		pel__trace(ring_full, worker, p->id);
	if (pel_unlikely(done < n)) {
		if (!pel__ring_fn_ok(t[done].fn))
			pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_FN, worker, 0);
		else
			pel__fail_lazy(-EAGAIN, PEL__LAZY_RING_FULL, worker, p->rt->slots);
	}
	return done;
}

int
pel_spawn(unsigned worker, pel_task_fn fn, void *arg)
{
	struct pel_worker *w = pel__self;
	struct pel_runtime *rt;
	uint64_t s;

	if (pel_unlikely(!w))
		return pel__fail_lazy(-EPERM, PEL__LAZY_NOT_TASK, 0, 0);
	rt = w->rt;
	if (pel_unlikely(worker >= rt->nworkers))
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, rt->nworkers);
	if (pel_unlikely(!pel__ring_fn_ok(fn)))
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_FN, worker, 0);
	if (pel_unlikely(!pel__stamp_push(w->mesh_out[worker], rt->slots, NULL, 1) ||
			 pel_ring_push(w->mesh_out[worker], fn, arg))) {
		pel__trace(ring_full, worker, PEL__TRACE_SRC_WORKER + w->id);
		return pel__fail_lazy(-EAGAIN, PEL__LAZY_RING_FULL, worker, rt->slots);
	}
	pel__trace(spawn, worker, PEL__TRACE_SRC_WORKER + w->id,
		   atomic_load_explicit(&w->mesh_out[worker]->prod.tail, memory_order_relaxed) - 1);
	s = atomic_load_explicit(&w->stats.spawns, memory_order_relaxed);
	atomic_store_explicit(&w->stats.spawns, s + 1, memory_order_relaxed);
	if (worker != w->id && rt->may_park)
		pel__wake(rt->workers[worker]);
	return 0;
}

int
pel_worker_self(void)
{
	return pel__self ? (int)pel__self->id : -1;
}

int
pel_stats(const struct pel_runtime *rt, unsigned worker, struct pel_worker_stats *out)
{
	struct pel_worker *w;

	if (!rt || !out)
		return pel__fail(-EINVAL, "%s is NULL", rt ? "stats pointer" : "runtime");
	if (worker >= rt->nworkers)
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, rt->nworkers);
	w = rt->workers[worker];
	memset(out, 0, sizeof(*out));
	out->tasks_run = atomic_load_explicit(&w->stats.tasks_run, memory_order_relaxed);
	out->idle_loops = atomic_load_explicit(&w->stats.idle_loops, memory_order_relaxed);
	out->parks = atomic_load_explicit(&w->stats.parks, memory_order_relaxed);
	out->busy_ns = atomic_load_explicit(&w->stats.busy_ns, memory_order_relaxed);
	out->idle_ns = atomic_load_explicit(&w->stats.idle_ns, memory_order_relaxed);
	out->spawns = atomic_load_explicit(&w->stats.spawns, memory_order_relaxed);
	out->wakeups = atomic_load_explicit(&w->wakeups, memory_order_relaxed);
	for (unsigned r = 0; r < rt->nworkers + rt->nslots; r++)
		out->ring_full += pel_ring_full_count(w->in[r]);
	out->cpu = w->cpu;
	return 0;
}

int
pel_drain(struct pel_runtime *rt, int64_t timeout_ns)
{
	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	if (pel__self)
		return pel__fail(-EDEADLK, "pel_drain() called from a task on worker %u: it would "
				 "wait for itself", pel__self->id);
	return pel__drain(rt, timeout_ns);
}

static bool
layers_busy(struct pel_runtime *rt)
{
	bool busy = false;

	pthread_mutex_lock(&rt->layer_lock);
	for (unsigned i = 0; !busy && i < rt->nlayers; i++)
		if (rt->layer[i].ops->busy)
			busy = rt->layer[i].ops->busy(rt, rt->layer[i].state);
	pthread_mutex_unlock(&rt->layer_lock);
	return busy;
}

/*
 * pel_destroy()'s drain: the rings quiescent and no layer busy, checked in that order after the
 * layers said idle (a layer's last callback may have spawned tasks; they are in the rings by then).
 */
static void
drain_all(struct pel_runtime *rt)
{
	uint64_t nap = 0;

	for (;;) {
		pel__drain(rt, -1);
		if (layers_busy(rt)) {
			/* a layer's poller winds it down once it sees stopping: a worker parked in
			 * a layer's sleep (I/O) is woken to look (stopping was stored before) */
			for (unsigned i = 0; i < rt->nworkers; i++)
				pel__wake_force(rt->workers[i]);
		} else {
			bool quiet;

			pthread_mutex_lock(&rt->drain_lock);
			quiet = pel__quiescent(rt);
			pthread_mutex_unlock(&rt->drain_lock);
			if (quiet)
				return;
		}
		pel__nap(&nap, 0);
	}
}

/* Every layer reclaims what it holds; a layer call that holds the lock finishes first. */
static void
stop_layers(struct pel_runtime *rt)
{
	pthread_mutex_lock(&rt->layer_lock);
	/* lock-free lookups (pel__layer_find()) find nothing from here: the states go */
	atomic_store_explicit(&rt->nlayers_pub, 0, memory_order_release);
	for (unsigned i = rt->nlayers; i-- > 0;)
		if (rt->layer[i].ops->stop)
			rt->layer[i].ops->stop(rt, rt->layer[i].state);
	rt->layers_stopped = true;	/* entries stay: release() runs at the last ref */
	pthread_mutex_unlock(&rt->layer_lock);
}

void
pel_destroy(struct pel_runtime *rt)
{
	if (!rt)
		return;
	if (pel__self) {
		pel__log(rt->log, rt->log_arg, PEL_LOG_ERROR,
			 "pel_destroy() called from a task on worker %u: it would wait for itself; "
			 "nothing was done. Call it from a thread that is not a worker", pel__self->id);
		return;
	}
	atomic_store_explicit(&rt->stopping, 1, memory_order_seq_cst);
	/* membarrier (a fence in the fallback): pairs with pel__barrier_light() in
	 * producer_enter(); stopping before reading active, on every CPU. Once per runtime: the
	 * only membarrier pel makes. */
	pel__barrier_heavy();
	for (unsigned i = 0; i < rt->nslots; i++) {
		/* acquire: pairs with producer_leave(); the producer's push is visible */
		while (atomic_load_explicit(&rt->producers[i].active, memory_order_acquire))
			sched_yield();
	}
	/* No producer can push now; only running tasks (and layers' callbacks) can spawn. Run
	 * everything, until no layer has work in flight that could bring more. */
	drain_all(rt);
	atomic_store_explicit(&rt->exit, 1, memory_order_seq_cst);
	/* seq_cst fence: pairs with pel__fence() in park(); exit before reading parked (in
	 * pel__wake_force()), so a worker about to sleep sees exit or is woken */
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned i = 0; i < rt->nworkers; i++)
		pel__wake_force(rt->workers[i]);
	for (unsigned i = 0; i < rt->nworkers; i++)
		pthread_join(rt->workers[i]->thread, NULL);
	stop_layers(rt);
	free_runtime(rt);
	release_table(rt);
}

/* ---- the runtime's own producer slot ---- */

struct each {
	void (*fn)(unsigned worker, void *arg);
	void *arg;
	_Atomic unsigned done;
};

static void
each_task(void *arg)
{
	struct each *e = arg;

	e->fn((unsigned)pel__self->id, e->arg);
	/* release: pairs with the acquire below; what fn did is visible to the caller */
	atomic_fetch_add_explicit(&e->done, 1, memory_order_release);
}

int
pel__run_on_each_worker(struct pel_runtime *rt, void (*fn)(unsigned worker, void *arg), void *arg)
{
	struct pel_producer *p = &rt->producers[0];
	struct each e = { .fn = fn, .arg = arg };
	int err = 0;

	if (pel__self)
		return pel__fail(-EDEADLK, "called from a task on worker %u: it would wait for itself",
				 pel__self->id);
	pthread_mutex_lock(&rt->own_lock);
	/* the lock hands slot 0 from caller to caller; workers always scan it */
	atomic_store_explicit(&p->in_use, 1, memory_order_relaxed);
	for (unsigned w = 0; w < rt->nworkers; w++) {
		while ((err = pel_submit(p, w, each_task, &e)) == -EAGAIN)
			sched_yield();
		if (err) {
			/* stopping: wait for those queued, then report */
			while (atomic_load_explicit(&e.done, memory_order_acquire) < w)
				sched_yield();
			break;
		}
	}
	if (!err) {
		uint64_t nap = 0;

		/* acquire: pairs with the release in each_task(); what fn did is visible */
		while (atomic_load_explicit(&e.done, memory_order_acquire) < rt->nworkers)
			pel__nap(&nap, 0);
	}
	atomic_store_explicit(&p->in_use, 0, memory_order_relaxed);
	pthread_mutex_unlock(&rt->own_lock);
	return err;
}

/* ---- what layers read of the runtime (sched/layer.h) ---- */

void
pel__rt_log(const struct pel_runtime *rt, enum pel_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pel__logv(rt->log, rt->log_arg, level, fmt, ap);
	va_end(ap);
}

unsigned
pel__rt_flags(const struct pel_runtime *rt)
{
	return rt->plan->cfg.flags;
}

enum pel_idle
pel__rt_idle(const struct pel_runtime *rt)
{
	return rt->idle;
}

unsigned
pel__rt_producer_slots(const struct pel_runtime *rt)
{
	return rt->nslots;
}

unsigned
pel__producer_slot(const struct pel_producer *p)
{
	return p->id;
}

int
pel__worker_node(const struct pel_runtime *rt, unsigned w)
{
	return w < rt->nworkers ? rt->workers[w]->node : -1;
}

void
pel__worker_wake(struct pel_runtime *rt, unsigned w)
{
	pel__wake(rt->workers[w]);
}

bool
pel__rt_stopping(const struct pel_runtime *rt)
{
	/* acquire: pairs with the store of stopping in pel_destroy() */
	return atomic_load_explicit(&rt->stopping, memory_order_acquire);
}

void
pel__rt_ref(struct pel_runtime *rt)
{
	atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
}

void
pel__rt_unref(struct pel_runtime *rt)
{
	release_table(rt);
}

bool
pel__layer_lock(struct pel_runtime *rt)
{
	pthread_mutex_lock(&rt->layer_lock);
	/* acquire: pairs with the store of stopping in pel_destroy(), which comes before its
	 * stop_layers() takes this lock; the lock orders layers_stopped */
	return atomic_load_explicit(&rt->stopping, memory_order_acquire) || rt->layers_stopped;
}

int
pel__layer_enter(struct pel_runtime *rt)
{
	if (pel__self)
		return pel__fail(-EDEADLK, "called from a task on worker %u: it sets up every worker "
				 "and waits for them", pel__self->id);
	if (pel__layer_lock(rt)) {
		pthread_mutex_unlock(&rt->layer_lock);
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	}
	return 0;
}

void
pel__layer_leave(struct pel_runtime *rt)
{
	pthread_mutex_unlock(&rt->layer_lock);
}

void *
pel__layer_get(struct pel_runtime *rt, const struct pel__layer_ops *ops)
{
	for (unsigned i = 0; i < rt->nlayers; i++)
		if (rt->layer[i].ops == ops)
			return rt->layer[i].state;
	return NULL;
}

int
pel__layer_add(struct pel_runtime *rt, const struct pel__layer_ops *ops, void *state)
{
	if (pel__layer_get(rt, ops))
		return pel__fail(-EEXIST, "layer %s is set up already", ops->name);
	if (rt->nlayers == PEL__MAX_LAYERS)
		return pel__fail(-ENOSPC, "all %d layer slots are in use", PEL__MAX_LAYERS);
	rt->layer[rt->nlayers].ops = ops;
	rt->layer[rt->nlayers].state = state;
	rt->nlayers++;
	/* release: pairs with the acquire in pel__layer_find(); the entry is written */
	atomic_store_explicit(&rt->nlayers_pub, rt->nlayers, memory_order_release);
	return 0;
}

void *
pel__layer_find(const struct pel_runtime *rt, const struct pel__layer_ops *ops)
{
	/* acquire: pairs with the release in pel__layer_add(); entries below n are written */
	unsigned n = atomic_load_explicit(&rt->nlayers_pub, memory_order_acquire);

	for (unsigned i = 0; i < n; i++)
		if (rt->layer[i].ops == ops)
			return rt->layer[i].state;
	return NULL;
}

struct pel_runtime *
pel__producer_rt(const struct pel_producer *p)
{
	return p->rt;
}

struct pel__beat *
pel__worker_beat(struct pel_runtime *rt, unsigned w)
{
	return &rt->workers[w]->beat;
}

int
pel__producer_enter(struct pel_producer *p)
{
	int err = producer_check(p);

	if (pel_unlikely(err))
		return err;
	if (pel_unlikely(!producer_enter(p)))
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	return 0;
}

void
pel__producer_leave(struct pel_producer *p)
{
	producer_leave(p);
}

int
pel__producer_push(struct pel_producer *p, unsigned worker, pel_task_fn fn, void *arg)
{
	if (pel_unlikely(!pel__stamp_push(p->ring[worker], p->rt->slots, NULL, 1) ||
			 pel_ring_push(p->ring[worker], fn, arg))) {
		pel__trace(ring_full, worker, p->id);
		return pel__fail_lazy(-EAGAIN, PEL__LAZY_RING_FULL, worker, p->rt->slots);
	}
	pel__trace(submit, worker, p->id,
		   atomic_load_explicit(&p->ring[worker]->prod.tail, memory_order_relaxed) - 1);
	if (p->rt->may_park)
		pel__wake(p->rt->workers[worker]);
	return 0;
}

unsigned
pel__producer_backlog(const struct pel_producer *p, unsigned worker)
{
	const struct pel_ring *r = p->ring[worker];
	/* relaxed: our own tail; acquire: pairs with the release of cons.head in
	 * pel_ring_consume(); only an estimate is asked for */
	uint64_t tail = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->cons.head, memory_order_acquire);

	return (unsigned)(tail - head);
}
