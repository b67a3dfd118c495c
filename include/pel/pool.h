/* SPDX-License-Identifier: MIT */
/*
 * pel/pool.h - NUMA-local fixed-size object pools, one slab per worker.
 *
 * Each worker owns a slab of per_worker_count objects placed on its NUMA node and written through
 * at creation (no page fault later). A worker allocates from its own slab through a LIFO cache
 * with no atomic operation; an object freed by any other thread goes back to its owner's slab
 * (frees from other workers in batches, flushed at the end of the freeing worker's pass, so none
 * is stranded). Threads that are not workers allocate from the slabs' shared free stacks.
 * pel_alloc_bulk() and pel_free_bulk() move n objects, all or none, the same ways. Nothing on these
 * paths locks or allocates; none makes a syscall, except that a miss from a thread that is not a
 * worker wakes a parked owner holding free objects (once per owner until it has answered). A pool
 * still open at pel_destroy() is reclaimed there; its handle then answers NULL/-ESHUTDOWN until
 * pel_pool_destroy().
 */
#ifndef PEL_POOL_H
#define PEL_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <pel/self.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pel_runtime;
struct pel_pool;	/* opaque */

/** Align objects to 64 bytes (one cache line) instead of 16. */
#define PEL_POOL_F_CACHE_ALIGN	(1u << 0)
/** Back the slabs with 2 MiB hugepages; falls back to normal pages with a logged reason. */
#define PEL_POOL_F_HUGEPAGES	(1u << 1)

/** Largest object, and most objects per worker. */
#define PEL_POOL_MAX_OBJ	(1u << 30)
#define PEL_POOL_MAX_COUNT	(1u << 30)

struct pel_pool_stats {
	uint64_t allocs;	/* objects handed out from this worker's slab (to any thread) */
	uint64_t frees;		/* returned by the owner worker itself */
	uint64_t remote_frees;	/* returned by other threads */
	uint64_t failures;	/* allocations from this slab that found it exhausted */
	uint64_t high_water;	/* most objects of this slab live at once, seen by its owner */
	int node;		/* NUMA node the slab was placed on (-1: not placed) */
	int hugepages;		/* 1 when the slab is on 2 MiB pages */
	uint64_t reserved[6];	/* zero: room for later counters */
};

/**
 * Create a pool: one slab of @p per_worker_count objects of @p obj_size bytes per worker.
 * @param flags  PEL_POOL_F_*; the runtime's PEL_F_HUGEPAGES and PEL_F_MLOCK apply too
 * @return 0; -EINVAL a bad argument (pel_last_error() names it); -ENOMEM; -EDEADLK called from a
 *         task; -ESHUTDOWN runtime stopping.
 * Threads: any but a worker's (it runs a set-up step on each worker and waits for it).
 */
int pel_pool_create(struct pel_runtime *rt, size_t obj_size, unsigned per_worker_count,
		    unsigned flags, struct pel_pool **out);

#ifndef __cplusplus
#include <stdatomic.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PEL__POOL_TSAN 1
#endif
#endif
#ifndef PEL__POOL_TSAN
#define PEL__POOL_TSAN 0
#endif

/* @internal Keep gcc from unrolling a bulk loop into more vectors than there are registers. */
#if defined(__GNUC__) && !defined(__clang__)
#define PEL__UNROLL4	_Pragma("GCC unroll 4")
#else
#define PEL__UNROLL4
#endif

/** @internal Most objects an owner cache holds (fewer when the slab has fewer). */
#define PEL__POOL_CACHE_MAX	256u

/** @internal One worker's owner cache of its slab, laid out by mem/pool.c. */
struct pel__pool_cache {
	unsigned n;			/* objects in obj[], the top at obj[n - 1] */
	unsigned cap;			/* PEL__POOL_CACHE_MAX, or the slab's count if smaller */
	char *base;			/* the slab's objects: [base, end) */
	char *end;
	_Atomic uint64_t allocs;	/* written by the owner only (pel__pool_count()) */
	_Atomic uint64_t frees;
	void *obj[PEL__POOL_CACHE_MAX];	/* LIFO of free objects */
};

/** @internal The head of every struct pel_pool: what the inline fast paths read. */
struct pel__pool_pub {
	/* The runtime whose workers take the inline paths; while every call goes out of line
	 * (checked builds: NDEBUG unset) the pool's own address, which no thread's
	 * pel__tls_worker.rt holds (NULL on threads that are not workers). One compare tells both
	 * "fast" and "a worker of this pool's runtime". Relaxed: set at creation, or by the
	 * owner's slow path when fast is turned on after it (tests). */
	_Atomic(const struct pel_runtime *) inline_rt;
	unsigned fast;			/* 0: checked (NDEBUG unset): live marks, no inline path */
	struct pel__pool_cache *const *cache;	/* [worker] */
};

/*
 * @internal Add @p k to a counter only the calling thread writes; others read it with a relaxed
 * load (pel_pool_stats()). On x86-64 one add to memory: an aligned 8-byte store is never torn,
 * and no other thread writes the line, so a plain read-modify-write is what a relaxed load and
 * store would be, in one instruction instead of three.
 */
static inline void
pel__pool_count(_Atomic uint64_t *ctr, uint64_t k)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !PEL__POOL_TSAN
	__asm__("addq %1, %0" : "+m"(*(uint64_t *)ctr) : "er"(k) : "cc");
#else
	/* relaxed: pairs with the relaxed loads of pel_pool_stats(); only the owner writes */
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + k,
			      memory_order_relaxed);
#endif
}

/** @internal The out-of-line paths: cache empty or full, another thread's object, checks. */
void *pel__pool_alloc_slow(struct pel_pool *pool);
void pel__pool_free_slow(struct pel_pool *pool, void *obj);
int pel__pool_alloc_bulk_slow(struct pel_pool *pool, void **objs, unsigned n);
int pel__pool_free_bulk_slow(struct pel_pool *pool, void *const *objs, unsigned n);
#endif

#if !defined(__cplusplus) && !defined(PEL_POOL_NO_INLINE)
/** @internal Whether the inline paths apply to @p pool on this thread; *@p c its cache if so. */
static inline int
pel__pool_mine(struct pel_pool *pool, struct pel__pool_cache **c)
{
	const struct pel__pool_pub *pp = (const struct pel__pool_pub *)pool;

	/* relaxed: see inline_rt; the cache it leads to was set up before the handle was returned */
	if (__builtin_expect(pool && pel__tls_worker.rt == atomic_load_explicit(&pp->inline_rt,
										 memory_order_relaxed), 1)) {
		*c = pp->cache[pel__tls_worker.id];
		return 1;
	}
	return 0;
}

/**
 * Allocate one object: on a worker of the pool's runtime from that worker's slab; elsewhere from
 * the first slab with a free object, starting at a slab that rotates per thread.
 * @return the object (aligned to 16, or 64 with PEL_POOL_F_CACHE_ALIGN), or NULL when exhausted
 *         (counted in the slab's failures; never blocks), or NULL after the runtime's pel_destroy()
 *         (pel_last_error(): shutting down).
 * Threads: any. No lock, no allocation; no syscall but the one wake described above.
 * Inline: on the owner worker, a pop from its cache (no atomic operation, no call).
 */
static inline void *
pel_alloc(struct pel_pool *pool)
{
	struct pel__pool_cache *c;

	if (pel__pool_mine(pool, &c)) {
		unsigned n = c->n;

		if (__builtin_expect(n != 0, 1)) {
			void *obj = c->obj[--n];

			c->n = n;
			pel__pool_count(&c->allocs, 1);
			return obj;
		}
	}
	return pel__pool_alloc_slow(pool);
}

/**
 * Free an object allocated from @p pool, from any thread. NULL is ignored. In builds of libpel
 * without NDEBUG a double free or a pointer that is not from this pool is reported through the
 * runtime's log and ignored, leaving the pool intact; a foreign pointer is refused in every build.
 * Threads: any. No lock, no syscall, no allocation.
 * Inline: the owner worker's own object goes back on its cache (no atomic operation, no call).
 */
static inline void
pel_free(struct pel_pool *pool, void *obj)
{
	struct pel__pool_cache *c;

	if (pel__pool_mine(pool, &c)) {
		unsigned n = c->n;

		if (__builtin_expect((char *)obj >= c->base && (char *)obj < c->end &&
				     n < PEL__POOL_CACHE_MAX, 1)) {
			c->obj[n] = obj;
			c->n = n + 1;
			pel__pool_count(&c->frees, 1);
			return;
		}
	}
	pel__pool_free_slow(pool, obj);
}

/**
 * Allocate @p n objects into @p objs[0 .. n-1], all or none (DPDK's rte_mempool_get_bulk()):
 * on a worker of the pool's runtime from that worker's slab (its cache, what other workers
 * returned, its shared stack), elsewhere from the slabs' shared stacks, slab after slab, starting
 * at a slab that rotates per thread.
 * @param pool  the pool
 * @param objs  room for @p n pointers (on failure it may have been written: read nothing)
 * @param n     how many; 0 allocates nothing and returns 0
 * @return 0, all @p n allocated (each slab's allocs grow by what it gave); -ENOBUFS fewer than
 *         @p n free to this thread, nothing allocated (one failure counted; never blocks);
 *         -EINVAL @p pool or @p objs NULL (also when @p n is 0); -ESHUTDOWN the runtime has
 *         stopped.
 * Threads: any. No lock, no syscall, no allocation.
 * Inline: on the owner worker, when its cache holds @p n, one copy out of it (no atomic
 * operation, no call).
 */
static inline int
pel_alloc_bulk(struct pel_pool *pool, void **objs, unsigned n)
{
	struct pel__pool_cache *c;

	if (pel__pool_mine(pool, &c) && __builtin_expect(objs != NULL, 1)) {
		unsigned have = c->n;

		if (__builtin_expect(n <= have, 1)) {
			have -= n;
			memcpy(objs, &c->obj[have], (size_t)n * sizeof(*objs));
			c->n = have;
			pel__pool_count(&c->allocs, n);
			return 0;
		}
	}
	return pel__pool_alloc_bulk_slow(pool, objs, n);
}

/**
 * Free @p n objects of @p pool, from any thread, all or none: each goes where pel_free() would
 * put it (the owner's cache; another worker's return ring; a non-worker's chain, pushed now).
 * NULL entries are skipped. If one entry is not an object of this pool, nothing is freed: it is
 * named in the runtime's log and in pel_last_error(), and -EINVAL returned. In builds of libpel without NDEBUG a double
 * free is logged and that object skipped, as by pel_free(). Freeing an object twice in one call
 * is a double free.
 * @param pool  the pool
 * @param objs  @p n objects allocated from @p pool (by any thread), or NULL
 * @param n     how many; 0 frees nothing and returns 0
 * @return 0 all freed; -EINVAL @p pool or @p objs NULL, or an entry not of this pool (nothing
 *         freed); -ESHUTDOWN the runtime has stopped.
 * Threads: any. No lock, no syscall, no allocation.
 * Inline: on the owner worker, when all @p n are its own and its cache has room, one range
 * check per object and one copy into the cache (no atomic operation, no call).
 */
static inline int
pel_free_bulk(struct pel_pool *pool, void *const *objs, unsigned n)
{
	struct pel__pool_cache *c;

	if (pel__pool_mine(pool, &c) && __builtin_expect(objs != NULL, 1)) {
		unsigned have = c->n;

		if (__builtin_expect(n <= PEL__POOL_CACHE_MAX - have, 1)) {
			void **top = &c->obj[have];
			uintptr_t base = (uintptr_t)c->base;
			int64_t last = c->end - c->base - 1, bad = 0;

			/* copied above the cache's top (it counts once n moves) and checked on the
			 * way: d = obj - base is in [0, last] iff neither d nor last - d has its
			 * sign bit set (base and last are below 2^62) */
			PEL__UNROLL4
			for (unsigned i = 0; i < n; i++) {
				int64_t d = (int64_t)((uintptr_t)objs[i] - base);

				top[i] = objs[i];
				bad |= d | (last - d);
			}
			if (__builtin_expect(bad >= 0, 1)) {
				c->n = have + n;
				pel__pool_count(&c->frees, n);
				return 0;
			}
		}
	}
	return pel__pool_free_bulk_slow(pool, objs, n);
}
#else
/** Allocate one object (see the C inline version's doc). */
void *pel_alloc(struct pel_pool *pool);
/** Free an object from any thread (see the C inline version's doc). */
void pel_free(struct pel_pool *pool, void *obj);
/** Allocate @p n objects, all or none (see the C inline version's doc): 0; -ENOBUFS; -EINVAL. */
int pel_alloc_bulk(struct pel_pool *pool, void **objs, unsigned n);
/** Free @p n objects, all or none (see the C inline version's doc): 0; -EINVAL. */
int pel_free_bulk(struct pel_pool *pool, void *const *objs, unsigned n);
#endif

/**
 * Destroy a pool: logs a warning if objects are still allocated. NULL is ignored. After the
 * runtime's pel_destroy() (which reclaimed the pool) it frees what is left of the handle.
 * Threads: any but a worker's (from a task: logged as an error, nothing done); no other thread may
 * use the pool meanwhile.
 */
void pel_pool_destroy(struct pel_pool *pool);

/** @return 0; -EINVAL bad worker or NULL argument. Any thread, any time, no lock. */
int pel_pool_stats(const struct pel_pool *pool, unsigned worker, struct pel_pool_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* PEL_POOL_H */
