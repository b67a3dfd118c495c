/* SPDX-License-Identifier: MIT */
/*
 * mem/pool.c - NUMA-local fixed-size object pools (include/pel/pool.h).
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
 * This layer depends on sched/layer.h only; sched/ knows nothing of it. It enters the worker loop
 * through one park-safe poller per worker, and pel_destroy() stops it (pool_layer_stop()): pools
 * still open give their pages back and their handles answer NULL/-ESHUTDOWN until
 * pel_pool_destroy() unmaps and frees them.
 */
#define PEL_POOL_NO_INLINE	/* this file defines the exported pel_alloc() and pel_free() */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pel/pool.h>

#include "sched/layer.h"
#include "pool_layer.h"
#include "trace/trace.h"
#include "pel_config.h"

#if PEL_HAVE_NUMA
#include <numa.h>
#endif

#define CACHE_MAX	PEL__POOL_CACHE_MAX	/* owner cache capacity (or the slab's count, if smaller) */
#define BATCH		32u	/* remote frees pushed to their owner at once */
#define NIL		UINT32_MAX
#define MAX_POOLS	64u	/* live pools per runtime */

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
	/* One reservation for every slab: worker w's at va + (w << span_shift), so the owner of an
	 * address is one subtraction and one shift away (owner_of()). */
	char *va;
	size_t va_len;
	unsigned span_shift;
	struct ret_ring **ret;		/* ret[f * nworkers + o]: worker f's frees to o's slab */
	struct pend *pend;		/* row w (pend_stride entries) is worker w's, only it writes */
	unsigned pend_stride;
	/* Shutdown: set by pool_layer_stop() under the layer lock, after the workers have left. */
	_Atomic uint32_t dead;		/* slabs' pages given back: NULL/-ESHUTDOWN */
	bool orphan;			/* pel_pool_destroy() came while the runtime was stopping */
	unsigned slot;			/* index in the layer's pools[] */
};

/* Per runtime: the pools each worker's flush poller visits. */
struct pool_layer {
	int setup_err;			/* the flush pollers could not be installed on every worker */
	_Atomic unsigned n;
	struct pel_pool *_Atomic pools[MAX_POOLS];
};

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
		/* acq_rel: acquire pairs with the release CAS in shared_push() (the object is
		 * ours); release keeps the CAS chain a release sequence for later poppers. On
		 * failure, acquire: the new head's links are visible, as above */
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
		/* acq_rel / acquire: as in shared_pop() */
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
		/* release: pairs with the acquire of head in shared_pop() and shared_pop_chain();
		 * publishes next[] and the objects */
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

/* Which worker's slab holds @p p; -1 when it is not an object of this pool. O(1): the slabs lie
 * span apart in one reservation. */
static int
owner_of(const struct pel_pool *pool, const char *p)
{
	size_t w = ((uintptr_t)p - (uintptr_t)pool->va) >> pool->span_shift, off;

	if (w >= pool->nworkers)
		return -1;
	off = (uintptr_t)p - (uintptr_t)pool->slab[w]->c.base;
	if (off >= (size_t)pool->count * pool->stride)
		return -1;
	if ((pool->shift ? off & (pool->stride - 1) : off % pool->stride) != 0)
		return -1;
	return (int)w;
}

/* The calling worker's id when it is a worker of the pool's runtime, else -1. */
static inline int
caller_worker(const struct pel_pool *pool)
{
	return pel__self_id(pool->rt);
}

/*
 * On a worker: a pool made checked whose fast was turned on since (the tests' second pass) gets
 * its inline paths now. The owner's cache is only ever touched by its worker, so which path a
 * call takes does not matter to the pool, only to speed.
 */
static inline void
arm_inline(struct pel_pool *pool)
{
	if (pel_unlikely(pool->pub.fast &&
			 atomic_load_explicit(&pool->pub.inline_rt, memory_order_relaxed) != pool->rt))
		/* relaxed: pairs with the relaxed loads in pool.h's inline paths; they only choose a
		 * path, the state behind either one is the worker's own */
		atomic_store_explicit(&pool->pub.inline_rt, pool->rt, memory_order_relaxed);
}

/*
 * A thread that is not a worker may use the pool until pool_layer_stop() reclaims it. A call that
 * races the reclaim is memory-safe without any handshake: the reclaim gives the slabs' pages back
 * (MADV_DONTNEED) but keeps their addresses mapped until pel_pool_destroy(), so such a call reads
 * zeros at worst; the calls after it see dead and refuse.
 */
static inline bool
foreign_ok(const struct pel_pool *pool)
{
	/* relaxed: a flag, no data hangs on it (see above) */
	if (pel_likely(!atomic_load_explicit(&pool->dead, memory_order_relaxed)))
		return true;
	pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	return false;
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
			pel__rt_log(pool->rt, PEL_LOG_ERROR,
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
 * About how many objects of slab @p o are live now: a snapshot of counters that their writers store
 * relaxed (the owner's on its inline paths), so from another thread it may be off by the calls in
 * flight; frees are read first, which keeps it from going below the truth on the owner itself, and
 * the difference is clamped to 0 .. count. Used for high_water (a sample) and, from other threads,
 * to skip owners that hold no free object (ask_owners(): an error there costs a miss or a wake).
 */
static uint64_t
live_now(const struct pel_pool *pool, unsigned o)
{
	const struct slab *s = pool->slab[o];
	int64_t frees = (int64_t)(atomic_load_explicit(&s->c.frees, memory_order_relaxed) +
				  remote_total(pool, o));
	int64_t allocs = (int64_t)(atomic_load_explicit(&s->c.allocs, memory_order_relaxed) +
				   atomic_load_explicit(&s->foreign_allocs, memory_order_relaxed));
	int64_t live = allocs - frees;

	return live < 0 ? 0 : live > (int64_t)pool->count ? pool->count : (uint64_t)live;
}

/* The owner takes what the other workers returned to it into @p dst, up to @p room objects. */
static unsigned
drain_returns(struct pel_pool *pool, unsigned o, struct slab *s, void **dst, unsigned room)
{
	unsigned got = 0;

	for (unsigned f = 0; f < pool->nworkers && got < room; f++) {
		struct ret_ring *r;
		uint32_t h, t;

		if (f == o)
			continue;
		r = pool->ret[(size_t)f * pool->nworkers + o];
		h = atomic_load_explicit(&r->head, memory_order_relaxed);
		/* acquire: pairs with the release of tail in remote_free(); the slots are written */
		t = atomic_load_explicit(&r->tail, memory_order_acquire);
		while (h != t && got < room) {
			dst[got++] = object_at(pool, s, r->slot[h & (RET_SLOTS - 1)]);
			h++;
		}
		/* release: pairs with the acquire of head in remote_free(); these slots are free */
		atomic_store_explicit(&r->head, h, memory_order_release);
	}
	return got;
}

/* Push @p n (> 0) objects of slab @p s onto its shared stack as one chain, in one CAS. */
static void
push_objs(struct pel_pool *pool, struct slab *s, void *const *objs, unsigned n)
{
	uint32_t first, prev;

	first = prev = index_of(pool, s, objs[0]);
	for (unsigned i = 1; i < n; i++) {
		uint32_t idx = index_of(pool, s, objs[i]);

		atomic_store_explicit(&s->next[prev], idx, memory_order_relaxed);
		prev = idx;
	}
	shared_push(s, first, prev);
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

		s->c.n += drain_returns(pool, o, s, s->c.obj + s->c.n, want);
		if (s->c.n == 0) {
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

/*
 * A non-worker found every shared stack empty. Free objects may still sit where only their owners
 * look (caches, return rings, chains): ask each owner that has some, per its counters, to put them
 * back on its shared stack at its next pass, and wake it if it is parked. Bounded: one request per
 * owner until it has answered (wanted stays set until then), and none to an owner all of whose
 * objects are allocated, so a thread retrying on an exhausted pool makes no syscall.
 */
static void
ask_owners(struct pel_pool *pool)
{
	for (unsigned k = 0; k < pool->nworkers; k++) {
		struct slab *s = pool->slab[k];

		if (live_now(pool, k) >= pool->count)
			continue;
		/* relaxed load first: no RMW on the owner's line while a request is pending */
		if (atomic_load_explicit(&s->wanted, memory_order_relaxed) ||
		    atomic_exchange_explicit(&s->wanted, 1, memory_order_relaxed))
			continue;
		/* Dekker with the park in sched/: our wanted store before the load of its parked
		 * flag (pel__worker_wake()'s barrier); a parking owner runs its pollers after
		 * setting parked, so either it sees wanted or we see it parked and wake it */
		pel__worker_wake(pool->rt, k);
	}
}

void *
pel__pool_alloc_slow(struct pel_pool *pool)
{
	unsigned start;
	int w;

	if (pel_unlikely(!pool))
		return NULL;
	w = caller_worker(pool);
	if (pel_likely(w >= 0)) {
		arm_inline(pool);
		return owner_alloc(pool, (unsigned)w, pool->slab[w]);
	}
	if (pel_unlikely(!foreign_ok(pool)))
		return NULL;
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
	ask_owners(pool);
	pel__trace(pool_alloc_fail, -1, pool->obj_size);
	return NULL;
}

/* ---- freeing ---- */

/* Move the @p k oldest objects of the owner's cache to the shared stack, as one chain. */
static void
spill(struct pel_pool *pool, struct slab *s, unsigned k)
{
	if (k == 0 || k > s->c.n)
		return;
	push_objs(pool, s, s->c.obj, k);
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

static void
not_ours(const struct pel_pool *pool, const void *obj)
{
	pel__rt_log(pool->rt, PEL_LOG_ERROR,
		    "pel_free: %p is not an object of this pool (%zu-byte objects, %u per worker); "
		    "ignored", obj, pool->obj_size, pool->count);
}

/* A worker frees another worker's object: its return ring to the owner, no CAS. */
static void
remote_free(struct pel_pool *pool, unsigned w, unsigned owner, struct slab *s, void *obj)
{
	struct ret_ring *r = pool->ret[(size_t)w * pool->nworkers + owner];
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	struct pend *pd;
	uint32_t idx;

	if (t - r->head_cache == RET_SLOTS)
		/* acquire: pairs with the owner's release of head in drain_returns(); those slots
		 * are free */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	if (t - r->head_cache < RET_SLOTS) {
		uint64_t n = atomic_load_explicit(&r->pushed, memory_order_relaxed);

		r->slot[t & (RET_SLOTS - 1)] = index_of(pool, s, obj);
		/* release: pairs with the owner's acquire of tail in drain_returns() */
		atomic_store_explicit(&r->tail, t + 1, memory_order_release);
		atomic_store_explicit(&r->pushed, n + 1, memory_order_relaxed);
		return;
	}
	/* the ring is full: chain it to the shared stack, pushed at BATCH or at the end of this
	 * worker's pass */
	pd = &pool->pend[(size_t)w * pool->pend_stride + owner];
	idx = index_of(pool, s, obj);
	atomic_store_explicit(&s->next[idx], pd->n ? pd->first : NIL, memory_order_relaxed);
	if (!pd->n)
		pd->last = idx;
	pd->first = idx;
	if (++pd->n >= BATCH)
		flush_one(pool, pd, owner);
}

void
pel__pool_free_slow(struct pel_pool *pool, void *obj)
{
	struct slab *s;
	int w, owner;

	if (pel_unlikely(!obj || !pool))
		return;
	w = caller_worker(pool);
	if (pel_likely(w >= 0)) {
		arm_inline(pool);
		s = pool->slab[w];
		if (pel_likely((char *)obj >= s->c.base && (char *)obj < s->c.end)) {
			if (checked(pool) && owner_of(pool, obj) != w)
				return not_ours(pool, obj);
			if (unmark_live(pool, s, (unsigned)w, obj))
				owner_free(pool, s, obj);
			return;
		}
		owner = owner_of(pool, obj);
		if (pel_unlikely(owner < 0))
			return not_ours(pool, obj);
		s = pool->slab[owner];
		if (unmark_live(pool, s, (unsigned)owner, obj))
			remote_free(pool, (unsigned)w, (unsigned)owner, s, obj);
		return;
	}
	/* not a worker: no pass to flush at, push it now */
	if (pel_unlikely(!foreign_ok(pool)))
		return;
	owner = owner_of(pool, obj);
	if (pel_unlikely(owner < 0)) {
		not_ours(pool, obj);
	} else {
		s = pool->slab[owner];
		if (unmark_live(pool, s, (unsigned)owner, obj)) {
			uint32_t idx = index_of(pool, s, obj);

			shared_push(s, idx, idx);
			atomic_fetch_add_explicit(&s->remote_frees, 1, memory_order_relaxed);
		}
	}
}

/* ---- bulk calls ---- */

#define CHUNK	(CACHE_MAX / 2 + 1)	/* shared-stack indexes popped with one CAS */

/* The owner takes back @p n of its objects it could not hand out: its cache, the rest onto its
 * shared stack as one chain. */
static void
owner_put_back(struct pel_pool *pool, struct slab *s, void *const *objs, unsigned n)
{
	unsigned k = s->c.cap - s->c.n < n ? s->c.cap - s->c.n : n;

	memcpy(s->c.obj + s->c.n, objs, k * sizeof(*objs));
	s->c.n += k;
	if (k < n)
		push_objs(pool, s, objs + k, n - k);
}

/*
 * The owner, when its cache holds fewer than @p n: the cache, then what other workers returned,
 * then the shared stack in one CAS per CHUNK (half a cache more when the cache is left empty, as
 * owner_alloc() refills). Short of @p n, everything taken goes back: all or none.
 */
static int
owner_alloc_bulk(struct pel_pool *pool, unsigned o, struct slab *s, void **objs, unsigned n)
{
	unsigned k = s->c.n < n ? s->c.n : n;
	uint64_t a, live;

	s->c.n -= k;
	memcpy(objs, s->c.obj + s->c.n, k * sizeof(*objs));
	if (k < n)
		k += drain_returns(pool, o, s, objs + k, n - k);
	while (k < n) {
		uint32_t got[CHUNK];
		unsigned want = n - k < CHUNK ? n - k : CHUNK, g;

		if (want < CHUNK && s->c.n == 0)
			want += CHUNK - want < s->c.cap / 2 ? CHUNK - want : s->c.cap / 2;
		g = shared_pop_chain(s, got, want);
		if (g == 0)
			break;
		for (unsigned i = 0; i < g; i++) {
			if (k < n)
				objs[k++] = object_at(pool, s, got[i]);
			else
				s->c.obj[s->c.n++] = object_at(pool, s, got[i]);
		}
	}
	if (pel_unlikely(k < n)) {
		owner_put_back(pool, s, objs, k);
		pel__trace(pool_alloc_fail, (int)o, pool->obj_size);
		a = atomic_load_explicit(&s->failures, memory_order_relaxed);
		atomic_store_explicit(&s->failures, a + 1, memory_order_relaxed);
		return pel__fail(-ENOBUFS, "pel_alloc_bulk: %u objects asked, %u free on worker %u's "
				 "slab", n, k, o);
	}
	for (unsigned i = 0; i < n; i++)
		mark_live(pool, s, objs[i]);
	pel__pool_count(&s->c.allocs, n);
	/* the cache ran low: a high point of this slab's live objects, sample it */
	live = live_now(pool, o);
	if (live > atomic_load_explicit(&s->high_water, memory_order_relaxed))
		atomic_store_explicit(&s->high_water, live, memory_order_relaxed);
	return 0;
}

/* Runs of @p objs from one slab (a non-worker takes them slab after slab): @return the run's
 * length from @p i, its owner in @p owner. */
static unsigned
run_of(const struct pel_pool *pool, void *const *objs, unsigned i, unsigned n, int *owner)
{
	unsigned k = i + 1;

	*owner = owner_of(pool, objs[i]);
	while (k < n && owner_of(pool, objs[k]) == *owner)
		k++;
	return k - i;
}

/* A thread that is not a worker: from the shared stacks, slab after slab; all or none. */
static int
foreign_alloc_bulk(struct pel_pool *pool, void **objs, unsigned n)
{
	unsigned start = foreign_rr++ % pool->nworkers, k = 0, len;
	int o;

	for (unsigned j = 0; j < pool->nworkers && k < n; j++) {
		struct slab *s = pool->slab[(start + j) % pool->nworkers];

		while (k < n) {
			uint32_t got[CHUNK];
			unsigned g = shared_pop_chain(s, got, n - k < CHUNK ? n - k : CHUNK);

			if (g == 0)
				break;
			for (unsigned i = 0; i < g; i++)
				objs[k++] = object_at(pool, s, got[i]);
		}
	}
	if (pel_unlikely(k < n)) {
		/* give back what was taken, a chain per slab */
		for (unsigned i = 0; i < k; i += len) {
			len = run_of(pool, objs, i, k, &o);
			push_objs(pool, pool->slab[o], objs + i, len);
		}
		atomic_fetch_add_explicit(&pool->slab[start]->foreign_failures, 1,
					  memory_order_relaxed);
		ask_owners(pool);
		pel__trace(pool_alloc_fail, -1, pool->obj_size);
		return pel__fail(-ENOBUFS, "pel_alloc_bulk: %u objects asked, %u on the shared "
				 "stacks", n, k);
	}
	for (unsigned i = 0; i < n; i += len) {
		struct slab *s;

		len = run_of(pool, objs, i, n, &o);
		s = pool->slab[o];
		for (unsigned m = i; m < i + len; m++)
			mark_live(pool, s, objs[m]);
		atomic_fetch_add_explicit(&s->foreign_allocs, len, memory_order_relaxed);
	}
	return 0;
}

int
pel__pool_alloc_bulk_slow(struct pel_pool *pool, void **objs, unsigned n)
{
	int w;

	if (pel_unlikely(!pool || !objs))
		return pel__fail(-EINVAL, "pel_alloc_bulk: %s is NULL", pool ? "objs" : "pool");
	if (n == 0)
		return 0;
	w = caller_worker(pool);
	if (pel_likely(w >= 0)) {
		arm_inline(pool);
		return owner_alloc_bulk(pool, (unsigned)w, pool->slab[w], objs, n);
	}
	if (pel_unlikely(!foreign_ok(pool)))
		return -ESHUTDOWN;
	return foreign_alloc_bulk(pool, objs, n);
}

/* All or none: every pointer is checked before any is freed. 0, or -EINVAL after a log line. */
static int
check_objs(const struct pel_pool *pool, void *const *objs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (objs[i] && pel_unlikely(owner_of(pool, objs[i]) < 0)) {
			pel__rt_log(pool->rt, PEL_LOG_ERROR, "pel_free_bulk: objs[%u] = %p is not an "
				    "object of this pool (%zu-byte objects, %u per worker); nothing was "
				    "freed", i, objs[i], pool->obj_size, pool->count);
			return pel__fail(-EINVAL, "pel_free_bulk: objs[%u] = %p is not an object of "
					 "this pool; nothing was freed", i, objs[i]);
		}
	}
	return 0;
}

int
pel__pool_free_bulk_slow(struct pel_pool *pool, void *const *objs, unsigned n)
{
	unsigned len;
	int w, o, err;

	if (pel_unlikely(!pool || !objs))
		return pel__fail(-EINVAL, "pel_free_bulk: %s is NULL", pool ? "objs" : "pool");
	w = caller_worker(pool);
	if (pel_likely(w >= 0)) {
		err = check_objs(pool, objs, n);
		if (err)
			return err;
		arm_inline(pool);
		for (unsigned i = 0; i < n; i++) {
			struct slab *s;

			if (!objs[i])
				continue;
			o = owner_of(pool, objs[i]);
			s = pool->slab[o];
			if (!unmark_live(pool, s, (unsigned)o, objs[i]))
				continue;
			if (o == w)
				owner_free(pool, s, objs[i]);
			else
				remote_free(pool, (unsigned)w, (unsigned)o, s, objs[i]);
		}
		return 0;
	}
	/* not a worker: no pass to flush at, a chain per run of one slab's objects now */
	if (pel_unlikely(!foreign_ok(pool)))
		return -ESHUTDOWN;
	err = check_objs(pool, objs, n);
	for (unsigned i = 0; !err && i < n; i += len) {
		void *run[CHUNK];
		unsigned k = 0;
		struct slab *s;

		if (!objs[i]) {
			len = 1;
			continue;
		}
		len = run_of(pool, objs, i, n, &o);
		if (len > CHUNK)
			len = CHUNK;
		s = pool->slab[o];
		for (unsigned m = i; m < i + len; m++)
			if (unmark_live(pool, s, (unsigned)o, objs[m]))
				run[k++] = objs[m];
		if (k) {
			push_objs(pool, s, run, k);
			atomic_fetch_add_explicit(&s->remote_frees, k, memory_order_relaxed);
		}
	}
	return err;
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

int
pel_alloc_bulk(struct pel_pool *pool, void **objs, unsigned n)
{
	return pel__pool_alloc_bulk_slow(pool, objs, n);
}

int
pel_free_bulk(struct pel_pool *pool, void *const *objs, unsigned n)
{
	return pel__pool_free_bulk_slow(pool, objs, n);
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
	/* cleared before the objects go out: a request raised after this is answered next pass */
	atomic_store_explicit(&s->wanted, 0, memory_order_relaxed);
	s->c.n += drain_returns(pool, o, s, s->c.obj + s->c.n, s->c.cap - s->c.n);
	if (s->c.n > s->c.cap / 2)
		spill(pool, s, s->c.n - s->c.cap / 2);
	return 1;
}

static int
flush_poll(void *ctx)
{
	struct pool_layer *layer = ctx;
	/* acquire: pairs with the release of n in pel_pool_create() */
	unsigned n = atomic_load_explicit(&layer->n, memory_order_acquire);
	unsigned w = pel__tls_worker.id;	/* a poller runs on its worker */
	int did = 0;

	for (unsigned i = 0; i < n; i++) {
		/* acquire: pairs with the release of pools[i] in pel_pool_create() (the pool is
		 * set up) and in pel_pool_destroy() */
		struct pel_pool *pool = atomic_load_explicit(&layer->pools[i], memory_order_acquire);

		if (pool) {
			flush_row(pool, w);
			did += rebalance(pool, w);
		}
	}
	return did;	/* flushing is not work; a rebalance counts once (it keeps a park from
			 * missing a request raised just before it) */
}

struct install {
	struct pool_layer *layer;
	_Atomic int err;
};

static void
install_poller(unsigned worker, void *arg)
{
	struct install *in = arg;
	int err = pel__poller_add(flush_poll, in->layer, PEL__POLL_PARK_OK);

	(void)worker;
	if (err)
		atomic_store_explicit(&in->err, err, memory_order_relaxed);
}

static void pool_layer_stop(struct pel_runtime *rt, void *state);

static const struct pel__layer_ops pool_ops = {
	.name = "pool",
	.stop = pool_layer_stop,
};

/* Under the layer lock: the runtime's pool layer, set up on first use. */
static int
get_layer(struct pel_runtime *rt, struct pool_layer **out)
{
	struct install in = { 0 };
	int err;

	*out = pel__layer_get(rt, &pool_ops);
	if (*out && (*out)->setup_err)
		return pel__fail((*out)->setup_err, "the pool poller could not be added to every "
				 "worker: %s", pel_strerror((*out)->setup_err));
	if (*out)
		return 0;
	in.layer = calloc(1, sizeof(*in.layer));
	if (!in.layer)
		return pel__fail(-ENOMEM, "out of memory for the pool layer");
	err = pel__layer_add(rt, &pool_ops, in.layer);
	if (err) {
		free(in.layer);
		return err;
	}
	/* registered first: if the runtime starts stopping half-way, the pollers already added
	 * keep pointing at live state until pool_layer_stop() frees it, after the workers */
	err = pel__run_on_each_worker(rt, install_poller, &in);
	if (!err)
		err = atomic_load_explicit(&in.err, memory_order_relaxed);
	if (err) {
		/* stays registered (pollers added on some workers point at it): later creates fail
		 * the same way, and pool_layer_stop() frees it */
		in.layer->setup_err = err;
		return pel__fail(err, "cannot add the pool poller to every worker: %s",
				 pel_strerror(err));
	}
	*out = in.layer;
	return 0;
}

/* ---- create and destroy ---- */

/* Bytes of worker @p w's mapping: its objects, then next[] and live[]. */
static size_t
slab_len(const struct pel_pool *pool)
{
	return (size_t)pool->count * pool->stride + (size_t)pool->count * (sizeof(uint32_t) + 1);
}

/*
 * Reserve address space for every slab, PROT_NONE (no memory, no commit charge): a span per
 * worker, a power of two of at least 2 MiB (so a slab can sit on hugepages), the whole aligned
 * to a span.
 */
static int
pool_reserve(struct pel_pool *pool)
{
	size_t span = (size_t)2 << 20, len, head;
	char *raw;

	while (span < slab_len(pool))
		span <<= 1;
	pool->span_shift = (unsigned)__builtin_ctzll(span);
	len = (size_t)pool->nworkers * span;
	raw = mmap(NULL, len + span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		   0);
	if (raw == MAP_FAILED)
		return pel__fail(-ENOMEM, "cannot reserve %zu MiB of address space for the pool's "
				 "%u slabs: %s", (len + span) >> 20, pool->nworkers, strerror(errno));
	/* keep the aligned part, give back what is around it */
	head = (span - ((uintptr_t)raw & (span - 1))) & (span - 1);
	if (head)
		munmap(raw, head);
	if (span - head)
		munmap(raw + head + len, span - head);
	pool->va = raw + head;
	pool->va_len = len;
	return 0;
}

static int
slab_map(struct pel_pool *pool, unsigned w)
{
	struct pel_runtime *rt = pool->rt;
	struct slab *s = pool->slab[w];
	size_t objs = (size_t)pool->count * pool->stride;
	unsigned rflags = pel__rt_flags(rt);
	bool want_huge = (pool->flags & PEL_POOL_F_HUGEPAGES) || (rflags & PEL_F_HUGEPAGES);
	int node = pel__worker_node(rt, w);
	char what[64];
	void *map;
	int err;

	if (!pool->va && (err = pool_reserve(pool)))
		return err;
	snprintf(what, sizeof(what), "pool slab of worker %u", w);
	map = pel__map_at(rt, pool->va + ((size_t)w << pool->span_shift), slab_len(pool), want_huge,
			  what, &s->map_len, &s->huge);
	if (!map)
		return -ENOMEM;
	s->map = map;
	s->node = -1;
#if PEL_HAVE_NUMA
	/* the worker's node, as the runtime read it from sysfs (-1: unknown, no binding) */
	if (node >= 0 && numa_available() >= 0 && node <= numa_max_node()) {
		numa_tonode_memory(map, s->map_len, node);
		s->node = node;
	}
#else
	(void)node;
#endif
	/* written through now, on the bound node: no page fault on the allocation path later */
	memset(map, 0, s->map_len);
	if ((rflags & PEL_F_MLOCK) && mlock(map, s->map_len))
		return pel__fail(-EPERM, "mlock of worker %u's %zu-byte slab refused (%s): raise "
				 "RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK", w, s->map_len,
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
	return 0;
}

/* Unmap the slabs (pel_pool_destroy(), or a failed create). */
static void
pool_unmap_slabs(struct pel_pool *pool)
{
	/* every slab's mapping lies in the reservation: one munmap takes them all */
	if (pool->va)
		munmap(pool->va, pool->va_len);
	pool->va = NULL;
	for (unsigned w = 0; pool->slab && w < pool->nworkers; w++) {
		struct slab *s = pool->slab[w];

		if (s)
			s->map = NULL;
	}
}

static void
pool_free(struct pel_pool *pool)
{
	pool_unmap_slabs(pool);
	if (pool->slab)
		for (unsigned w = 0; w < pool->nworkers; w++)
			free(pool->slab[w]);
	free(pool->slab);
	if (pool->ret)
		for (size_t i = 0; i < (size_t)pool->nworkers * pool->nworkers; i++)
			free(pool->ret[i]);
	free(pool->ret);
	free(pool->pend);
	free(pool->caches);
	free(pool);
}

static struct pel_pool *
pool_alloc(struct pel_runtime *rt, size_t obj_size, unsigned count, unsigned flags)
{
	size_t align = flags & PEL_POOL_F_CACHE_ALIGN ? PEL_CACHELINE : 16;
	struct pel_pool *pool = aligned_alloc(PEL_CACHE_GUARD,
					      (sizeof(*pool) + PEL_CACHE_GUARD - 1) &
					      ~(size_t)(PEL_CACHE_GUARD - 1));
	size_t nn;

	if (!pool)
		return NULL;
	memset(pool, 0, sizeof(*pool));
	pool->rt = rt;
	pool->nworkers = pel_worker_count(rt);
	nn = (size_t)pool->nworkers * pool->nworkers;
	pool->count = count;
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
	/* checked: an address no pel__tls_worker.rt holds, so every call comes out of line */
	atomic_init(&pool->pub.inline_rt, POOL_CHECKS ? (const struct pel_runtime *)pool : rt);
	pool->pub.fast = !POOL_CHECKS;
	pool->pub.cache = (struct pel__pool_cache *const *)pool->caches;
	pool->pend = aligned_alloc(PEL_CACHE_GUARD, (size_t)pool->nworkers * pool->pend_stride *
							    sizeof(struct pend));
	pool->ret = calloc(nn, sizeof(*pool->ret));
	if (!pool->slab || !pool->pend || !pool->caches || !pool->ret)
		goto out_free;
	memset(pool->pend, 0, (size_t)pool->nworkers * pool->pend_stride * sizeof(struct pend));
	for (size_t i = 0; i < nn; i++) {
		if (i / pool->nworkers == i % pool->nworkers)
			continue;	/* no ring from a worker to itself */
		pool->ret[i] = aligned_alloc(PEL_CACHE_GUARD, sizeof(struct ret_ring));
		if (!pool->ret[i])
			goto out_free;
		memset(pool->ret[i], 0, sizeof(struct ret_ring));
	}
	for (unsigned w = 0; w < pool->nworkers; w++) {
		pool->slab[w] = aligned_alloc(PEL_CACHE_GUARD, sizeof(struct slab));
		if (!pool->slab[w])
			goto out_free;
		memset(pool->slab[w], 0, sizeof(struct slab));
		pool->caches[w] = &pool->slab[w]->c;
	}
	return pool;

out_free:
	pool_free(pool);
	return NULL;
}

int
pel_pool_create(struct pel_runtime *rt, size_t obj_size, unsigned per_worker_count,
		unsigned flags, struct pel_pool **out)
{
	struct pool_layer *layer;
	struct pel_pool *pool;
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
	/* from here to pel__layer_leave() pel_destroy() cannot free the workers under us */
	err = pel__layer_enter(rt);
	if (err)
		return err == -EDEADLK ? pel__fail(err, "pel_pool_create() called from a task: it "
						   "sets up every worker and waits for them") : err;
	err = get_layer(rt, &layer);
	if (err)
		goto out_leave;
	for (slot = 0; slot < MAX_POOLS; slot++)
		if (!atomic_load_explicit(&layer->pools[slot], memory_order_relaxed))
			break;
	if (slot == MAX_POOLS) {
		err = pel__fail(-ENOSPC, "this runtime already has %u pools", MAX_POOLS);
		goto out_leave;
	}
	pool = pool_alloc(rt, obj_size, per_worker_count, flags);
	if (!pool) {
		err = pel__fail(-ENOMEM, "out of memory for the pool");
		goto out_leave;
	}
	for (unsigned w = 0; w < pool->nworkers; w++) {
		err = slab_map(pool, w);
		if (err) {
			pool_free(pool);
			goto out_leave;
		}
	}
	pool->slot = slot;
	pel__rt_ref(rt);	/* the handle keeps rt's table (stopping, the layer lock) alive */
	/* release: pairs with flush_poll()'s acquire; the pool is set up */
	atomic_store_explicit(&layer->pools[slot], pool, memory_order_release);
	if (slot >= atomic_load_explicit(&layer->n, memory_order_relaxed))
		/* release: pairs with flush_poll()'s acquire of n */
		atomic_store_explicit(&layer->n, slot + 1, memory_order_release);
	*out = pool;
out_leave:
	pel__layer_leave(rt);
	return err;
}

/*
 * pel_destroy(), after the workers: under the layer lock, every pool still registered gives its
 * slabs back. Handles whose pel_pool_destroy() already came (orphans) are freed whole; the others
 * answer NULL / -ESHUTDOWN until their pel_pool_destroy() frees them.
 */
static void
pool_reclaim(struct pel_pool *pool)
{
	/* pub.fast stays: no thread can take the inline paths any more (they need a worker of
	 * this runtime, and the handle's reference keeps its address from being reused) */
	atomic_store_explicit(&pool->dead, 1, memory_order_relaxed);
	/* The pages go back to the system now; the addresses stay mapped (reading zeros) until
	 * pel_pool_destroy(), so a call from another thread racing this one cannot fault. */
	for (unsigned w = 0; w < pool->nworkers; w++) {
		struct slab *s = pool->slab[w];

		munlock(s->map, s->map_len);	/* locked pages cannot be dropped (PEL_F_MLOCK) */
		madvise(s->map, s->map_len, MADV_DONTNEED);
	}
}

bool
pel__pool_owns(const struct pel_pool *pool, const void *p)
{
	return owner_of(pool, p) >= 0;
}

void
pel__pool_release_at_stop(struct pel_pool *pool)
{
	pool->orphan = true;
}

static void
pool_layer_stop(struct pel_runtime *rt, void *state)
{
	struct pool_layer *layer = state;
	unsigned n = atomic_load_explicit(&layer->n, memory_order_relaxed), open = 0;

	for (unsigned i = 0; i < n; i++) {
		struct pel_pool *pool = atomic_load_explicit(&layer->pools[i], memory_order_relaxed);

		if (!pool)
			continue;
		if (pool->orphan) {
			pool_free(pool);
			pel__rt_unref(rt);	/* pel_destroy() holds a ref: never the last */
		} else {
			pool_reclaim(pool);
			open++;
		}
	}
	if (open)
		pel__rt_log(rt, PEL_LOG_WARNING, "pel_destroy: %u pool%s still open; %s memory is "
			    "reclaimed and %s answer%s NULL until pel_pool_destroy()", open,
			    open > 1 ? "s were" : " was", open > 1 ? "their" : "its",
			    open > 1 ? "they" : "it", open > 1 ? "" : "s");
	free(layer);
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
	struct pel_runtime *rt;
	struct pool_layer *layer;
	uint64_t live = 0;

	if (!pool)
		return;
	rt = pool->rt;
	if (pel__tls_worker.w) {
		pel__rt_log(rt, PEL_LOG_ERROR, "pel_pool_destroy() called from a task on worker %u: "
			    "it waits for every worker; nothing was done. Call it from a thread that "
			    "is not a worker", pel__tls_worker.id);
		return;
	}
	if (pel__layer_lock(rt)) {
		/* the runtime is stopping or gone: its stop reclaims the pool, or has */
		if (atomic_load_explicit(&pool->dead, memory_order_relaxed)) {
			pel__layer_leave(rt);
			pool_free(pool);
			pel__rt_unref(rt);
		} else {
			pool->orphan = true;	/* pool_layer_stop() frees it, after the workers */
			pel__layer_leave(rt);
		}
		return;
	}
	layer = pel__layer_get(rt, &pool_ops);
	/* every worker pushes its partial chains for this pool; then none visits it any more */
	if (pel__run_on_each_worker(rt, flush_task, pool))
		goto orphan;	/* pel_destroy() began: its stop frees the pool */
	/* release: pairs with flush_poll()'s acquire of pools[i]; the barrier below makes sure no
	 * worker still holds the old value */
	atomic_store_explicit(&layer->pools[pool->slot], NULL, memory_order_release);
	if (pel__run_on_each_worker(rt, nothing, NULL)) {
		/* a worker may still be in flush_poll() on it: leave it to pool_layer_stop() */
		atomic_store_explicit(&layer->pools[pool->slot], pool, memory_order_release);
		goto orphan;
	}
	pel__layer_leave(rt);
	for (unsigned w = 0; w < pool->nworkers; w++) {
		struct slab *s = pool->slab[w];

		live += atomic_load(&s->c.allocs) + atomic_load(&s->foreign_allocs) -
			atomic_load(&s->c.frees) - remote_total(pool, w);
	}
	if (live)
		pel__rt_log(rt, PEL_LOG_WARNING, "pel_pool_destroy: %llu objects of this pool are "
			    "still allocated; their memory is gone now", (unsigned long long)live);
	pool_free(pool);
	pel__rt_unref(rt);
	return;
orphan:
	pool->orphan = true;
	pel__layer_leave(rt);
}

int
pel_pool_stats(const struct pel_pool *pool, unsigned worker, struct pel_pool_stats *out)
{
	const struct slab *s;

	if (!pool || !out)
		return pel__fail(-EINVAL, "%s is NULL", pool ? "stats pointer" : "pool");
	if (worker >= pool->nworkers)
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, pool->nworkers);
	if (atomic_load_explicit(&pool->dead, memory_order_relaxed))
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
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
