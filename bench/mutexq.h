/* SPDX-License-Identifier: MIT */
/*
 * bench/mutexq.h - the baseline: a bounded task queue under one mutex, with a condition variable
 * per direction, as a thread pool usually has. Both sides block when they cannot go on; a push
 * or pop signals the other side after unlocking (glibc's pthread_cond_signal() is a load when
 * nobody waits). Inline, like the rings it is compared with.
 */
#ifndef PEL_BENCH_MUTEXQ_H
#define PEL_BENCH_MUTEXQ_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <pel/ring.h>

struct pel_bench_mq {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	uint64_t head;			/* next to pop */
	uint64_t tail;			/* next to push */
	uint64_t size;
	uint64_t mask;
	bool closed;
	struct pel_task *slot;
};

/** @return 0; ENOMEM; EINVAL when @p slots is not a power of two. */
static inline int
pel_bench_mq_init(struct pel_bench_mq *q, unsigned slots)
{
	if (!slots || (slots & (slots - 1)))
		return EINVAL;
	q->slot = calloc(slots, sizeof(*q->slot));
	if (!q->slot)
		return ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->head = 0;
	q->tail = 0;
	q->size = slots;
	q->mask = slots - 1;
	q->closed = false;
	return 0;
}

static inline void
pel_bench_mq_destroy(struct pel_bench_mq *q)
{
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->not_empty);
	pthread_mutex_destroy(&q->lock);
	free(q->slot);
}

/**
 * Push up to @p n tasks, waiting until at least one fits.
 * @return how many were pushed; 0 when the queue is closed.
 */
static inline unsigned
pel_bench_mq_push(struct pel_bench_mq *q, const struct pel_task *t, unsigned n)
{
	unsigned i, room;

	pthread_mutex_lock(&q->lock);
	while (!q->closed && q->tail - q->head == q->size)
		pthread_cond_wait(&q->not_full, &q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	room = (unsigned)(q->size - (q->tail - q->head));
	if (room > n)
		room = n;
	for (i = 0; i < room; i++)
		q->slot[(q->tail + i) & q->mask] = t[i];
	q->tail += room;
	pthread_mutex_unlock(&q->lock);
	pthread_cond_signal(&q->not_empty);
	return room;
}

/**
 * Pop up to @p n tasks, waiting until there is at least one.
 * @return how many were popped; 0 when the queue is closed and empty.
 */
static inline unsigned
pel_bench_mq_pop(struct pel_bench_mq *q, struct pel_task *out, unsigned n)
{
	unsigned i, have;

	pthread_mutex_lock(&q->lock);
	while (!q->closed && q->tail == q->head)
		pthread_cond_wait(&q->not_empty, &q->lock);
	have = (unsigned)(q->tail - q->head);
	if (have > n)
		have = n;
	for (i = 0; i < have; i++)
		out[i] = q->slot[(q->head + i) & q->mask];
	q->head += have;
	pthread_mutex_unlock(&q->lock);
	if (have)
		pthread_cond_signal(&q->not_full);
	return have;
}

/** Wake both sides for good: pushes fail, pops drain what is left then return 0. */
static inline void
pel_bench_mq_close(struct pel_bench_mq *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
}

#endif /* PEL_BENCH_MUTEXQ_H */
