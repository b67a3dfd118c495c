/* SPDX-License-Identifier: MIT */
/*
 * tests/test_feed_book.c - the demo service's logic of examples/feed_book.h at its edges:
 * removing a level the book lacks, a full side dropping a worse level and evicting its worst for
 * a better one, stale and skipped sequence numbers and gaps; then the levels' order on both
 * sides, replacing and removing, the risk rule's three flags, the scoring models' determinism,
 * the fan-out's one in N, the dump of an empty and a full book, and a whole update processed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "feed_book.h"

static struct pel_feed_req
upd(uint64_t seq, uint8_t side, int64_t price, uint32_t qty)
{
	return (struct pel_feed_req){ .kind = PEL_FEED_BOOK, .side = side, .instrument = 3,
				      .quantity = qty, .price = price, .seq = seq,
				      .req_id = seq - 1 };
}

/* Apply an update with the next sequence number; it must be applied. */
static void
put(struct feed_book *b, uint8_t side, int64_t price, uint32_t qty)
{
	struct pel_feed_req r = upd(b->last_seq + 1, side, price, qty);

	assert_int_equal(feed_book_apply(b, &r), FEED_APPLIED);
}

static void
assert_levels(const struct feed_level *lv, uint32_t n, const int64_t *price, const uint32_t *qty,
	      uint32_t want)
{
	assert_int_equal(n, want);
	for (uint32_t i = 0; i < want; i++) {
		assert_int_equal(lv[i].price, price[i]);
		assert_int_equal(lv[i].qty, qty[i]);
	}
}

static void
test_remove_absent_level(void **state)
{
	struct feed_book b;
	static const int64_t p[] = { 100 };
	static const uint32_t q[] = { 5 };

	(void)state;
	feed_book_init(&b);
	put(&b, PEL_FEED_BID, 100, 5);
	put(&b, PEL_FEED_BID, 99, 0);	/* below the best: absent */
	put(&b, PEL_FEED_BID, 101, 0);	/* above it: absent */
	put(&b, PEL_FEED_ASK, 100, 0);	/* the bid's price on the other side */
	assert_levels(b.bid, b.nbid, p, q, 1);
	assert_int_equal(b.nask, 0);
	assert_int_equal(b.level_drops, 0);
	assert_int_equal(b.updates, 4);	/* applied, though they changed nothing */
}

/* 16 bids 200, 199 .. 185: a 184 is dropped, a 201 evicts the 185, a 185 is dropped again. */
static void
test_full_side(void **state)
{
	struct feed_book b;

	(void)state;
	feed_book_init(&b);
	for (int64_t p = 185; p <= 200; p++)
		put(&b, PEL_FEED_BID, p, (uint32_t)p);
	assert_int_equal(b.nbid, FEED_LEVELS);
	assert_int_equal(b.bid[0].price, 200);
	assert_int_equal(b.bid[FEED_LEVELS - 1].price, 185);

	put(&b, PEL_FEED_BID, 184, 7);
	assert_int_equal(b.level_drops, 1);
	assert_int_equal(b.nbid, FEED_LEVELS);
	assert_int_equal(b.bid[FEED_LEVELS - 1].price, 185);

	put(&b, PEL_FEED_BID, 201, 9);
	assert_int_equal(b.level_drops, 1);	/* the evicted worst is not a drop */
	assert_int_equal(b.nbid, FEED_LEVELS);
	assert_int_equal(b.bid[0].price, 201);
	assert_int_equal(b.bid[0].qty, 9);
	assert_int_equal(b.bid[1].price, 200);
	assert_int_equal(b.bid[FEED_LEVELS - 1].price, 186);

	put(&b, PEL_FEED_BID, 185, 1);
	assert_int_equal(b.level_drops, 2);
	put(&b, PEL_FEED_BID, 186, 0);	/* the worst removed: room again */
	assert_int_equal(b.nbid, FEED_LEVELS - 1);
	put(&b, PEL_FEED_BID, 150, 3);
	assert_int_equal(b.nbid, FEED_LEVELS);
	assert_int_equal(b.bid[FEED_LEVELS - 1].price, 150);
	assert_int_equal(b.level_drops, 2);

	/* asks the other way round: a full side of 1 .. 16, a 17 dropped, a 0 evicts the 16 */
	for (int64_t p = 1; p <= 16; p++)
		put(&b, PEL_FEED_ASK, p, 1);
	put(&b, PEL_FEED_ASK, 17, 1);
	assert_int_equal(b.level_drops, 3);
	put(&b, PEL_FEED_ASK, 0, 1);
	assert_int_equal(b.nask, FEED_LEVELS);
	assert_int_equal(b.ask[0].price, 0);
	assert_int_equal(b.ask[FEED_LEVELS - 1].price, 15);
}

static void
test_sequence(void **state)
{
	struct feed_book b;
	struct pel_feed_req r;

	(void)state;
	feed_book_init(&b);
	r = upd(0, PEL_FEED_BID, 100, 1);	/* seq 0 is below the first, 1 */
	assert_int_equal(feed_book_apply(&b, &r), FEED_STALE);
	assert_int_equal(b.stale, 1);
	assert_int_equal(b.nbid, 0);

	r = upd(1, PEL_FEED_BID, 100, 1);
	assert_int_equal(feed_book_apply(&b, &r), FEED_APPLIED);
	r = upd(4, PEL_FEED_BID, 101, 2);	/* 2 and 3 lost */
	assert_int_equal(feed_book_apply(&b, &r), FEED_APPLIED);
	assert_int_equal(b.gaps, 2);
	assert_int_equal(b.last_seq, 4);

	r = upd(3, PEL_FEED_BID, 102, 3);	/* arrives after 4: not applied */
	assert_int_equal(feed_book_apply(&b, &r), FEED_STALE);
	r = upd(4, PEL_FEED_BID, 103, 3);	/* a duplicate */
	assert_int_equal(feed_book_apply(&b, &r), FEED_STALE);
	assert_int_equal(b.stale, 3);
	assert_int_equal(b.gaps, 2);
	assert_int_equal(b.nbid, 2);
	assert_int_equal(b.bid[0].price, 101);
	assert_int_equal(b.updates, 2);

	feed_book_skip(&b, 5);			/* late: received, not applied */
	assert_int_equal(b.late, 1);
	assert_int_equal(b.last_seq, 5);
	assert_int_equal(b.gaps, 2);
	assert_int_equal(b.nbid, 2);
	feed_book_skip(&b, 5);			/* a late duplicate is stale, not late */
	assert_int_equal(b.late, 1);
	assert_int_equal(b.stale, 4);
	feed_book_skip(&b, 8);			/* a late one after a gap */
	assert_int_equal(b.late, 2);
	assert_int_equal(b.gaps, 4);
	r = upd(9, PEL_FEED_ASK, 110, 1);
	assert_int_equal(feed_book_apply(&b, &r), FEED_APPLIED);
	assert_int_equal(b.gaps, 4);
	assert_int_equal(b.updates, 3);
}

static void
test_insert_order(void **state)
{
	struct feed_book b;
	static const int64_t bp[] = { 105, 103, 101, 100 }, ap[] = { 106, 108, 110, 111 };
	static const uint32_t bq[] = { 4, 2, 1, 3 }, aq[] = { 8, 5, 6, 7 };

	(void)state;
	feed_book_init(&b);
	put(&b, PEL_FEED_BID, 101, 1);
	put(&b, PEL_FEED_BID, 103, 2);	/* better: first */
	put(&b, PEL_FEED_BID, 100, 3);	/* worse: last */
	put(&b, PEL_FEED_BID, 105, 4);
	put(&b, PEL_FEED_ASK, 108, 5);
	put(&b, PEL_FEED_ASK, 110, 6);	/* worse: last */
	put(&b, PEL_FEED_ASK, 111, 7);
	put(&b, PEL_FEED_ASK, 106, 8);	/* better: first */
	assert_levels(b.bid, b.nbid, bp, bq, 4);
	assert_levels(b.ask, b.nask, ap, aq, 4);
	assert_int_equal(b.updates, 8);
	assert_int_equal(b.level_drops, 0);
}

static void
test_replace_and_remove(void **state)
{
	struct feed_book b;
	static const int64_t p1[] = { 103, 101, 100 }, p2[] = { 103, 100 }, p3[] = { 100 };
	static const uint32_t q1[] = { 2, 9, 3 }, q2[] = { 2, 3 }, q3[] = { 3 };

	(void)state;
	feed_book_init(&b);
	put(&b, PEL_FEED_BID, 101, 1);
	put(&b, PEL_FEED_BID, 103, 2);
	put(&b, PEL_FEED_BID, 100, 3);
	put(&b, PEL_FEED_BID, 101, 9);	/* same price: the quantity replaced, no new level */
	assert_levels(b.bid, b.nbid, p1, q1, 3);
	put(&b, PEL_FEED_BID, 101, 0);	/* from the middle */
	assert_levels(b.bid, b.nbid, p2, q2, 2);
	put(&b, PEL_FEED_BID, 103, 0);	/* the best */
	assert_levels(b.bid, b.nbid, p3, q3, 1);
	put(&b, PEL_FEED_BID, 100, 0);	/* the last */
	assert_int_equal(b.nbid, 0);
	put(&b, PEL_FEED_ASK, 120, 1);
	put(&b, PEL_FEED_ASK, 120, 0);
	assert_int_equal(b.nask, 0);
}

/* The rule on a book of bid 10000 / ask 10200 (mid 10100, band +-5.00%). */
static void
test_rule(void **state)
{
	struct feed_book b;
	struct pel_feed_req r;

	(void)state;
	feed_book_init(&b);
	r = upd(1, PEL_FEED_BID, 10000, FEED_RULE_MAX_QTY + 1);	/* too large, one side only */
	feed_book_apply(&b, &r);
	assert_int_equal(feed_rule(&b, &r), 1);
	r = upd(2, PEL_FEED_BID, 10000, FEED_RULE_MAX_QTY);	/* the largest allowed */
	feed_book_apply(&b, &r);
	assert_int_equal(feed_rule(&b, &r), 0);
	r = upd(3, PEL_FEED_ASK, 10200, 10);
	feed_book_apply(&b, &r);
	assert_int_equal(feed_rule(&b, &r), 0);

	/* 506 * 10000 / 10100 is 500 bp (rounded down): the last price inside the band */
	r = upd(4, PEL_FEED_BID, 10100 + 506, 0);
	assert_int_equal(feed_rule(&b, &r), 0);
	r = upd(4, PEL_FEED_BID, 10100 + 507, 0);	/* outside above */
	assert_int_equal(feed_rule(&b, &r), 1);
	r = upd(4, PEL_FEED_ASK, 10100 - 506, 0);
	assert_int_equal(feed_rule(&b, &r), 0);
	r = upd(4, PEL_FEED_ASK, 10100 - 507, 0);	/* outside below */
	assert_int_equal(feed_rule(&b, &r), 1);
	assert_int_equal(b.flagged, 3);

	r = upd(4, PEL_FEED_BID, 10200, 1);		/* bid at the ask: crossed */
	feed_book_apply(&b, &r);
	assert_int_equal(feed_rule(&b, &r), 1);
	r = upd(5, PEL_FEED_BID, 10200, 0);		/* uncrossed again */
	feed_book_apply(&b, &r);
	assert_int_equal(feed_rule(&b, &r), 0);
	r = upd(6, PEL_FEED_ASK, 9000, 1);		/* ask below the bid: crossed */
	feed_book_apply(&b, &r);
	assert_int_equal(feed_rule(&b, &r), 1);
	assert_int_equal(b.flagged, 5);
}

static void
test_score(void **state)
{
	struct feed_book b;
	struct feed_snapshot s, t;
	struct pel_feed_req r = upd(1, PEL_FEED_BID, 10050, 7);
	uint64_t sum = 0;

	(void)state;
	feed_book_init(&b);
	put(&b, PEL_FEED_BID, 10000, 30);
	put(&b, PEL_FEED_BID, 9990, 20);
	put(&b, PEL_FEED_ASK, 10100, 25);
	feed_snapshot_take(&b, &r, &s);
	memset(&t, 0xa5, sizeof(t));	/* what the snapshot does not copy cannot matter */
	feed_snapshot_take(&b, &r, &t);
	for (unsigned m = 0; m < FEED_MODELS_MAX; m++) {
		assert_true(feed_score(&s, m, 4) == feed_score(&t, m, 4));
		if (m)
			assert_true(feed_score(&s, m, 4) != feed_score(&s, m - 1, 4));
		sum += feed_score(&s, m, 4);
	}
	assert_true(feed_score_all(&s, FEED_MODELS_MAX, 4) == sum);
	assert_true(feed_score_all(&s, 1, 4) == feed_score(&s, 0, 4));
	assert_true(feed_score(&s, 2, 4) != feed_score(&s, 2, 5));	/* rounds matter */
	t.bid[1].qty++;						/* so does the book */
	assert_true(feed_score(&s, 2, 4) != feed_score(&t, 2, 4));
	feed_book_scored(&b, 5);
	feed_book_scored(&b, UINT64_MAX);
	assert_int_equal(b.scored, 2);
	assert_true(b.score_sum == 4);	/* mod 2^64 */
}

static void
test_fans_out(void **state)
{
	(void)state;
	for (uint64_t id = 0; id < 1000; id++) {
		assert_false(feed_fans_out(id, 0));
		assert_true(feed_fans_out(id, 1));
		assert_int_equal(feed_fans_out(id, 4), id % 4 == 3);
	}
	assert_false(feed_fans_out(UINT64_MAX, 0));
	assert_true(feed_fans_out(UINT64_MAX, 2));	/* 2^64 - 1 is odd */
}

/* feed_book_dump() into a string; the caller frees it. */
static char *
dump(uint32_t instrument, const struct feed_book *b)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	feed_book_dump(f, instrument, b);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void
test_dump(void **state)
{
	struct feed_book b;
	struct pel_feed_req r;
	char *s;

	(void)state;
	feed_book_init(&b);
	s = dump(7, &b);
	assert_string_equal(s, "");	/* never updated: no line */
	free(s);

	r = upd(0, PEL_FEED_BID, 1, 1);	/* only a stale update: a line, empty sides */
	feed_book_apply(&b, &r);
	s = dump(7, &b);
	assert_string_equal(s, "7 0 0 0 0 1 0 0 0 0 b a\n");
	free(s);

	feed_book_init(&b);
	put(&b, PEL_FEED_BID, 10000, 5);
	put(&b, PEL_FEED_BID, -20, 6);		/* prices are signed */
	put(&b, PEL_FEED_ASK, 10100, 4294967295u);
	r = upd(6, PEL_FEED_ASK, 10200, 1000);	/* gaps 4, 5 */
	feed_book_apply(&b, &r);
	for (int i = 0; i < 5; i++)
		feed_rule(&b, &r);		/* too large: flagged 5 */
	feed_book_skip(&b, 7);
	feed_book_apply(&b, &r);		/* stale 3 */
	r.seq = 7;
	feed_book_apply(&b, &r);
	feed_book_skip(&b, 1);
	feed_book_scored(&b, UINT64_MAX);
	feed_book_scored(&b, 10);
	/* each counter a different value: a field out of place shows */
	s = dump(999999, &b);
	assert_string_equal(s, "999999 7 4 1 2 3 0 5 2 9 "
			    "b 10000:5 -20:6 a 10100:4294967295 10200:1000\n");
	free(s);
}

/* feed_book_process(): applied, the rule, the models for one request in N; a stale one none. */
static void
test_process(void **state)
{
	struct feed_book b, ref;
	struct feed_snapshot s;
	struct pel_feed_req r;

	(void)state;
	feed_book_init(&b);
	r = upd(1, PEL_FEED_BID, 100, 1000);	/* req_id 0: not one in 2 */
	assert_int_equal(feed_book_process(&b, &r, 2, 8, 4), 0);
	assert_int_equal(b.updates, 1);
	assert_int_equal(b.flagged, 1);
	assert_int_equal(b.scored, 0);

	r = upd(2, PEL_FEED_ASK, 101, 5);	/* req_id 1: scored on the book after it */
	ref = b;
	feed_book_apply(&ref, &r);
	feed_snapshot_take(&ref, &r, &s);
	assert_int_equal(feed_book_process(&b, &r, 2, 8, 4), 1);
	assert_int_equal(b.scored, 1);
	assert_true(b.score_sum == feed_score_all(&s, 8, 4));
	assert_int_equal(b.flagged, 1);

	r.req_id = 3;				/* stale: neither the rule nor the models */
	r.quantity = 1000;
	assert_int_equal(feed_book_process(&b, &r, 2, 8, 4), 0);
	assert_int_equal(b.stale, 1);
	assert_int_equal(b.flagged, 1);
	assert_int_equal(b.scored, 1);

	r = upd(3, PEL_FEED_ASK, 101, 0);	/* req_id 2, every 0: never scored */
	r.req_id = 5;
	assert_int_equal(feed_book_process(&b, &r, 0, 8, 4), 0);
	assert_int_equal(b.scored, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remove_absent_level),
		cmocka_unit_test(test_full_side),
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_insert_order),
		cmocka_unit_test(test_replace_and_remove),
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_score),
		cmocka_unit_test(test_fans_out),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
