/* SPDX-License-Identifier: MIT */
/*
 * par/par.c - parallel work (include/pel/par.h, include/pel/group.h): stealable queues,
 * placement, work stealing, task groups and parallel-for.
 *
 * Each worker has two bounded multi-producer multi-consumer queues of {fn, arg, group} entries
 * (Vyukov's sequence-numbered array: a CAS on the enqueue or dequeue index, a release store of
 * the cell's sequence publishes it):
 *  - pub: stealable tasks (pel_submit_any(), group members, parallel-for halves). Any thread
 *    pushes (a producer, another worker), the owner pops, and with PEL_F_STEAL idle workers pop
 *    too. A Chase-Lev deque would save the owner's CAS but allows only its owner to push; tasks
 *    placed on a worker by others would need a second hop through the ring.
 *  - own: pinned tasks that must run on this worker (a completion whose mesh ring was full).
 * One park-safe poller per worker runs up to BURST entries a pass, own queue first; when it finds
 * none and the runtime has PEL_F_STEAL, it probes the other workers' pub queues, one entry each.
 *
 * Parking: whoever pushes onto worker t's queue wakes t (pel__worker_wake(): a fence and one
 * load unless t is parked). With PEL_F_STEAL, every push that leaves an entry in t's pub queue also
 * wakes one sibling (round robin; a syscall only if it is parked), since t may be busy with any
 * task, a plain one too, which this layer cannot see: an idle worker steals between parks, and a
 * task that would wait rouses one thief per push.
 *
 * Nothing on these paths locks, allocates or makes a syscall but the wakes. The layer counts the
 * entries it accepted (the queues' enqueue indexes) and those that returned (per worker), so
 * pel_drain() and pel_destroy() wait for them as for ring tasks (sched/layer.h, quiet()).
 *
 * This layer depends on sched/layer.h only; sched/ knows nothing of it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <pel/par.h>

#include "sched/layer.h"
#include "trace/trace.h"

#define BURST		32u	/* entries run per pass */
#define DEF_SLOTS	4096u
#define MAX_SLOTS	(1u << 20)
#define NODES		4096u	/* parallel-for nodes per worker */
#define MAX_RT		16u	/* runtimes with parallel work at once */
#define GROUP_MAGIC	0x70617267u	/* "parg" */
#define CLOSED		(1ull << 63)

struct cell {
	_Atomic uint64_t seq;
	pel_task_fn fn;
	void *arg;
	struct pel_group *grp;
};

struct queue {
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t enq;	/* pushers' */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t deq;	/* poppers' */
	alignas(PEL_CACHE_GUARD) uint64_t mask;		/* fixed */
	struct cell *cell;
};

/* A parallel-for node: a join of two halves, or a call's context. Free ones are linked by next. */
struct pnode {
	struct pnode *next;
	unsigned owner;
	union {
		struct {
			struct pnode *parent;	/* NULL: the root, deliver to ctx */
			struct pnode *ctx;
			uint64_t lo, hi;	/* the right half, while it is queued */
			uint64_t part[2];
			_Atomic uint32_t pending;
			unsigned side;		/* which part of parent this one fills */
		} j;
		struct {
			pel_pfor_body body;
			pel_pfor_reduce reduce;
			pel_pfor_done on_done;
			void *arg;
			uint64_t lo, hi, grain, result;
			unsigned home;
		} c;
	};
};

struct par_worker {
	struct queue pub;
	struct queue own;
	/* Written by this worker only; read by placement (running), drain (ran), stats. */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t ran;
	_Atomic uint32_t running;	/* 1 while an entry runs: placement's load */
	_Atomic uint64_t steal_attempts, steal_ok, steal_fail;
	_Atomic uint64_t *stolen;	/* stolen[v]: entries taken from worker v */
	/* Added to by any thread. */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t placed[3];
	_Atomic uint64_t groups_done, queue_full;
	/* Parallel-for nodes freed by other workers: a stack taken whole by the owner. */
	alignas(PEL_CACHE_GUARD) _Atomic(struct pnode *) remote;
	/* The owner's. */
	alignas(PEL_CACHE_GUARD) struct pnode *free;
	struct pnode *nodes;
	struct pel__par *par;
	unsigned id;
	unsigned victim;
	uint64_t ran_local;
};

struct pel__par {
	struct pel_runtime *rt;
	unsigned n;
	unsigned slots;			/* of each worker's queues */
	bool steal;
	bool may_park;			/* not PEL_IDLE_SPIN: a push checks for a parked worker */
	int setup_err;
	alignas(PEL_CACHE_GUARD) _Atomic unsigned policy;
	/* groups opened and closed (a report at destroy) */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t opened, closed;
	struct par_worker *w[];
};

/*
 * Runtimes with parallel work: looked up without a lock by producers (key first, then value);
 * written under registry_lock (enables of different runtimes may race for a slot).
 */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	_Atomic(struct pel_runtime *) rt;
	_Atomic(struct pel__par *) par;
} registry[MAX_RT];

static PEL__TLS struct par_worker *par_self;	/* this worker's, set by install() */
static PEL__TLS struct pel_group *cur_group;	/* the group of the member running, if any */
static PEL__TLS unsigned place_rr;
static PEL__TLS unsigned wake_rr;	/* which sibling a deep push wakes next */
static PEL__TLS uint64_t place_rng;

/* This thread's worker when it is a worker of @p par's runtime, else NULL (a producer thread, or
 * a task of another runtime using a producer handle of this one). */
static inline struct par_worker *
self_in(const struct pel__par *par)
{
	return par_self && par_self->par == par ? par_self : NULL;
}

static struct pel__par *
lookup(const struct pel_runtime *rt)
{
	for (unsigned i = 0; rt && i < MAX_RT; i++)
		/* acquire: pairs with the release in pel_par_enable(); par is set before rt */
		if (atomic_load_explicit(&registry[i].rt, memory_order_acquire) == rt)
			return atomic_load_explicit(&registry[i].par, memory_order_relaxed);
	return NULL;
}

/* ---- the queues ---- */

static int
queue_init(struct queue *q, unsigned slots)
{
	/* aligned_alloc() wants a multiple of the alignment */
	size_t len = (sizeof(*q->cell) * slots + PEL_CACHE_GUARD - 1) & ~(size_t)(PEL_CACHE_GUARD - 1);

	q->cell = aligned_alloc(PEL_CACHE_GUARD, len);
	if (!q->cell)
		return -ENOMEM;
	for (unsigned i = 0; i < slots; i++)
		atomic_init(&q->cell[i].seq, i);
	q->mask = slots - 1;
	atomic_init(&q->enq, 0);
	atomic_init(&q->deq, 0);
	return 0;
}

/* Push one entry. @return 0 (*len: entries queued after it, about); -EAGAIN full. */
static int
queue_push(struct queue *q, pel_task_fn fn, void *arg, struct pel_group *g, uint64_t *len)
{
	uint64_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
	struct cell *c;

	for (;;) {
		uint64_t seq;
		int64_t dif;

		c = &q->cell[pos & q->mask];
		/* acquire: pairs with the release in queue_pop(); the popper has read the cell */
		seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		dif = (int64_t)(seq - pos);
		if (dif == 0) {
			/* relaxed: the cell's seq orders its contents, not enq */
			if (atomic_compare_exchange_weak_explicit(&q->enq, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
		}
	}
	c->fn = fn;
	c->arg = arg;
	c->grp = g;
	/* release: pairs with the acquire in queue_pop(); publishes fn, arg, grp */
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
	if (len) {
		/* later entries may be popped already: no wrap below 0 */
		uint64_t deq = atomic_load_explicit(&q->deq, memory_order_relaxed);

		*len = deq < pos + 1 ? pos + 1 - deq : 0;
	}
	return 0;
}

static bool
queue_pop(struct queue *q, struct cell *out)
{
	uint64_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
	struct cell *c;

	for (;;) {
		uint64_t seq;
		int64_t dif;

		c = &q->cell[pos & q->mask];
		/* acquire: pairs with the release in queue_push(); the cell's contents are there */
		seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&q->deq, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
		}
	}
	out->fn = c->fn;
	out->arg = c->arg;
	out->grp = c->grp;
	/* release: pairs with the acquire in queue_push(); the cell may be written again */
	atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
	return true;
}

static uint64_t
queue_len(struct queue *q)
{
	/* relaxed: an estimate for placement */
	uint64_t e = atomic_load_explicit(&q->enq, memory_order_relaxed);
	uint64_t d = atomic_load_explicit(&q->deq, memory_order_relaxed);

	return e > d ? e - d : 0;
}

static void
bump(_Atomic uint64_t *ctr)
{
	atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
}

/* Single writer: a load and a store, no locked instruction. */
static void
bump_own(_Atomic uint64_t *ctr)
{
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* ---- placement ---- */

static unsigned
load_of(struct pel__par *par, struct pel_producer *p, unsigned w)
{
	struct par_worker *pw = par->w[w];
	unsigned l = (unsigned)queue_len(&pw->pub) +
		     atomic_load_explicit(&pw->running, memory_order_relaxed);

	return p ? l + pel__producer_backlog(p, w) : l;
}

static uint64_t
rng_next(void)
{
	uint64_t x = place_rng;

	if (!x)
		x = (uintptr_t)&place_rng ^ pel__tsc() ^ 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	place_rng = x;
	return x;
}

/* Where the policy puts the next stealable task; counted on that worker. */
static unsigned
place(struct pel__par *par, struct pel_producer *p, int *used)
{
	/* relaxed: a setting, no data hangs on it */
	unsigned policy = atomic_load_explicit(&par->policy, memory_order_relaxed);

	*used = (int)policy;
	unsigned n = par->n, best = 0;

	if (n == 1) {
		best = 0;
	} else if (policy == PEL_PLACE_JSQ) {
		unsigned start = place_rr++ % n, min = UINT32_MAX;

		for (unsigned k = 0; k < n; k++) {
			unsigned w = (start + k) % n, l = load_of(par, p, w);

			if (l < min) {
				min = l;
				best = w;
			}
		}
	} else if (policy == PEL_PLACE_P2C) {
		uint64_t r = rng_next();
		unsigned a = (unsigned)(r % n), b = (unsigned)((r >> 32) % (n - 1));

		b = b >= a ? b + 1 : b;
		best = load_of(par, p, b) < load_of(par, p, a) ? b : a;
	} else {
		best = place_rr++ % n;
	}
	return best;
}

/* ---- pushing and running ---- */

/*
 * Push a stealable entry onto worker @p t's queue and wake whom it needs (the file's comment).
 * The caller is a task of the runtime or inside a producer section.
 */
static int
push_pub(struct pel__par *par, unsigned t, pel_task_fn fn, void *arg, struct pel_group *g,
	 int placed)
{
	struct par_worker *pw = par->w[t], *me = self_in(par);
	uint64_t len;

	if (pel_unlikely(queue_push(&pw->pub, fn, arg, g, &len))) {
		bump(&pw->queue_full);
		return pel__fail(-EAGAIN, "worker %u's stealable queue is full (%llu entries): retry "
				 "when it has run some", t, (unsigned long long)(pw->pub.mask + 1));
	}
	if (placed >= 0)	/* a placement counts once it took */
		bump(&pw->placed[placed]);
	if (!par->may_park)
		return 0;	/* spinning workers need no wake, nor a fence to decide it */
	if (!me || me->id != t)
		pel__worker_wake(par->rt, t);
	/* stealing: the target may be busy with any task (a plain one too, which this layer
	 * cannot see), so one parked sibling is woken to look; a syscall only if it is parked */
	if (par->steal && par->n > 1 && len) {
		unsigned s = wake_rr++ % (par->n - 1);

		s = (t + 1 + s) % par->n;
		if (!me || me->id != s)
			pel__worker_wake(par->rt, s);
	}
	return 0;
}

/*
 * A task that must run on @p home (a completion): the mesh ring from a task, the producer's ring
 * from a producer thread, else home's pinned queue; while both are full, wait for room (cold).
 */
static int
deliver_home(struct pel__par *par, struct pel_producer *p, unsigned home, pel_task_fn fn,
	     void *arg)
{
	struct par_worker *me = self_in(par);

	for (;;) {
		int err = me ? pel_spawn(home, fn, arg) : pel__producer_push(p, home, fn, arg);

		if (!err)
			return 0;
		err = queue_push(&par->w[home]->own, fn, arg, NULL, NULL);
		if (!err) {
			if (par->may_park && (!me || me->id != home))
				pel__worker_wake(par->rt, home);
			return 0;
		}
		if (me && me->id == home) {
			fn(arg);	/* we are home and both full: nobody else can make room */
			return 0;
		}
		pel__cpu_relax();
	}
}

static void group_put(struct pel__par *par, struct pel_group *g, struct pel_producer *p);

static void
run_entry(struct par_worker *pw, struct cell *e)
{
	struct pel_group *outer = cur_group;

	/* relaxed: placement's estimate */
	atomic_store_explicit(&pw->running, 1, memory_order_relaxed);
	cur_group = e->grp;
	e->fn(e->arg);
	cur_group = outer;
	if (e->grp)
		group_put(pw->par, e->grp, NULL);
	atomic_store_explicit(&pw->running, 0, memory_order_relaxed);
	/* release: pairs with the acquire in par_returned(); what the task did (and what it
	 * queued) happens before pel_drain() counts it as returned */
	atomic_store_explicit(&pw->ran, ++pw->ran_local, memory_order_release);
}

/* One pass: steal one entry from the first other worker that has one. */
static int
steal(struct par_worker *pw)
{
	struct pel__par *par = pw->par;
	struct cell e;

	for (unsigned k = 1; k < par->n; k++) {
		unsigned v = (pw->id + pw->victim + k) % par->n;
		struct par_worker *vw = par->w[v];

		if (!queue_len(&vw->pub))
			continue;
		bump_own(&pw->steal_attempts);
		if (queue_pop(&vw->pub, &e)) {
			pel__trace(steal, pw->id, v, 1);
			bump_own(&pw->steal_ok);
			bump_own(&pw->stolen[v]);
			pw->victim = (v + 2 * par->n - pw->id - 1) % par->n;	/* again */
			run_entry(pw, &e);
			return 1;
		}
		pel__trace(steal, pw->id, v, 0);
		bump_own(&pw->steal_fail);
	}
	return 0;
}

static int
par_poll(void *ctx)
{
	struct par_worker *pw = ctx;
	struct cell e;
	int n = 0;

	while (n < (int)BURST && (queue_pop(&pw->own, &e) || queue_pop(&pw->pub, &e))) {
		run_entry(pw, &e);
		n++;
	}
	if (!n && pw->par->steal)
		n = steal(pw);
	return n;
}

/* ---- the layer ---- */

static uint64_t
par_accepted(void *state)
{
	struct pel__par *par = state;
	uint64_t sum = 0;

	for (unsigned i = 0; i < par->n; i++)
		/* acquire: pairs with nothing stronger than the pusher's CAS; read after the
		 * returned counts (par_quiet()) */
		sum += atomic_load_explicit(&par->w[i]->pub.enq, memory_order_acquire) +
		       atomic_load_explicit(&par->w[i]->own.enq, memory_order_acquire);
	return sum;
}

static uint64_t
par_returned(void *state)
{
	struct pel__par *par = state;
	uint64_t sum = 0;

	for (unsigned i = 0; i < par->n; i++)
		/* acquire: pairs with the release in run_entry() */
		sum += atomic_load_explicit(&par->w[i]->ran, memory_order_acquire);
	return sum;
}

/*
 * pel_drain(): no stealable task waits or runs. Returned is read before accepted and every task is
 * counted accepted before it can run, so returned <= accepted at each instant: equal sums read in
 * this order mean none was pending when the first accepted count was read. The stamp grows with
 * every accept and every return (sched/drain.c compares it around the rings' check).
 */
static bool
par_quiet(struct pel_runtime *rt, void *state, uint64_t *stamp)
{
	uint64_t r = par_returned(state), a = par_accepted(state);

	(void)rt;
	*stamp = a + r;
	return a == r;
}

static void
par_free(struct pel__par *par)
{
	for (unsigned i = 0; i < par->n; i++) {
		struct par_worker *pw = par->w[i];

		if (!pw)
			continue;
		free(pw->pub.cell);
		free(pw->own.cell);
		free((void *)pw->stolen);
		free(pw->nodes);
		free(pw);
	}
	free(par);
}

static void
par_stop(struct pel_runtime *rt, void *state)
{
	struct pel__par *par = state;
	uint64_t open = atomic_load(&par->opened) - atomic_load(&par->closed);

	if (open)
		pel__rt_log(rt, PEL_LOG_WARNING, "pel_destroy: %llu task groups were never closed "
			    "(pel_group_close()); their members ran, their on_done did not",
			    (unsigned long long)open);
	pthread_mutex_lock(&registry_lock);
	for (unsigned i = 0; i < MAX_RT; i++)
		if (atomic_load_explicit(&registry[i].rt, memory_order_relaxed) == rt) {
			atomic_store_explicit(&registry[i].rt, NULL, memory_order_relaxed);
			atomic_store_explicit(&registry[i].par, NULL, memory_order_relaxed);
		}
	pthread_mutex_unlock(&registry_lock);
	par_free(par);
}

static const struct pel__layer_ops par_ops = {
	.name = "par",
	.stop = par_stop,
	.quiet = par_quiet,
};

static void
install(unsigned worker, void *arg)
{
	struct pel__par *par = arg;
	int err = pel__poller_add(par_poll, par->w[worker], PEL__POLL_PARK_OK);

	if (err)
		par->setup_err = err;	/* one writer per worker; read after all returned */
	else
		par_self = par->w[worker];
}

static struct par_worker *
worker_alloc(struct pel__par *par, unsigned id, unsigned slots)
{
	struct par_worker *pw = aligned_alloc(PEL_CACHE_GUARD, sizeof(*pw));

	if (!pw)
		return NULL;
	memset(pw, 0, sizeof(*pw));
	pw->par = par;
	pw->id = id;
	pw->stolen = calloc(par->n, sizeof(*pw->stolen));
	pw->nodes = calloc(NODES, sizeof(*pw->nodes));
	if (!pw->stolen || !pw->nodes || queue_init(&pw->pub, slots) ||
	    queue_init(&pw->own, slots)) {
		free(pw->pub.cell);
		free((void *)pw->stolen);
		free(pw->nodes);
		free(pw);
		return NULL;
	}
	for (unsigned i = 0; i < NODES; i++) {
		pw->nodes[i].owner = id;
		pw->nodes[i].next = i + 1 < NODES ? &pw->nodes[i + 1] : NULL;
	}
	pw->free = pw->nodes;
	return pw;
}

int
pel_par_enable(struct pel_runtime *rt, unsigned queue_slots)
{
	struct pel__par *par;
	unsigned n, slot = MAX_RT;
	int err;

	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	if (queue_slots == 0)
		queue_slots = DEF_SLOTS;
	if (queue_slots < 2 || queue_slots > MAX_SLOTS || (queue_slots & (queue_slots - 1)))
		return pel__fail(-EINVAL, "queue_slots %u is not a power of two in 2 .. %u",
				 queue_slots, MAX_SLOTS);
	err = pel__layer_enter(rt);
	if (err)
		return err;
	if (pel__layer_get(rt, &par_ops)) {
		par = pel__layer_get(rt, &par_ops);
		if (par->setup_err)
			err = pel__fail(par->setup_err, "parallel work could not be set up on every "
					"worker: %s", pel_strerror(par->setup_err));
		else if (queue_slots != par->slots)
			err = pel__fail(-EBUSY, "parallel work is on already, with queues of %u "
					"slots (every runtime starts with it): pass 0 or %u",
					par->slots, par->slots);
		goto out;
	}
	pthread_mutex_lock(&registry_lock);
	for (unsigned i = 0; i < MAX_RT && slot == MAX_RT; i++)
		if (!atomic_load_explicit(&registry[i].rt, memory_order_relaxed) &&
		    !atomic_load_explicit(&registry[i].par, memory_order_relaxed))
			slot = i;
	if (slot < MAX_RT)	/* reserved: par set, rt not yet (lookups skip it) */
		atomic_store_explicit(&registry[slot].par, (struct pel__par *)&registry[slot],
				      memory_order_relaxed);
	pthread_mutex_unlock(&registry_lock);
	if (slot == MAX_RT) {
		err = pel__fail(-ENOSPC, "%u runtimes have parallel work enabled already", MAX_RT);
		goto out;
	}
	n = pel_worker_count(rt);
	par = calloc(1, sizeof(*par) + n * sizeof(par->w[0]));
	if (!par) {
		err = pel__fail(-ENOMEM, "out of memory for parallel work");
		goto out;
	}
	par->rt = rt;
	par->n = n;
	par->slots = queue_slots;
	par->steal = pel__rt_flags(rt) & PEL_F_STEAL;
	par->may_park = pel__rt_idle(rt) != PEL_IDLE_SPIN;
	for (unsigned i = 0; i < n; i++) {
		par->w[i] = worker_alloc(par, i, queue_slots);
		if (!par->w[i]) {
			par_free(par);
			err = pel__fail(-ENOMEM, "out of memory for worker %u's parallel queues", i);
			goto out;
		}
	}
	err = pel__layer_add(rt, &par_ops, par);
	if (err) {
		par_free(par);
		goto out;
	}
	/* registered first: pollers added on some workers point at live state until par_stop() */
	err = pel__run_on_each_worker(rt, install, par);
	if (!err && par->setup_err)
		err = pel__fail(par->setup_err, "cannot add the parallel-work poller to every "
				"worker: %s", pel_strerror(par->setup_err));
	else if (err)
		par->setup_err = err;
	pthread_mutex_lock(&registry_lock);
	if (!err) {
		atomic_store_explicit(&registry[slot].par, par, memory_order_relaxed);
		/* release: pairs with the acquire in lookup(); par is there first */
		atomic_store_explicit(&registry[slot].rt, rt, memory_order_release);
	} else {
		atomic_store_explicit(&registry[slot].par, NULL, memory_order_relaxed);
	}
	pthread_mutex_unlock(&registry_lock);
	slot = MAX_RT;
out:
	if (slot < MAX_RT) {
		pthread_mutex_lock(&registry_lock);
		atomic_store_explicit(&registry[slot].par, NULL, memory_order_relaxed);
		pthread_mutex_unlock(&registry_lock);
	}
	pel__layer_leave(rt);
	return err;
}

/* Every runtime has parallel work from pel_create(), with the default queues. */
static int
par_autostart(struct pel_runtime *rt)
{
	return pel_par_enable(rt, 0);
}

static struct pel__autostart par_start = { .name = "parallel-work", .start = par_autostart };

__attribute__((constructor)) static void
par_register(void)
{
	pel__autostart_register(&par_start);
}

int
pel_set_placement(struct pel_runtime *rt, enum pel_placement policy)
{
	struct pel__par *par = lookup(rt);

	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	if ((unsigned)policy > PEL_PLACE_P2C)
		return pel__fail(-EINVAL, "placement policy %d is none of PEL_PLACE_RR, "
				 "PEL_PLACE_JSQ, PEL_PLACE_P2C", (int)policy);
	if (!par)
		return pel__fail(-ENODEV, "parallel work is not on in this runtime: it did not "
				 "start at pel_create() (logged why); pel_par_enable() retries");
	atomic_store_explicit(&par->policy, (unsigned)policy, memory_order_relaxed);
	return 0;
}

static int
not_enabled(void)
{
	return pel__fail(-ENODEV, "parallel work is not on in this runtime: it did not "
			 "start at pel_create() (logged why); pel_par_enable() retries");
}

int
pel_submit_any(struct pel_producer *p, pel_task_fn fn, void *arg)
{
	struct pel__par *par;
	int err;

	if (pel_unlikely(!fn))
		return pel__fail(-EINVAL, "pel_submit_any: task function is NULL");
	if (par_self && !p) {
		par = par_self->par;
		int pol;
		unsigned w = place(par, NULL, &pol);

		return push_pub(par, w, fn, arg, NULL, pol);
	}
	if (!p && pel_worker_self() >= 0)
		return not_enabled();
	err = pel__producer_enter(p);	/* NULL or closed: -EINVAL */
	if (pel_unlikely(err))
		return err;
	par = lookup(pel__producer_rt(p));
	if (pel_unlikely(!par)) {
		err = not_enabled();
	} else {
		int pol;
		unsigned w = place(par, p, &pol);

		err = push_pub(par, w, fn, arg, NULL, pol);
	}
	pel__producer_leave(p);
	return err;
}

int
pel_par_stats(const struct pel_runtime *rt, unsigned worker, struct pel_par_stats *out)
{
	struct pel__par *par = lookup(rt);
	struct par_worker *pw;

	if (!rt || !out)
		return pel__fail(-EINVAL, "%s is NULL", rt ? "stats pointer" : "runtime");
	if (!par)
		return not_enabled();
	if (worker >= par->n)
		return pel__fail(-EINVAL, "worker %u does not exist (%u workers)", worker, par->n);
	pw = par->w[worker];
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < 3; i++)
		out->placed[i] = atomic_load_explicit(&pw->placed[i], memory_order_relaxed);
	out->tasks_run = atomic_load_explicit(&pw->ran, memory_order_relaxed);
	out->groups_done = atomic_load_explicit(&pw->groups_done, memory_order_relaxed);
	out->steal_attempts = atomic_load_explicit(&pw->steal_attempts, memory_order_relaxed);
	out->steal_successes = atomic_load_explicit(&pw->steal_ok, memory_order_relaxed);
	out->steal_failures = atomic_load_explicit(&pw->steal_fail, memory_order_relaxed);
	out->stolen_by = out->steal_successes;
	for (unsigned t = 0; t < par->n; t++)
		out->stolen_from += atomic_load_explicit(&par->w[t]->stolen[worker],
							 memory_order_relaxed);
	out->queue_full = atomic_load_explicit(&pw->queue_full, memory_order_relaxed);
	return 0;
}

/* ---- task groups ---- */

static bool
group_ok(const struct pel_group *g)
{
	return g && g->magic == GROUP_MAGIC;
}

/*
 * Drop one reference of @p g (a member returned, a spawn undone, the close). The last one queues
 * on_done on its home worker. The group's fields are read before the decrement: once it reaches
 * zero the user may reuse the memory (pel_group_destroy() says so).
 */
static void
group_put(struct pel__par *par, struct pel_group *g, struct pel_producer *p)
{
	pel_task_fn fn = g->on_done;
	void *arg = g->arg;
	unsigned home = g->home;
	uint64_t v;

	/* acq_rel: pairs with the other references' decrements; every member's work happens
	 * before on_done, which the last one queues */
	v = atomic_fetch_sub_explicit(&g->count, 1, memory_order_acq_rel) - 1;
	if (v != CLOSED)
		return;
	bump(self_in(par) ? &par_self->groups_done : &par->w[home]->groups_done);
	pel__trace(group_done, self_in(par) ? (int)par_self->id : -1, home);
	deliver_home(par, p, home, fn, arg);
}

static int
group_open(struct pel_group *g, struct pel__par *par, struct pel_producer *p, pel_task_fn on_done,
	   void *arg, unsigned home)
{
	g->on_done = on_done;
	g->arg = arg;
	g->par = par;
	g->producer = p;
	g->home = home;
	g->magic = GROUP_MAGIC;
	/* relaxed: the group is handed to other threads by the tasks that carry it (a release) */
	atomic_store_explicit(&g->count, 1, memory_order_relaxed);
	bump(&par->opened);
	return 0;
}

int
pel_group_init(struct pel_group *g, pel_task_fn on_done, void *arg, unsigned home)
{
	struct par_worker *me = par_self;

	if (!g || !on_done)
		return pel__fail(-EINVAL, "pel_group_init: %s is NULL", g ? "on_done" : "group");
	if (!me) {
		if (pel_worker_self() >= 0)
			return not_enabled();
		return pel__fail(-EPERM, "pel_group_init() must be called from a task; from a producer "
				 "thread use pel_group_init_producer()");
	}
	if (home == PEL_ANY_WORKER)
		home = me->id;
	if (home >= me->par->n)
		return pel__fail(-EINVAL, "home worker %u does not exist (%u workers)", home,
				 me->par->n);
	return group_open(g, me->par, NULL, on_done, arg, home);
}

int
pel_group_init_producer(struct pel_group *g, struct pel_producer *p, pel_task_fn on_done,
			void *arg, unsigned home)
{
	struct pel__par *par;
	int err;

	if (!g || !on_done)
		return pel__fail(-EINVAL, "pel_group_init_producer: %s is NULL",
				 g ? "on_done" : "group");
	err = pel__producer_enter(p);
	if (err)
		return err;
	par = lookup(pel__producer_rt(p));
	if (!par)
		err = not_enabled();
	else if (home >= par->n)
		err = pel__fail(-EINVAL, "home worker %u does not exist (%u workers)", home, par->n);
	else
		err = group_open(g, par, p, on_done, arg, home);
	pel__producer_leave(p);
	return err;
}

/* Take a reference for a spawn: members of @p g always may, others only while it is open. */
static int
group_get(struct pel_group *g)
{
	uint64_t v;

	if (cur_group == g) {
		/* relaxed: our own member holds a reference, the count cannot reach zero */
		atomic_fetch_add_explicit(&g->count, 1, memory_order_relaxed);
		return 0;
	}
	v = atomic_load_explicit(&g->count, memory_order_relaxed);
	do {
		if (v & CLOSED)
			return pel__fail(-EINVAL, "the group is closed: only its own members may spawn "
					 "into it now");
	} while (!atomic_compare_exchange_weak_explicit(&g->count, &v, v + 1,
							memory_order_relaxed, memory_order_relaxed));
	return 0;
}

int
pel_group_spawn(struct pel_group *g, unsigned worker, pel_task_fn fn, void *arg)
{
	struct pel__par *par;
	struct pel_producer *p = NULL;
	int err;

	if (pel_unlikely(!group_ok(g)))
		return pel__fail(-EINVAL, "pel_group_spawn: group is %s", g ? "not initialised "
				 "(pel_group_init()) or destroyed" : "NULL");
	if (pel_unlikely(!fn))
		return pel__fail(-EINVAL, "pel_group_spawn: task function is NULL");
	par = g->par;		/* compared, not read, until the producer's section holds it */
	if (par_self && !self_in(par))
		return pel__fail(-EINVAL, "the group belongs to another runtime");
	if (!par_self) {
		/* a producer thread: the one that opened the group, through its handle */
		p = g->producer;
		if (!p)
			return pel__fail(-EPERM, "this group was opened in a task; a producer thread "
					 "spawns into groups opened with pel_group_init_producer()");
		err = pel__producer_enter(p);
		if (err)
			return err;	/* stopping: the layer may be gone; nothing of it is read */
	}
	if (pel_unlikely(worker != PEL_ANY_WORKER && worker >= par->n)) {
		err = pel__fail(-EINVAL, "worker %u does not exist (%u workers)", worker, par->n);
		if (p)
			pel__producer_leave(p);
		return err;
	}
	err = group_get(g);
	if (!err) {
		int pol = -1;

		if (worker == PEL_ANY_WORKER)
			worker = place(par, p, &pol);
		err = push_pub(par, worker, fn, arg, g, pol);
		if (err)
			group_put(par, g, p);	/* may complete it, if closed meanwhile */
	}
	if (p)
		pel__producer_leave(p);
	return err;
}

int
pel_group_close(struct pel_group *g)
{
	struct pel__par *par;
	struct pel_producer *p = NULL;
	uint64_t v;
	int err = 0;

	if (!group_ok(g))
		return pel__fail(-EINVAL, "pel_group_close: group is %s", g ? "not initialised or "
				 "destroyed" : "NULL");
	par = g->par;		/* compared, not read, until the producer's section holds it */
	if (par_self && !self_in(par))
		return pel__fail(-EINVAL, "the group belongs to another runtime");
	if (!par_self) {
		p = g->producer;
		if (!p)
			return pel__fail(-EPERM, "this group was opened in a task; close it from a "
					 "task");
		err = pel__producer_enter(p);
		if (err)
			return pel__fail(err, "pel_group_close: the runtime is stopping; the group "
					 "stays open and its on_done will not run");
	}
	v = atomic_load_explicit(&g->count, memory_order_relaxed);
	do {
		if (v & CLOSED) {
			err = pel__fail(-EINVAL, "pel_group_close: the group is closed already");
			break;
		}
		/* the open reference becomes the closed bit: a spawn from outside sees it */
	} while (!atomic_compare_exchange_weak_explicit(&g->count, &v, v | CLOSED,
							memory_order_relaxed, memory_order_relaxed));
	if (!err) {
		bump(&par->closed);
		group_put(par, g, p);
	}
	if (p)
		pel__producer_leave(p);
	return err;
}

int
pel_group_destroy(struct pel_group *g)
{
	uint64_t v;

	if (!group_ok(g))
		return pel__fail(-EINVAL, "pel_group_destroy: group is %s", g ? "not initialised or "
				 "destroyed already" : "NULL");
	/* acquire: pairs with the last group_put(); every member has returned */
	v = atomic_load_explicit(&g->count, memory_order_acquire);
	if (v != CLOSED)
		return pel__fail(-EBUSY, "pel_group_destroy: the group is %s (%llu references)",
				 (v & CLOSED) ? "closed but members still run" : "still open",
				 (unsigned long long)(v & ~CLOSED));
	g->magic = 0;
	return 0;
}

/* ---- parallel-for ---- */

static struct pnode *
node_alloc(struct par_worker *pw)
{
	struct pnode *n = pw->free;

	if (!n) {
		/* acquire: pairs with the release in node_free(); the nodes' links are there */
		n = atomic_exchange_explicit(&pw->remote, NULL, memory_order_acquire);
		if (!n)
			return NULL;
	}
	pw->free = n->next;
	return n;
}

static void
node_free(struct pnode *n)
{
	struct par_worker *me = par_self, *ow = me->par->w[n->owner];

	if (ow == me) {
		n->next = me->free;
		me->free = n;
		return;
	}
	n->next = atomic_load_explicit(&ow->remote, memory_order_relaxed);
	/* release: pairs with the exchange in node_alloc(); n->next is written before */
	while (!atomic_compare_exchange_weak_explicit(&ow->remote, &n->next, n,
						      memory_order_release, memory_order_relaxed))
		;
}

static uint64_t
split_at(uint64_t lo, uint64_t hi, uint64_t grain)
{
	return lo + ((hi - lo) / grain / 2) * grain;
}

/* The same tree, on this worker alone (no node or queue room left). */
static uint64_t
seq_range(struct pnode *ctx, uint64_t lo, uint64_t hi)
{
	uint64_t mid, l;

	if ((hi - lo) / 2 < ctx->c.grain)	/* not n < 2 * grain: that may wrap */
		return ctx->c.body(lo, hi, ctx->c.arg);
	mid = split_at(lo, hi, ctx->c.grain);
	l = seq_range(ctx, lo, mid);
	return ctx->c.reduce(l, seq_range(ctx, mid, hi), ctx->c.arg);
}

static void
pfor_done(void *arg)
{
	struct pnode *ctx = arg;

	ctx->c.on_done(ctx->c.result, ctx->c.arg);
	node_free(ctx);
}

/* Hand partial @p v up the tree from (@p j, @p side); the last of each pair combines. */
static void
complete(struct pnode *ctx, struct pnode *j, unsigned side, uint64_t v)
{
	while (j) {
		struct pnode *up = j->j.parent;
		unsigned upside = j->j.side;

		j->j.part[side] = v;
		/* acq_rel: pairs with the other half's decrement; its part is visible to the last */
		if (atomic_fetch_sub_explicit(&j->j.pending, 1, memory_order_acq_rel) != 1)
			return;
		v = ctx->c.reduce(j->j.part[0], j->j.part[1], ctx->c.arg);
		node_free(j);
		j = up;
		side = upside;
	}
	ctx->c.result = v;
	deliver_home(par_self->par, NULL, ctx->c.home, pfor_done, ctx);
}

static void half_task(void *arg);

/* Run [lo, hi) under (@p parent, @p side): split off right halves as stealable tasks. */
static void
run_range(struct pnode *ctx, uint64_t lo, uint64_t hi, struct pnode *parent, unsigned side)
{
	struct par_worker *me = par_self;
	uint64_t grain = ctx->c.grain;

	while ((hi - lo) / 2 >= grain) {
		uint64_t mid = split_at(lo, hi, grain);
		struct pnode *j = node_alloc(me);

		if (!j) {
			complete(ctx, parent, side, seq_range(ctx, lo, hi));
			return;
		}
		j->j.parent = parent;
		j->j.side = side;
		j->j.ctx = ctx;
		j->j.lo = mid;
		j->j.hi = hi;
		atomic_store_explicit(&j->j.pending, 2, memory_order_relaxed);
		int pol;
		unsigned to = place(me->par, NULL, &pol);

		if (push_pub(me->par, to, half_task, j, NULL, pol)) {
			/* no room: the right half here, as the same tree */
			j->j.part[1] = seq_range(ctx, mid, hi);
			atomic_store_explicit(&j->j.pending, 1, memory_order_relaxed);
		}
		parent = j;
		side = 0;
		hi = mid;
	}
	complete(ctx, parent, side, ctx->c.body(lo, hi, ctx->c.arg));
}

static void
half_task(void *arg)
{
	struct pnode *j = arg;

	run_range(j->j.ctx, j->j.lo, j->j.hi, j, 1);
}

static void
root_task(void *arg)
{
	struct pnode *ctx = arg;

	run_range(ctx, ctx->c.lo, ctx->c.hi, NULL, 0);
}

int
pel_parallel_for(uint64_t lo, uint64_t hi, uint64_t grain, pel_pfor_body body,
		 pel_pfor_reduce reduce, uint64_t identity, pel_pfor_done on_done, void *arg)
{
	struct par_worker *me = par_self;
	struct pnode *ctx;
	int err;

	if (!body || !reduce || !on_done)
		return pel__fail(-EINVAL, "pel_parallel_for: %s is NULL",
				 !body ? "body" : !reduce ? "reduce" : "on_done");
	if (hi < lo)
		return pel__fail(-EINVAL, "pel_parallel_for: hi %llu is below lo %llu (an empty "
				 "range is hi == lo)", (unsigned long long)hi,
				 (unsigned long long)lo);
	if (grain == 0)
		return pel__fail(-EINVAL, "pel_parallel_for: grain is 0 (the smallest chunk is 1)");
	if (!me) {
		if (pel_worker_self() >= 0)
			return not_enabled();
		return pel__fail(-EPERM, "pel_parallel_for() must be called from a task");
	}
	ctx = node_alloc(me);
	if (!ctx)
		return pel__fail(-EAGAIN, "worker %u has all %u parallel-for nodes in use", me->id,
				 NODES);
	ctx->c.body = body;
	ctx->c.reduce = reduce;
	ctx->c.on_done = on_done;
	ctx->c.arg = arg;
	ctx->c.lo = lo;
	ctx->c.hi = hi;
	ctx->c.grain = grain;
	ctx->c.result = identity;
	ctx->c.home = me->id;
	if (hi == lo)
		return deliver_home(me->par, NULL, me->id, pfor_done, ctx);
	err = push_pub(me->par, me->id, root_task, ctx, NULL, -1);
	if (err)
		node_free(ctx);
	return err;
}
