/* SPDX-License-Identifier: MIT */
/*
 * sched/pool.c - NUMA-local fixed-size object pools (include/pel/pool.h).
 *
 * A pool has one slab per worker: count objects of stride bytes, mapped for that pool and worker,
 * bound to the worker's NUMA node and written through at creation. Per slab:
 *  - the owner's cache: a LIFO array of free objects only the owner worker touches (no atomics);
 *  - a shared free stack, lock-free: head = tag << 32 | index, links in a side array next[] (the
 *    pool never writes into an object), a 32-bit tag against ABA. Threads that are not workers
 *    pop from it; the owner refills its cache from it and spills into it; frees from other
 *    threads push onto it.
 * A worker freeing another worker's object adds it to a chain kept per (freeing worker, owner)
 * and pushes the chain with one CAS when it reaches BATCH objects, or at the end of the pass
 * (a park-safe poller), so an object freed remotely is back on its owner within one pass.
 * This layer depends on sched/internal.h only; sched/ knows nothing of it.
 */
#define PEL_POOL_NO_INLINE	/* this file defines the exported pel_alloc() and pel_free() */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pel/pool.h>

#include "internal.h"
#include "trace/trace.h"
#include "pel_config.h"

#if PEL_HAVE_NUMA
#include <numa.h>
#endif

#define CACHE_MAX	256u	/* owner cache capacity (or the slab's count, if smaller) */
#define BATCH		32u	/* remote frees pushed to their owner at once */
#define NIL		UINT32_MAX
#define MAX_POOLS	64u	/* live pools per runtime */
#define HUGE_2M		(2u << 20)

#ifndef NDEBUG
#define POOL_CHECKS 1
#else
#define POOL_CHECKS 0
#endif

struct slab {
	/* The owner's: its cache (read inline by pel_alloc()/pel_free()) and counters. */
	alignas(PEL_CACHE_GUARD) struct pel__pool_cache c;
	_Atomic uint64_t failures, high_water;
	/* The shared free stack. */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t head;
	/* Counters other threads add to. */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t remote_frees, foreign_allocs, foreign_failures;
	_Atomic uint32_t wanted;	/* a non-worker thread found the shared stack empty */
	/* Fixed after creation. */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t *next;		/* shared-stack links, by object index */
	_Atomic uint8_t *live;		/* 1 while allocated (checked builds) */
	void *map;
	size_t map_len;
	int node;
	bool huge;
};

/*
 * The return ring from one worker to another's slab: an SPSC ring of object indexes. The freeing
 * worker pushes (no CAS: one slot store and a release of tail), the owner drains it when its cache
 * runs dry. An index crosses between the cores once; through next[] and the shared stack it
 * crossed twice (the link written by the freer, read by the owner) plus the head's CAS line.
 * When a ring is full (its owner has not needed objects lately) frees fall back to the chains.
 */
#define RET_SLOTS	512u

struct ret_ring {
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t tail;	/* the freer's */
	uint32_t head_cache;
	_Atomic uint64_t pushed;			/* remote frees through this ring */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t head;	/* the owner's */
	alignas(PEL_CACHE_GUARD) uint32_t slot[RET_SLOTS];
};

/* A chain of objects one worker freed to another's slab, not yet pushed. */
struct pend {
	uint32_t first, last, n, pad;	/* 16 bytes: rows are whole PEL_CACHE_GUARD blocks */
};
_Static_assert(PEL_CACHE_GUARD % sizeof(struct pend) == 0, "pend rows must tile guard blocks");

struct pel_pool {
	struct pel__pool_pub pub;	/* first: the inline fast paths read it */
	struct pel__pool_cache **caches;	/* pub.cache */
	struct pel_runtime *rt;
	unsigned nworkers;
	unsigned count;
	size_t obj_size;
	size_t stride;
	unsigned shift;			/* log2(stride) when a power of two, else 0 */
	unsigned flags;
	struct slab **slab;
	struct ret_ring **ret;		/* ret[f * nworkers + o]: worker f's frees to o's slab */
	struct pend *pend;		/* row w (pend_stride entries) is worker w's, only it writes */
	unsigned pend_stride;
};

/* Per runtime: the pools each worker's flush poller visits. */
struct pool_layer {
	_Atomic unsigned n;
	struct pel_pool *_Atomic pools[MAX_POOLS];
};

static pthread_mutex_t layer_lock = PTHREAD_MUTEX_INITIALIZER;
static PEL__TLS unsigned foreign_rr;	/* where a non-worker thread starts looking */

/* ---- the shared stack ---- */

static uint32_t
shared_pop(struct slab *s)
{
	/* acquire: pairs with the release in shared_push(); next[] and the object are visible */
	uint64_t h = atomic_load_explicit(&s->head, memory_order_acquire);

	for (;;) {
		uint32_t idx = (uint32_t)h, nxt;

		if (idx == NIL)
			return NIL;
		nxt = atomic_load_explicit(&s->next[idx], memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&s->head, &h,
							  (((h >> 32) + 1) << 32) | nxt,
							  memory_order_acq_rel, memory_order_acquire))
			return idx;
	}
}

/*
 * Pop up to @p n objects with one CAS: walk n links down from the head, then swing the head past
 * them. While the head (with its tag) is unchanged nothing below it can have changed, so a walk
 * over links someone rewrote meanwhile only ends in a failed CAS and a new walk; links always hold
 * a valid index or NIL, so a stale walk cannot leave the array.
 * @return how many were popped into @p out.
 */
static unsigned
shared_pop_chain(struct slab *s, uint32_t *out, unsigned n)
{
	/* acquire: pairs with the release of every push before it (a release sequence of CASes);
	 * the links below the head and the objects are visible */
	uint64_t h = atomic_load_explicit(&s->head, memory_order_acquire);

	for (;;) {
		uint32_t idx = (uint32_t)h;
		unsigned k = 0;

		while (idx != NIL && k < n) {
			out[k++] = idx;
			idx = atomic_load_explicit(&s->next[idx], memory_order_relaxed);
		}
		if (k == 0)
			return 0;
		if (atomic_compare_exchange_weak_explicit(&s->head, &h,
							  (((h >> 32) + 1) << 32) | idx,
							  memory_order_acq_rel, memory_order_acquire))
			return k;
	}
}

/* Push the chain first -> ... -> last (linked through next[]). */
static void
shared_push(struct slab *s, uint32_t first, uint32_t last)
{
	uint64_t h = atomic_load_explicit(&s->head, memory_order_relaxed);

	do {
		atomic_store_explicit(&s->next[last], (uint32_t)h, memory_order_relaxed);
		/* release: pairs with the acquire in shared_pop(); publishes next[] and the objects */
	} while (!atomic_compare_exchange_weak_explicit(&s->head, &h, (((h >> 32) + 1) << 32) | first,
							memory_order_release, memory_order_relaxed));
}

/* ---- objects and indexes ---- */

static inline uint32_t
index_of(const struct pel_pool *pool, const struct slab *s, const char *p)
{
	size_t off = (size_t)(p - s->c.base);

	return (uint32_t)(pool->shift ? off >> pool->shift : off / pool->stride);
}

static inline void *
object_at(const struct pel_pool *pool, const struct slab *s, uint32_t idx)
{
	return s->c.base + (size_t)idx * pool->stride;
}

/* Which worker's slab holds @p p; -1 when it is not an object of this pool. */
static int
owner_of(const struct pel_pool *pool, const char *p)
{
	for (unsigned w = 0; w < pool->nworkers; w++) {
		const struct slab *s = pool->slab[w];

		if (p >= s->c.base && p < s->c.end) {
			size_t off = (size_t)(p - s->c.base);

			if ((pool->shift ? off & (pool->stride - 1) : off % pool->stride) != 0)
				return -1;
			return (int)w;
		}
	}
	return -1;
}

static inline struct pel_worker *
caller_worker(const struct pel_pool *pool)
{
	struct pel_worker *w = pel__self;

	return w && w->rt == pool->rt ? w : NULL;
}

/* Checked pools (not fast: every call out of line) keep a live mark per object. */
static inline bool
checked(const struct pel_pool *pool)
{
	return !pool->pub.fast;
}

static void
mark_live(struct pel_pool *pool, struct slab *s, void *obj)
{
	if (checked(pool)) {
		uint32_t idx = index_of(pool, s, obj);

		atomic_store_explicit(&s->live[idx], 1, memory_order_relaxed);
	}
}

/* Checked builds: clear the live mark; false (and a log line) for a double free. */
static bool
unmark_live(struct pel_pool *pool, struct slab *s, unsigned w, void *obj)
{
	if (checked(pool)) {
		uint32_t idx = index_of(pool, s, obj);

		if (!atomic_exchange_explicit(&s->live[idx], 0, memory_order_relaxed)) {
			pel__log(pool->rt->log, pool->rt->log_arg, PEL_LOG_ERROR,
				 "pel_free: double free of %p (object %u of worker %u's slab); ignored",
				 obj, idx, w);
			return false;
		}
	}
	return true;
}

/* Remote frees of slab @p o so far: through the shared stack, and through each return ring. */
static uint64_t
remote_total(const struct pel_pool *pool, unsigned o)
{
	uint64_t n = atomic_load_explicit(&pool->slab[o]->remote_frees, memory_order_relaxed);

	for (unsigned f = 0; f < pool->nworkers; f++)
		if (f != o)
			n += atomic_load_explicit(&pool->ret[(size_t)f * pool->nworkers + o]->pushed,
						  memory_order_relaxed);
	return n;
}

/*
 * Objects of slab @p o live now: frees are read before allocs (counters only grow, so a free is
 * never counted without its alloc), and the difference is clamped to 0 .. count.
 */
static uint64_t
live_now(const struct pel_pool *pool, unsigned o)
{
	const struct slab *s = pool->slab[o];
	int64_t frees = (int64_t)(atomic_load_explicit(&s->c.frees, memory_order_acquire) +
				  remote_total(pool, o));
	int64_t allocs = (int64_t)(atomic_load_explicit(&s->c.allocs, memory_order_acquire) +
				   atomic_load_explicit(&s->foreign_allocs, memory_order_acquire));
	int64_t live = allocs - frees;

	return live < 0 ? 0 : live > (int64_t)pool->count ? pool->count : (uint64_t)live;
}

/* The owner takes what the other workers returned to it, up to @p room objects. */
static unsigned
drain_returns(struct pel_pool *pool, unsigned o, struct slab *s, unsigned room)
{
	unsigned got = 0;

	for (unsigned f = 0; f < pool->nworkers && got < room; f++) {
		struct ret_ring *r;
		uint32_t h, t;

		if (f == o)
			continue;
		r = pool->ret[(size_t)f * pool->nworkers + o];
		h = atomic_load_explicit(&r->head, memory_order_relaxed);
		/* acquire: pairs with the release of tail in the freer; the slots are written */
		t = atomic_load_explicit(&r->tail, memory_order_acquire);
		while (h != t && got < room) {
			s->c.obj[s->c.n++] = object_at(pool, s, r->slot[h & (RET_SLOTS - 1)]);
			h++;
			got++;
		}
		/* release: pairs with the freer's acquire of head; these slots are free again */
		atomic_store_explicit(&r->head, h, memory_order_release);
	}
	return got;
}

/* ---- allocation ---- */

static void *
owner_alloc(struct pel_pool *pool, unsigned o, struct slab *s)
{
	uint64_t a, live;
	void *obj;

	if (pel_unlikely(s->c.n == 0)) {
		/* the cache ran dry: a high point of this slab's live objects, sample it */
		live = live_now(pool, o);
		if (live > atomic_load_explicit(&s->high_water, memory_order_relaxed))
			atomic_store_explicit(&s->high_water, live, memory_order_relaxed);
		/* first what other workers returned, then half the cache from the shared stack in
		 * one CAS (other threads can still find what is left there) */
		unsigned want = s->c.cap / 2 + 1;

		if (drain_returns(pool, o, s, want) == 0) {
			uint32_t got[CACHE_MAX / 2 + 1];
			unsigned k = shared_pop_chain(s, got, want);

			for (unsigned i = 0; i < k; i++)
				s->c.obj[s->c.n++] = object_at(pool, s, got[i]);
		}
		if (s->c.n == 0) {
			pel__trace(pool_alloc_fail, (int)o, pool->obj_size);
			a = atomic_load_explicit(&s->failures, memory_order_relaxed);
			atomic_store_explicit(&s->failures, a + 1, memory_order_relaxed);
			return NULL;
		}
	}
	obj = s->c.obj[--s->c.n];
	mark_live(pool, s, obj);
	a = atomic_load_explicit(&s->c.allocs, memory_order_relaxed) + 1;
	atomic_store_explicit(&s->c.allocs, a, memory_order_relaxed);
	live = live_now(pool, o);
	if (live > atomic_load_explicit(&s->high_water, memory_order_relaxed))
		atomic_store_explicit(&s->high_water, live, memory_order_relaxed);
	return obj;
}

void *
pel__pool_alloc_slow(struct pel_pool *pool)
{
	struct pel_worker *w;
	unsigned start;

	if (pel_unlikely(!pool))
		return NULL;
	w = caller_worker(pool);
	if (pel_likely(w != NULL))
		return owner_alloc(pool, w->id, pool->slab[w->id]);
	start = foreign_rr++ % pool->nworkers;
	for (unsigned k = 0; k < pool->nworkers; k++) {
		struct slab *s = pool->slab[(start + k) % pool->nworkers];
		uint32_t idx = shared_pop(s);

		if (idx != NIL) {
			void *obj = object_at(pool, s, idx);

			mark_live(pool, s, obj);
			atomic_fetch_add_explicit(&s->foreign_allocs, 1, memory_order_relaxed);
			return obj;
		}
	}
	atomic_fetch_add_explicit(&pool->slab[start]->foreign_failures, 1, memory_order_relaxed);
	/* free objects may sit where only their owners look (caches, return rings): ask every
	 * owner to put them back on its shared stack at its next pass */
	for (unsigned k = 0; k < pool->nworkers; k++) {
		atomic_store_explicit(&pool->slab[k]->wanted, 1, memory_order_relaxed);
		/* Dekker with park(): our flag before its parked flag; a sleeping owner is woken */
		pel__wake(pool->rt->workers[k]);
	}
	pel__trace(pool_alloc_fail, -1, pool->obj_size);
	return NULL;
}

/* ---- freeing ---- */

/* Move the @p k oldest objects of the owner's cache to the shared stack, as one chain. */
static void
spill(struct pel_pool *pool, struct slab *s, unsigned k)
{
	uint32_t first, prev;

	if (k == 0 || k > s->c.n)
		return;
	first = prev = index_of(pool, s, s->c.obj[0]);
	for (unsigned i = 1; i < k; i++) {
		uint32_t idx = index_of(pool, s, s->c.obj[i]);

		atomic_store_explicit(&s->next[prev], idx, memory_order_relaxed);
		prev = idx;
	}
	shared_push(s, first, prev);
	memmove(s->c.obj, s->c.obj + k, (s->c.n - k) * sizeof(*s->c.obj));
	s->c.n -= k;
}

static void
owner_free(struct pel_pool *pool, struct slab *s, void *obj)
{
	uint64_t f;

	if (pel_unlikely(s->c.n == s->c.cap))
		spill(pool, s, s->c.cap / 2 ? s->c.cap / 2 : 1);	/* the older half */
	s->c.obj[s->c.n++] = obj;
	f = atomic_load_explicit(&s->c.frees, memory_order_relaxed);
	atomic_store_explicit(&s->c.frees, f + 1, memory_order_relaxed);
}

static void
flush_one(struct pel_pool *pool, struct pend *pd, unsigned owner)
{
	struct slab *s = pool->slab[owner];

	shared_push(s, pd->first, pd->last);
	atomic_fetch_add_explicit(&s->remote_frees, pd->n, memory_order_relaxed);
	pd->n = 0;
}

void
pel__pool_free_slow(struct pel_pool *pool, void *obj)
{
	struct pel_worker *w;
	struct slab *s;
	int owner;

	if (pel_unlikely(!obj || !pool))
		return;
	w = caller_worker(pool);
	if (pel_likely(w != NULL)) {
		s = pool->slab[w->id];
		if (pel_likely((char *)obj >= s->c.base && (char *)obj < s->c.end)) {
			if (checked(pool) && owner_of(pool, obj) != (int)w->id)
				goto not_ours;
			if (unmark_live(pool, s, w->id, obj))
				owner_free(pool, s, obj);
			return;
		}
	}
	owner = owner_of(pool, obj);
	if (pel_unlikely(owner < 0))
		goto not_ours;
	s = pool->slab[owner];
	if (!unmark_live(pool, s, (unsigned)owner, obj))
		return;
	if (w) {
		/* another worker's object: its return ring to the owner, no CAS */
		struct ret_ring *r = pool->ret[(size_t)w->id * pool->nworkers + (unsigned)owner];
		uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

		if (t - r->head_cache == RET_SLOTS)
			/* acquire: pairs with the owner's release of head; those slots are free */
			r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - r->head_cache < RET_SLOTS) {
			uint64_t n = atomic_load_explicit(&r->pushed, memory_order_relaxed);

			r->slot[t & (RET_SLOTS - 1)] = index_of(pool, s, obj);
			/* release: pairs with the owner's acquire in drain_returns() */
			atomic_store_explicit(&r->tail, t + 1, memory_order_release);
			atomic_store_explicit(&r->pushed, n + 1, memory_order_relaxed);
			return;
		}
		/* the ring is full: chain it to the shared stack, pushed at BATCH or at the end
		 * of this worker's pass */
		struct pend *pd = &pool->pend[(size_t)w->id * pool->pend_stride + (unsigned)owner];
		uint32_t idx = index_of(pool, s, obj);

		atomic_store_explicit(&s->next[idx], pd->n ? pd->first : NIL, memory_order_relaxed);
		if (!pd->n)
			pd->last = idx;
		pd->first = idx;
		if (++pd->n >= BATCH)
			flush_one(pool, pd, (unsigned)owner);
		return;
	}
	/* not a worker: no pass to flush at, push it now */
	{
		uint32_t idx = index_of(pool, s, obj);

		shared_push(s, idx, idx);
		atomic_fetch_add_explicit(&s->remote_frees, 1, memory_order_relaxed);
	}
	return;
not_ours:
	pel__log(pool->rt->log, pool->rt->log_arg, PEL_LOG_ERROR,
		 "pel_free: %p is not an object of this pool (%zu-byte objects, %u per worker); "
		 "ignored", obj, pool->obj_size, pool->count);
}

/* The exported symbols, for C++ and dlsym(): C callers get pool.h's inline versions. */
void *
pel_alloc(struct pel_pool *pool)
{
	return pel__pool_alloc_slow(pool);
}

void
pel_free(struct pel_pool *pool, void *obj)
{
	pel__pool_free_slow(pool, obj);
}

/* ---- the flush poller, one per worker per runtime ---- */

static void
flush_row(struct pel_pool *pool, unsigned w)
{
	struct pend *row = &pool->pend[(size_t)w * pool->pend_stride];

	for (unsigned o = 0; o < pool->nworkers; o++)
		if (row[o].n)
			flush_one(pool, &row[o], o);
}

/*
 * On the owner, after a non-worker thread missed: what other workers returned, and the cache above
 * half, go onto the shared stack where every thread can find them.
 */
static int
rebalance(struct pel_pool *pool, unsigned o)
{
	struct slab *s = pool->slab[o];

	if (!atomic_load_explicit(&s->wanted, memory_order_relaxed))
		return 0;
	atomic_store_explicit(&s->wanted, 0, memory_order_relaxed);
	drain_returns(pool, o, s, s->c.cap - s->c.n);
	if (s->c.n > s->c.cap / 2)
		spill(pool, s, s->c.n - s->c.cap / 2);
	return 1;
}

static int
flush_poll(void *ctx)
{
	struct pool_layer *layer = ctx;
	unsigned n = atomic_load_explicit(&layer->n, memory_order_acquire);
	unsigned w = pel__self->id;
	int did = 0;

	for (unsigned i = 0; i < n; i++) {
		struct pel_pool *pool = atomic_load_explicit(&layer->pools[i], memory_order_acquire);

		if (pool) {
			flush_row(pool, w);
			did += rebalance(pool, w);
		}
	}
	return did;	/* flushing is not work; a rebalance counts once (it keeps a park from
			 * missing a request raised just before it) */
}

static void
install_poller(unsigned worker, void *arg)
{
	(void)worker;
	pel__poller_add(flush_poll, arg, PEL__POLL_PARK_OK);
}

static void
free_layer(void *layer)
{
	free(layer);
}

/* The runtime's pool layer, set up on first use. */
static int
get_layer(struct pel_runtime *rt, struct pool_layer **out)
{
	struct pool_layer *layer;
	int err = 0;

	pthread_mutex_lock(&layer_lock);
	layer = rt->layer[PEL__LAYER_POOL];
	if (!layer) {
		layer = calloc(1, sizeof(*layer));
		if (!layer) {
			err = pel__fail(-ENOMEM, "out of memory for the pool layer");
		} else {
			err = pel__run_on_each_worker(rt, install_poller, layer);
			if (err) {
				free(layer);
				layer = NULL;
			} else {
				rt->layer[PEL__LAYER_POOL] = layer;
				rt->layer_free[PEL__LAYER_POOL] = free_layer;
			}
		}
	}
	pthread_mutex_unlock(&layer_lock);
	*out = layer;
	return err;
}

/* ---- create and destroy ---- */

static int
slab_map(struct pel_pool *pool, unsigned w)
{
	struct pel_runtime *rt = pool->rt;
	struct slab *s = pool->slab[w];
	size_t objs = (size_t)pool->count * pool->stride;
	size_t len = objs + (size_t)pool->count * (sizeof(uint32_t) + 1);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	bool want_huge = (pool->flags & PEL_POOL_F_HUGEPAGES) ||
			 (rt->plan->cfg.flags & PEL_F_HUGEPAGES);
	void *map = MAP_FAILED;

	len = (len + page - 1) & ~(page - 1);
	if (want_huge) {
		size_t hlen = (len + HUGE_2M - 1) & ~(size_t)(HUGE_2M - 1);

		map = mmap(NULL, hlen, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (map == MAP_FAILED)
			pel__log(rt->log, rt->log_arg, PEL_LOG_WARNING,
				 "pool slab of worker %u: no 2 MiB hugepage for %zu KiB (%s); using "
				 "normal pages. Reserve some: echo N > /proc/sys/vm/nr_hugepages", w,
				 len >> 10, strerror(errno));
		else
			len = hlen, s->huge = true;
	}
	if (map == MAP_FAILED)
		map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return pel__fail(-ENOMEM, "cannot map %zu bytes for worker %u's slab: %s", len, w,
				 strerror(errno));
	s->map = map;
	s->map_len = len;
	s->node = -1;
#if PEL_HAVE_NUMA
	/* the worker's node, as the runtime read it from sysfs (-1: unknown, no binding) */
	if (rt->workers[w]->node >= 0 && numa_available() >= 0 &&
	    rt->workers[w]->node <= numa_max_node()) {
		numa_tonode_memory(map, len, rt->workers[w]->node);
		s->node = rt->workers[w]->node;
	}
#endif
	/* written through now, on the bound node: no page fault on the allocation path later */
	memset(map, 0, len);
	if ((rt->plan->cfg.flags & PEL_F_MLOCK) && mlock(map, len))
		return pel__fail(-EPERM, "mlock of worker %u's %zu-byte slab refused (%s): raise "
				 "RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK", w, len,
				 strerror(errno));
	s->c.base = map;
	s->c.end = s->c.base + objs;
	s->next = (_Atomic uint32_t *)(s->c.base + objs);
	s->live = (_Atomic uint8_t *)(s->next + pool->count);
	/* every object starts on the shared stack, in address order */
	for (uint32_t i = 0; i < pool->count; i++)
		atomic_init(&s->next[i], i + 1 < pool->count ? i + 1 : NIL);
	atomic_init(&s->head, 0);
	s->c.cap = pool->count < CACHE_MAX ? pool->count : CACHE_MAX;
	s->c.obj = calloc(s->c.cap, sizeof(*s->c.obj));
	if (!s->c.obj)
		return pel__fail(-ENOMEM, "out of memory for worker %u's pool cache", w);
	return 0;
}

static void
pool_free(struct pel_pool *pool)
{
	if (pool->slab) {
		for (unsigned w = 0; w < pool->nworkers; w++) {
			struct slab *s = pool->slab[w];

			if (!s)
				continue;
			if (s->map)
				munmap(s->map, s->map_len);
			free(s->c.obj);
			free(s);
		}
		free(pool->slab);
	}
	if (pool->ret)
		for (size_t i = 0; i < (size_t)pool->nworkers * pool->nworkers; i++)
			free(pool->ret[i]);
	free(pool->ret);
	free(pool->pend);
	free(pool->caches);
	free(pool);
}

int
pel_pool_create(struct pel_runtime *rt, size_t obj_size, unsigned per_worker_count,
		unsigned flags, struct pel_pool **out)
{
	struct pool_layer *layer;
	struct pel_pool *pool;
	size_t align;
	unsigned slot;
	int err;

	if (!out)
		return pel__fail(-EINVAL, "out pointer is NULL");
	*out = NULL;
	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	if (obj_size == 0 || obj_size > PEL_POOL_MAX_OBJ)
		return pel__fail(-EINVAL, "obj_size %zu is outside 1..%u", obj_size, PEL_POOL_MAX_OBJ);
	if (per_worker_count == 0 || per_worker_count > PEL_POOL_MAX_COUNT)
		return pel__fail(-EINVAL, "per_worker_count %u is outside 1..%u", per_worker_count,
				 PEL_POOL_MAX_COUNT);
	if (flags & ~(PEL_POOL_F_CACHE_ALIGN | PEL_POOL_F_HUGEPAGES))
		return pel__fail(-EINVAL, "flags 0x%x hold bits this version does not know", flags);
	if (pel__self)
		return pel__fail(-EDEADLK, "pel_pool_create() called from a task: it sets up every "
				 "worker and waits for them");
	if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	err = get_layer(rt, &layer);
	if (err)
		return err;

	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return pel__fail(-ENOMEM, "out of memory for the pool");
	align = flags & PEL_POOL_F_CACHE_ALIGN ? PEL_CACHELINE : 16;
	pool->rt = rt;
	pool->nworkers = rt->nworkers;
	pool->count = per_worker_count;
	pool->obj_size = obj_size;
	pool->stride = (obj_size + align - 1) & ~(align - 1);
	pool->flags = flags;
	if ((pool->stride & (pool->stride - 1)) == 0)
		pool->shift = (unsigned)__builtin_ctzll(pool->stride);
	/* a row per freeing worker, each on its own guard blocks */
	pool->pend_stride = (unsigned)((pool->nworkers * sizeof(struct pend) + PEL_CACHE_GUARD - 1) /
				       PEL_CACHE_GUARD * PEL_CACHE_GUARD / sizeof(struct pend));
	pool->slab = calloc(pool->nworkers, sizeof(*pool->slab));
	pool->caches = calloc(pool->nworkers, sizeof(*pool->caches));
	pool->pub.rt = rt;
	pool->pub.fast = !POOL_CHECKS;
	pool->pub.cache = (struct pel__pool_cache *const *)pool->caches;
	pool->pend = aligned_alloc(PEL_CACHE_GUARD, (size_t)pool->nworkers * pool->pend_stride *
							    sizeof(struct pend));
	pool->ret = calloc((size_t)pool->nworkers * pool->nworkers, sizeof(*pool->ret));
	for (size_t i = 0; pool->ret && i < (size_t)pool->nworkers * pool->nworkers; i++) {
		if (i / pool->nworkers == i % pool->nworkers)
			continue;	/* no ring from a worker to itself */
		pool->ret[i] = aligned_alloc(PEL_CACHE_GUARD, sizeof(struct ret_ring));
		if (!pool->ret[i]) {
			err = pel__fail(-ENOMEM, "out of memory for the pool's return rings");
			goto out_free;
		}
		memset(pool->ret[i], 0, sizeof(struct ret_ring));
	}
	if (!pool->slab || !pool->pend || !pool->caches || !pool->ret) {
		err = pel__fail(-ENOMEM, "out of memory for the pool");
		goto out_free;
	}
	memset(pool->pend, 0, (size_t)pool->nworkers * pool->pend_stride * sizeof(struct pend));
	for (unsigned w = 0; w < pool->nworkers; w++) {
		pool->slab[w] = aligned_alloc(PEL_CACHE_GUARD, sizeof(struct slab));
		if (!pool->slab[w]) {
			err = pel__fail(-ENOMEM, "out of memory for the pool");
			goto out_free;
		}
		memset(pool->slab[w], 0, sizeof(struct slab));
		pool->caches[w] = &pool->slab[w]->c;
		err = slab_map(pool, w);
		if (err)
			goto out_free;
	}

	pthread_mutex_lock(&layer_lock);
	for (slot = 0; slot < MAX_POOLS; slot++)
		if (!atomic_load_explicit(&layer->pools[slot], memory_order_relaxed))
			break;
	if (slot < MAX_POOLS) {
		/* release: pairs with flush_poll()'s acquire; the pool is set up */
		atomic_store_explicit(&layer->pools[slot], pool, memory_order_release);
		if (slot >= atomic_load_explicit(&layer->n, memory_order_relaxed))
			atomic_store_explicit(&layer->n, slot + 1, memory_order_release);
	}
	pthread_mutex_unlock(&layer_lock);
	if (slot == MAX_POOLS) {
		err = pel__fail(-ENOSPC, "this runtime already has %u pools", MAX_POOLS);
		goto out_free;
	}
	*out = pool;
	return 0;

out_free:
	pool_free(pool);
	return err;
}

static void
flush_task(unsigned worker, void *arg)
{
	flush_row(arg, worker);
}

static void
nothing(unsigned worker, void *arg)
{
	(void)worker;
	(void)arg;
}

void
pel_pool_destroy(struct pel_pool *pool)
{
	struct pool_layer *layer;
	uint64_t live = 0;

	if (!pool)
		return;
	layer = pool->rt->layer[PEL__LAYER_POOL];
	/* every worker pushes its partial chains for this pool; then none visits it any more */
	pel__run_on_each_worker(pool->rt, flush_task, pool);
	pthread_mutex_lock(&layer_lock);
	for (unsigned i = 0; i < MAX_POOLS; i++)
		if (atomic_load_explicit(&layer->pools[i], memory_order_relaxed) == pool)
			atomic_store_explicit(&layer->pools[i], NULL, memory_order_release);
	pthread_mutex_unlock(&layer_lock);
	pel__run_on_each_worker(pool->rt, nothing, NULL);
	for (unsigned w = 0; w < pool->nworkers; w++) {
		struct slab *s = pool->slab[w];

		live += atomic_load(&s->c.allocs) + atomic_load(&s->foreign_allocs) -
			atomic_load(&s->c.frees) - remote_total(pool, w);
	}
	if (live)
		pel__log(pool->rt->log, pool->rt->log_arg, PEL_LOG_WARNING,
			 "pel_pool_destroy: %llu objects of this pool are still allocated; their "
			 "memory is gone now", (unsigned long long)live);
	pool_free(pool);
}

int
pel_pool_stats(const struct pel_pool *pool, unsigned worker, struct pel_pool_stats *out)
{
	const struct slab *s;

	if (!pool || !out)
		return pel__fail(-EINVAL, "%s is NULL", pool ? "stats pointer" : "pool");
	if (worker >= pool->nworkers)
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, pool->nworkers);
	s = pool->slab[worker];
	memset(out, 0, sizeof(*out));
	out->allocs = atomic_load_explicit(&s->c.allocs, memory_order_relaxed) +
		      atomic_load_explicit(&s->foreign_allocs, memory_order_relaxed);
	out->frees = atomic_load_explicit(&s->c.frees, memory_order_relaxed);
	out->remote_frees = remote_total(pool, worker);
	out->failures = atomic_load_explicit(&s->failures, memory_order_relaxed) +
			atomic_load_explicit(&s->foreign_failures, memory_order_relaxed);
	out->high_water = atomic_load_explicit(&s->high_water, memory_order_relaxed);
	/* the owner samples its high point when its cache runs dry; now is a sample too */
	if (live_now(pool, worker) > out->high_water)
		out->high_water = live_now(pool, worker);
	out->node = s->node;
	out->hugepages = s->huge;
	return 0;
}
