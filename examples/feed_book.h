/* SPDX-License-Identifier: MIT */
/*
 * examples/feed_book.h - the demo service's logic, shared by the pel service (pel-feed), its
 * epoll + thread-pool baseline (feed-pool) and the sequential replay that checks them
 * (feed-replay): a per-instrument order book, sequence checking, a risk rule and the scoring
 * models one request in N fans out to. See docs/demo.md.
 *
 * Nothing here knows about threads: one book is only ever touched by one thread at a time (the
 * worker or pool thread that owns the instrument), and the scoring models read a snapshot.
 *
 * The book keeps the best FEED_LEVELS price levels a side: bids in descending price, asks in
 * ascending price. An update sets the quantity at its price (quantity 0 removes the level); a
 * new level worse than a full side's worst is not kept (counted: level_drops).
 *
 * Sequence numbers (per instrument, from 1): an update whose seq is not above the last one seen
 * is stale (duplicated or reordered by the network): counted, not applied. A seq that skips
 * ahead counts the skipped ones as gaps (lost on the way). An update the service dropped as late
 * still advances the sequence (feed_book_skip()): it was received, not lost.
 */
#ifndef PEL_EXAMPLES_FEED_BOOK_H
#define PEL_EXAMPLES_FEED_BOOK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "feed.h"

#define FEED_LEVELS		16u	/* price levels kept a side */
#define FEED_MODELS_MAX		64u	/* scoring models one fanned-out request runs */
#define FEED_RULE_BAND		500	/* the price band of the risk rule: +-5.00% of the mid, bp */
#define FEED_RULE_MAX_QTY	900u	/* the risk rule's largest order */

struct feed_level {
	int64_t price;
	uint32_t qty;
	uint32_t pad;
};

struct feed_book {
	uint64_t last_seq;	/* highest sequence received (applied or dropped late) */
	uint64_t updates;	/* applied */
	uint64_t late;		/* dropped late: sequence advanced, book untouched */
	uint64_t gaps;		/* sequence numbers never received */
	uint64_t stale;		/* received at or below last_seq: not applied */
	uint64_t level_drops;	/* new levels outside a full side's best FEED_LEVELS */
	uint64_t flagged;	/* updates the risk rule flagged */
	uint64_t scored;	/* fan-outs completed */
	uint64_t score_sum;	/* sum of their aggregated scores, mod 2^64 */
	uint32_t nbid, nask;
	struct feed_level bid[FEED_LEVELS];	/* best (highest) first */
	struct feed_level ask[FEED_LEVELS];	/* best (lowest) first */
};

/* What the scoring models read: the top of a book, copied when the fan-out starts. */
struct feed_snapshot {
	uint32_t nbid, nask;
	struct feed_level bid[FEED_LEVELS];
	struct feed_level ask[FEED_LEVELS];
	int64_t price;		/* the update's */
	uint32_t qty;
	uint8_t side;
};

/* What feed_book_apply() says about an update. */
enum feed_apply {
	FEED_APPLIED = 0,
	FEED_STALE = 1,		/* seq not above last_seq: not applied */
};

static inline void
feed_book_init(struct feed_book *b)
{
	memset(b, 0, sizeof(*b));
}

/* Count a sequence number received: gaps for the ones skipped. @return 0, or 1 when stale. */
static inline int
feed_book_seq(struct feed_book *b, uint64_t seq)
{
	if (seq <= b->last_seq) {
		b->stale++;
		return 1;
	}
	b->gaps += seq - b->last_seq - 1;
	b->last_seq = seq;
	return 0;
}

/* Set @p qty at @p price on one side (@p desc: bids, best = highest). */
static inline void
feed_side_set(struct feed_level *lv, uint32_t *n, int desc, int64_t price, uint32_t qty,
	      uint64_t *drops)
{
	uint32_t i = 0;

	/* first level not better than price */
	while (i < *n && (desc ? lv[i].price > price : lv[i].price < price))
		i++;
	if (i < *n && lv[i].price == price) {
		if (qty) {
			lv[i].qty = qty;
		} else {
			memmove(&lv[i], &lv[i + 1], (*n - i - 1) * sizeof(*lv));
			(*n)--;
		}
		return;
	}
	if (!qty)
		return;		/* removing a level the book does not hold */
	if (i == FEED_LEVELS) {
		(*drops)++;	/* worse than a full side's worst */
		return;
	}
	if (*n == FEED_LEVELS)
		(*n)--;		/* the worst level falls off */
	memmove(&lv[i + 1], &lv[i], (*n - i) * sizeof(*lv));
	lv[i] = (struct feed_level){ .price = price, .qty = qty };
	(*n)++;
}

/* Apply a book update @p r (kind PEL_FEED_BOOK) in sequence order. */
static inline enum feed_apply
feed_book_apply(struct feed_book *b, const struct pel_feed_req *r)
{
	if (feed_book_seq(b, r->seq))
		return FEED_STALE;
	if (r->side == PEL_FEED_BID)
		feed_side_set(b->bid, &b->nbid, 1, r->price, r->quantity, &b->level_drops);
	else
		feed_side_set(b->ask, &b->nask, 0, r->price, r->quantity, &b->level_drops);
	b->updates++;
	return FEED_APPLIED;
}

/* An update dropped as late: its sequence is received, the book untouched. */
static inline void
feed_book_skip(struct feed_book *b, uint64_t seq)
{
	if (!feed_book_seq(b, seq))
		b->late++;
}

/*
 * The risk rule, on the book after the update: flag a crossed book (best bid at or above best
 * ask), an order priced outside the band around the mid, or one larger than FEED_RULE_MAX_QTY.
 * @return 1 flagged, 0 passed.
 */
static inline int
feed_rule(struct feed_book *b, const struct pel_feed_req *r)
{
	int flag = 0;

	if (r->quantity > FEED_RULE_MAX_QTY)
		flag = 1;
	if (b->nbid && b->nask) {
		int64_t bb = b->bid[0].price, ba = b->ask[0].price, mid = (bb + ba) / 2;

		if (bb >= ba)
			flag = 1;
		else if (mid > 0 && (r->price - mid) * 10000 / mid > FEED_RULE_BAND)
			flag = 1;
		else if (mid > 0 && (mid - r->price) * 10000 / mid > FEED_RULE_BAND)
			flag = 1;
	}
	b->flagged += (uint64_t)flag;
	return flag;
}

/* Whether request @p req_id fans out (one in @p every; 0: never). */
static inline int
feed_fans_out(uint64_t req_id, unsigned every)
{
	return every && req_id % every == every - 1;
}

static inline void
feed_snapshot_take(const struct feed_book *b, const struct pel_feed_req *r,
		   struct feed_snapshot *s)
{
	s->nbid = b->nbid;
	s->nask = b->nask;
	memcpy(s->bid, b->bid, sizeof(s->bid));
	memcpy(s->ask, b->ask, sizeof(s->ask));
	s->price = r->price;
	s->qty = r->quantity;
	s->side = r->side;
}

static inline uint64_t
feed_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/*
 * Scoring model @p m on a snapshot: a deterministic function of the book and the order (a
 * stand-in for a model's features: depth-weighted imbalance and distance from the touch, mixed
 * through @p rounds passes). Same inputs, same score, on any thread.
 */
static inline uint64_t
feed_score(const struct feed_snapshot *s, unsigned m, unsigned rounds)
{
	uint64_t h = feed_mix((uint64_t)m * UINT64_C(0x9e3779b97f4a7c15) + s->side);

	for (unsigned k = 0; k < rounds; k++) {
		int64_t imb = 0;

		for (uint32_t i = 0; i < s->nbid; i++)
			imb += (int64_t)s->bid[i].qty * (int64_t)(FEED_LEVELS - i) * (m + 1);
		for (uint32_t i = 0; i < s->nask; i++)
			imb -= (int64_t)s->ask[i].qty * (int64_t)(FEED_LEVELS - i) * (m + 1);
		if (s->nbid)
			/* prices within +-2^40: the difference fits; the product may wrap (a
			 * hash input): unsigned, defined */
			imb = (int64_t)((uint64_t)imb + (uint64_t)(s->price - s->bid[0].price) *
					(uint64_t)s->qty);
		h = feed_mix(h ^ (uint64_t)imb ^ ((uint64_t)k << 56));
	}
	return h;
}

/* The aggregate of the models' scores: their sum mod 2^64 (what parallel-for's reduce does). */
static inline uint64_t
feed_score_all(const struct feed_snapshot *s, unsigned models, unsigned rounds)
{
	uint64_t sum = 0;

	for (unsigned m = 0; m < models; m++)
		sum += feed_score(s, m, rounds);
	return sum;
}

/* A fan-out finished with @p aggregate. */
static inline void
feed_book_scored(struct feed_book *b, uint64_t aggregate)
{
	b->scored++;
	b->score_sum += aggregate;
}

/*
 * An update answered by one thread from start to end: applied, then (when not stale) the rule,
 * then for one request in @p every each of @p models in turn, the aggregate added to the book.
 * feed-pool's pool threads and feed-replay do this; pel-feed fans the models out instead.
 * @return 1 the models ran (a fan-out), 0 they did not.
 */
static inline int
feed_book_process(struct feed_book *b, const struct pel_feed_req *r, unsigned every,
		  unsigned models, unsigned rounds)
{
	struct feed_snapshot s;

	if (feed_book_apply(b, r) != FEED_APPLIED)
		return 0;
	feed_rule(b, r);
	if (!feed_fans_out(r->req_id, every))
		return 0;
	feed_snapshot_take(b, r, &s);
	feed_book_scored(b, feed_score_all(&s, models, rounds));
	return 1;
}

/*
 * Write book @p b of @p instrument as one line (nothing for a book that never saw an update):
 *   instrument last_seq updates late gaps stale level_drops flagged scored score_sum
 *   b price:qty ... a price:qty ...
 * The replay writes the same lines; a diff of the two files is the consistency check.
 */
static inline void
feed_book_dump(FILE *f, uint32_t instrument, const struct feed_book *b)
{
	if (!b->last_seq && !b->stale)
		return;
	fprintf(f, "%" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %"
		PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " b", instrument, b->last_seq,
		b->updates, b->late, b->gaps, b->stale, b->level_drops, b->flagged, b->scored,
		b->score_sum);
	for (uint32_t i = 0; i < b->nbid; i++)
		fprintf(f, " %" PRId64 ":%" PRIu32, b->bid[i].price, b->bid[i].qty);
	fputs(" a", f);
	for (uint32_t i = 0; i < b->nask; i++)
		fprintf(f, " %" PRId64 ":%" PRIu32, b->ask[i].price, b->ask[i].qty);
	fputc('\n', f);
}

/* Busy-spin @p ns of CLOCK_MONOTONIC time: a synthetic request's service. */
static inline void
feed_spin(uint64_t ns)
{
	struct timespec t0, t;
	uint64_t d;

	if (!ns)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
		d = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t.tv_nsec -
		    (uint64_t)t0.tv_nsec;
	} while (d < ns);
}

/* CLOCK_MONOTONIC in ns: the clock of the feed's send_ns (vDSO: no syscall). */
static inline uint64_t
feed_mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

#endif /* PEL_EXAMPLES_FEED_BOOK_H */
