/* SPDX-License-Identifier: MIT */
/*
 * pel/ring.h - inline single-producer single-consumer task ring.
 *
 * A slot holds one task by value: 16 bytes, {fn, arg}. The slot's fn word is also its "full" flag:
 * bit 63 carries the lap parity of the position that wrote it (no user-space code address on Linux
 * has bit 63 set). The consumer polls the slot at its head and never reads the producer's index;
 * the producer keeps a cached copy of the consumer's head and reads the consumer's line only when
 * that copy says the ring is full. On the common path each side touches only its own line and the
 * slots, so a handoff costs the transfer of the slot's cache line and nothing else. The consumer
 * never writes a slot, so slot lines only ever travel producer -> consumer.
 *
 * Consumers see a task as soon as its slot word is stored; the head index is published by
 * pel_ring_consume(), which a consumer may delay until after it has run the tasks it peeked (pel's
 * workers do, so that head counts completed tasks).
 */
#ifndef PEL_RING_H
#define PEL_RING_H

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <pel/task.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEL_CACHELINE		64
#define PEL_CACHE_ALIGNED	alignas(PEL_CACHELINE)
/* Adjacent-line prefetchers pull 128-byte pairs: keep state written by different threads apart. */
#define PEL_CACHE_GUARD		128

#if defined(__GNUC__)
#define pel_likely(x)		__builtin_expect(!!(x), 1)
#define pel_unlikely(x)		__builtin_expect(!!(x), 0)
#else
#define pel_likely(x)		(x)
#define pel_unlikely(x)		(x)
#endif

/** Largest ring, in slots. */
#define PEL_RING_MAX_SLOTS	(1u << 24)

#define PEL__RING_LAP_BIT	((uintptr_t)1 << 63)

/** @internal One slot: the fn word (with the lap bit) and the argument. */
struct pel_ring_slot {
	_Atomic uintptr_t word;
	void *arg;
};

/**
 * An SPSC ring. Lay it out with pel_ring_memsize() bytes, aligned to PEL_CACHE_GUARD, and
 * pel_ring_init(). Exactly one thread pushes and one thread pops at any time; a change of thread on
 * either side needs a happens-before edge between the old and the new thread (a mutex, a join).
 */
struct pel_ring {
	/* Producer side: written only by the producer. */
	alignas(PEL_CACHE_GUARD) struct {
		_Atomic uint64_t tail;		/* next position to write */
		uint64_t head_cache;		/* last cons.head seen */
		_Atomic uint64_t full;		/* pushes refused because the ring was full */
		uint64_t size;			/* slots, fixed after init */
		uint64_t mask;			/* size - 1 */
	} prod;
	/* Consumer side: written only by the consumer. */
	alignas(PEL_CACHE_GUARD) struct {
		_Atomic uint64_t head;		/* next position to read; tasks below it are done */
		uint64_t size;
		uint64_t mask;
	} cons;
	alignas(PEL_CACHE_GUARD) struct pel_ring_slot slot[];
};

_Static_assert(sizeof(struct pel_ring_slot) == 16, "a ring slot is two pointers");
_Static_assert(offsetof(struct pel_ring, cons) % PEL_CACHE_GUARD == 0, "cons shares prod's lines");
_Static_assert(offsetof(struct pel_ring, slot) % PEL_CACHE_GUARD == 0, "slots share cons's lines");
_Static_assert(sizeof(uintptr_t) == 8, "pel's ring needs 64-bit pointers");

/**
 * Bytes a ring of @p slots slots needs, a multiple of PEL_CACHE_GUARD (so
 * aligned_alloc(PEL_CACHE_GUARD, pel_ring_memsize(n)) is valid), or 0 when @p slots is not a power
 * of two in 1 .. PEL_RING_MAX_SLOTS.
 */
static inline size_t
pel_ring_memsize(unsigned slots)
{
	size_t b;

	if (slots == 0 || (slots & (slots - 1)) || slots > PEL_RING_MAX_SLOTS)
		return 0;
	b = sizeof(struct pel_ring) + (size_t)slots * sizeof(struct pel_ring_slot);
	return (b + PEL_CACHE_GUARD - 1) & ~(size_t)(PEL_CACHE_GUARD - 1);
}

/**
 * Initialise a ring in @p mem (pel_ring_memsize(@p slots) bytes, aligned to PEL_CACHE_GUARD).
 * @return 0; -EINVAL when @p slots is not a power of two in 1 .. PEL_RING_MAX_SLOTS or @p r is
 *         NULL or misaligned.
 * Threads: before either side uses the ring.
 */
static inline int
pel_ring_init(struct pel_ring *r, unsigned slots)
{
	size_t bytes = pel_ring_memsize(slots);

	if (!bytes || !r || ((uintptr_t)r % PEL_CACHE_GUARD))
		return -EINVAL;
	for (size_t i = 0; i < slots; i++) {
		atomic_init(&r->slot[i].word, 0);
		r->slot[i].arg = NULL;
	}
	atomic_init(&r->prod.tail, 0);
	atomic_init(&r->prod.full, 0);
	r->prod.head_cache = 0;
	r->prod.size = slots;
	r->prod.mask = slots - 1;
	atomic_init(&r->cons.head, 0);
	r->cons.size = slots;
	r->cons.mask = slots - 1;
	return 0;
}

/** @internal Lap bit of position @p pos: set on even laps, clear on odd ones. */
static inline uintptr_t
pel__ring_lap(uint64_t pos, uint64_t size)
{
	return (pos & size) ? 0 : PEL__RING_LAP_BIT;
}

/** @internal Free slots as the producer sees them; re-reads cons.head only when short of @p n. */
static inline uint64_t
pel__ring_free(struct pel_ring *r, uint64_t tail, uint64_t n)
{
	uint64_t free = r->prod.size - (tail - r->prod.head_cache);

	if (pel_likely(free >= n))
		return free;
	/* acquire: pairs with the release of cons.head in pel_ring_consume(); slots below it are
	 * read and may be overwritten */
	r->prod.head_cache = atomic_load_explicit(&r->cons.head, memory_order_acquire);
	return r->prod.size - (tail - r->prod.head_cache);
}

/** @internal Count one refused push; only the producer writes the counter. */
static inline void
pel__ring_count_full(struct pel_ring *r)
{
	uint64_t f = atomic_load_explicit(&r->prod.full, memory_order_relaxed);

	atomic_store_explicit(&r->prod.full, f + 1, memory_order_relaxed);
}

/** @internal Store one task at @p pos; the caller has checked there is room. */
static inline void
pel__ring_put(struct pel_ring *r, uint64_t pos, pel_task_fn fn, void *arg)
{
	struct pel_ring_slot *s = &r->slot[pos & r->prod.mask];

	s->arg = arg;
	/* release: pairs with the acquire of the slot word in pel_ring_peek_burst(); publishes arg */
	atomic_store_explicit(&s->word, (uintptr_t)fn | pel__ring_lap(pos, r->prod.size),
			      memory_order_release);
}

/** @internal fn is usable as a slot word: not NULL, bit 63 clear. */
static inline int
pel__ring_fn_ok(pel_task_fn fn)
{
	return (intptr_t)(uintptr_t)fn > 0;
}

/**
 * Push one task.
 * @param r   the ring
 * @param fn  not NULL
 * @param arg passed to @p fn
 * @return 0 pushed; -EAGAIN ring full, nothing pushed (counted in the ring's full counter);
 *         -EINVAL @p fn is NULL.
 * Threads: the ring's producer only. No lock, no syscall, no allocation.
 */
static inline int
pel_ring_push(struct pel_ring *r, pel_task_fn fn, void *arg)
{
	uint64_t tail = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);

	if (pel_unlikely(!pel__ring_fn_ok(fn)))
		return -EINVAL;
	if (pel_unlikely(pel__ring_free(r, tail, 1) == 0)) {
		pel__ring_count_full(r);
		return -EAGAIN;
	}
	pel__ring_put(r, tail, fn, arg);
	/* relaxed: tail is bookkeeping for observers; the slot word carries the data */
	atomic_store_explicit(&r->prod.tail, tail + 1, memory_order_relaxed);
	return 0;
}

/** @internal How many of the first @p n tasks have a usable fn. */
static inline unsigned
pel__ring_valid_prefix(const struct pel_task *t, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (pel_unlikely(!pel__ring_fn_ok(t[i].fn)))
			break;
	return i;
}

/**
 * @internal Store up to @p n tasks at tail, tail + 1, ..., in position order (pel_ring_peek_burst()
 * relies on it: a ready slot means every slot before it is ready), stopping at a task whose fn is
 * unusable. The lap bit is worked out once per piece (at most two, split where the ring wraps).
 * @return how many were stored.
 */
static inline unsigned
pel__ring_put_range(struct pel_ring *r, uint64_t tail, const struct pel_task *t, unsigned n)
{
	const uint64_t mask = r->prod.mask, size = r->prod.size;
	unsigned done = 0;

	while (done < n) {
		uint64_t pos = tail + done, first = pos & mask;
		unsigned k = size - first < n - done ? (unsigned)(size - first) : n - done;
		uintptr_t lap = pel__ring_lap(pos, size);
		struct pel_ring_slot *s = &r->slot[first];
		const struct pel_task *src = t + done;

		for (unsigned i = 0; i < k; i++) {
			if (pel_unlikely(!pel__ring_fn_ok(src[i].fn)))
				return done + i;
			s[i].arg = src[i].arg;
			/* release: pairs with the acquire in pel_ring_peek_burst(); publishes arg */
			atomic_store_explicit(&s[i].word, (uintptr_t)src[i].fn | lap,
					      memory_order_release);
		}
		done += k;
	}
	return n;
}

/**
 * Push up to @p n tasks, in order, as many as fit (burst semantics).
 * @return how many were pushed: the first that many of @p t. Stops early at a task whose fn is
 *         NULL. Fewer than @p n because the ring filled counts once in the full counter.
 * Threads: the ring's producer only.
 */
static inline unsigned
pel_ring_push_burst(struct pel_ring *r, const struct pel_task *t, unsigned n)
{
	uint64_t tail = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
	uint64_t free = pel__ring_free(r, tail, n);
	unsigned room = free < n ? (unsigned)free : n, m;

	m = pel__ring_put_range(r, tail, t, room);
	if (pel_unlikely(room < n && m == room))
		pel__ring_count_full(r);
	atomic_store_explicit(&r->prod.tail, tail + m, memory_order_relaxed);
	return m;
}

/**
 * Push all @p n tasks or none (bulk semantics).
 * @return 0 all pushed; -EAGAIN not enough room, nothing pushed; -EINVAL a fn is NULL, nothing
 *         pushed.
 * Threads: the ring's producer only.
 */
static inline int
pel_ring_push_bulk(struct pel_ring *r, const struct pel_task *t, unsigned n)
{
	uint64_t tail = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);

	if (pel_unlikely(pel__ring_valid_prefix(t, n) < n))
		return -EINVAL;
	if (pel_unlikely(pel__ring_free(r, tail, n) < n)) {
		pel__ring_count_full(r);
		return -EAGAIN;
	}
	(void)pel__ring_put_range(r, tail, t, n);	/* all valid: checked above */
	atomic_store_explicit(&r->prod.tail, tail + n, memory_order_relaxed);
	return 0;
}

/**
 * Copy up to @p n ready tasks, oldest first, without consuming them.
 * @return how many were copied to @p out. Call pel_ring_consume() with at most that many before
 *         peeking again; until then the producer cannot reuse those slots.
 * Threads: the ring's consumer only.
 */
static inline unsigned
pel_ring_peek_burst(struct pel_ring *r, struct pel_task *out, unsigned n)
{
	uint64_t head = atomic_load_explicit(&r->cons.head, memory_order_relaxed);
	const uint64_t mask = r->cons.mask, size = r->cons.size;
	unsigned i;

	if (pel_unlikely(n > size))
		n = (unsigned)size;	/* a window past a lap would probe an older position */
	if (n == 0)
		return 0;
	/* empty: one load of the slot at head, the common case of a polling consumer */
	if ((atomic_load_explicit(&r->slot[head & mask].word, memory_order_relaxed) &
	     PEL__RING_LAP_BIT) != pel__ring_lap(head, size))
		return 0;
	if (n > 1) {
		uint64_t last = head + n - 1;
		/* acquire: pairs with the release in pel__ring_put(); the producer stores in position
		 * order, so the last slot ready means every slot before it is */
		uintptr_t w = atomic_load_explicit(&r->slot[last & mask].word, memory_order_acquire);

		if ((w & PEL__RING_LAP_BIT) == pel__ring_lap(last, size)) {
			/* the window is stable until we consume it: copy it whole, then drop the lap
			 * bits (at most two pieces, split where the ring wraps) */
			uint64_t first = head & mask, n1 = size - first < n ? size - first : n;

			__builtin_memcpy(out, (const void *)&r->slot[first], n1 * sizeof(*out));
			if (n1 < n)
				__builtin_memcpy(out + n1, (const void *)&r->slot[0],
						 (n - n1) * sizeof(*out));
			for (i = 0; i < n; i++)
				out[i].fn = (pel_task_fn)((uintptr_t)out[i].fn & ~PEL__RING_LAP_BIT);
			return n;
		}
	}
	for (i = 0; i < n; i++) {
		uint64_t pos = head + i;
		struct pel_ring_slot *s = &r->slot[pos & mask];
		/* acquire: pairs with the release in pel__ring_put(); arg is the one stored with it */
		uintptr_t w = atomic_load_explicit(&s->word, memory_order_acquire);

		if ((w & PEL__RING_LAP_BIT) != pel__ring_lap(pos, size))
			break;
		out[i].fn = (pel_task_fn)(w & ~PEL__RING_LAP_BIT);
		out[i].arg = s->arg;
	}
	return i;
}

/**
 * Release @p n peeked tasks to the producer; their slots may then be overwritten.
 * Threads: the ring's consumer only.
 */
static inline void
pel_ring_consume(struct pel_ring *r, unsigned n)
{
	uint64_t head = atomic_load_explicit(&r->cons.head, memory_order_relaxed);

	/* release: pairs with the acquire in pel__ring_free(); our reads of the slots are done */
	atomic_store_explicit(&r->cons.head, head + n, memory_order_release);
}

/**
 * Pop up to @p n tasks, oldest first (burst semantics): peek and consume at once.
 * @return how many were popped into @p out.
 * Threads: the ring's consumer only.
 */
static inline unsigned
pel_ring_pop_burst(struct pel_ring *r, struct pel_task *out, unsigned n)
{
	unsigned got = pel_ring_peek_burst(r, out, n);

	if (got)
		pel_ring_consume(r, got);
	return got;
}

/**
 * Pop one task.
 * @return 0 popped into @p out; -EAGAIN ring empty.
 * Threads: the ring's consumer only.
 */
static inline int
pel_ring_pop(struct pel_ring *r, struct pel_task *out)
{
	return pel_ring_pop_burst(r, out, 1) ? 0 : -EAGAIN;
}

/** Tasks pushed and not yet consumed; exact only when both sides are quiet. Any thread. */
static inline uint64_t
pel_ring_count(struct pel_ring *r)
{
	uint64_t head = atomic_load_explicit(&r->cons.head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->prod.tail, memory_order_acquire);

	/* the consumer may run ahead of tail, which the producer stores after the slot */
	return tail > head ? tail - head : 0;
}

/** Pushes refused because the ring was full, since init. Any thread. */
static inline uint64_t
pel_ring_full_count(struct pel_ring *r)
{
	return atomic_load_explicit(&r->prod.full, memory_order_relaxed);
}

#ifdef __cplusplus
}
#endif

#endif /* PEL_RING_H */
