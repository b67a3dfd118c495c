/* SPDX-License-Identifier: MIT */
/*
 * tests/test_feed.c - the feed format of examples/feed.h: every wrong length, magic, version,
 * kind, side, status and over-long spin refused with its errno; fields at their documented
 * offsets, little-endian; requests and replies surviving encode and decode; random datagrams
 * never decoded unless they are well formed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "feed.h"
#include "trace_gen.h"

static const struct pel_feed_req book = {
	.kind = PEL_FEED_BOOK, .side = PEL_FEED_ASK, .instrument = 0x01020304u,
	.quantity = 0xa0b0c0d0u, .price = -1234567, .seq = UINT64_C(0x1112131415161718),
	.send_ns = UINT64_C(0x2122232425262728), .req_id = UINT64_C(0x3132333435363738),
	.service_ns = 0,
};

static void
test_req_bad_length(void **state)
{
	uint8_t buf[PEL_FEED_REQ_SIZE + 8];
	struct pel_feed_req out = { .req_id = 99 };

	(void)state;
	pel_feed_req_encode(buf, &book);
	for (size_t len = 0; len < sizeof(buf); len++) {
		if (len == PEL_FEED_REQ_SIZE)
			continue;
		assert_int_equal(pel_feed_req_decode(buf, len, &out), -EMSGSIZE);
	}
	assert_int_equal(out.req_id, 99);	/* a refused datagram leaves @out alone */
}

static void
test_req_bad_fields(void **state)
{
	uint8_t buf[PEL_FEED_REQ_SIZE];
	struct pel_feed_req r = book, out;
	static const uint8_t bad_kinds[] = { 0, PEL_FEED_REPLY, 4, 255 };

	(void)state;
	pel_feed_req_encode(buf, &r);
	buf[0] ^= 1;
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), -EBADMSG);
	pel_feed_req_encode(buf, &r);
	buf[1] = 0;
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), -EBADMSG);
	pel_feed_req_encode(buf, &r);
	buf[2] = PEL_FEED_VERSION + 1;
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), -EBADMSG);
	for (unsigned i = 0; i < sizeof(bad_kinds); i++) {
		pel_feed_req_encode(buf, &r);
		buf[3] = bad_kinds[i];
		assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), -EBADMSG);
	}
	r.side = 2;
	pel_feed_req_encode(buf, &r);
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), -EBADMSG);
	/* prices: +-PEL_FEED_PRICE_MAX pass, one beyond (either way) and INT64_MIN/MAX do not */
	static const int64_t prices[][2] = {
		{ PEL_FEED_PRICE_MAX, 0 }, { -PEL_FEED_PRICE_MAX, 0 },
		{ PEL_FEED_PRICE_MAX + 1, -EBADMSG }, { -PEL_FEED_PRICE_MAX - 1, -EBADMSG },
		{ INT64_MAX, -EBADMSG }, { INT64_MIN, -EBADMSG },
	};
	for (unsigned i = 0; i < sizeof(prices) / sizeof(prices[0]); i++) {
		r = book;
		r.price = prices[i][0];
		pel_feed_req_encode(buf, &r);
		assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), (int)prices[i][1]);
	}
	r = book;
	r.kind = PEL_FEED_SPIN;
	r.service_ns = PEL_FEED_SPIN_MAX_NS + 1;
	pel_feed_req_encode(buf, &r);
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), -EBADMSG);
	r.service_ns = PEL_FEED_SPIN_MAX_NS;
	pel_feed_req_encode(buf, &r);
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), 0);
}

static void
test_req_layout(void **state)
{
	uint8_t buf[PEL_FEED_REQ_SIZE];

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	pel_feed_req_encode(buf, &book);
	/* magic 0x4650 little-endian, version, kind */
	assert_int_equal(buf[0], 0x50);
	assert_int_equal(buf[1], 0x46);
	assert_int_equal(buf[2], 1);
	assert_int_equal(buf[3], PEL_FEED_BOOK);
	assert_int_equal(buf[4], 0x04);
	assert_int_equal(buf[7], 0x01);
	assert_int_equal(buf[8], PEL_FEED_ASK);
	assert_int_equal(buf[9] | buf[10] | buf[11], 0);	/* reserved */
	assert_int_equal(buf[12], 0xd0);
	assert_int_equal(buf[15], 0xa0);
	assert_int_equal(buf[16], (uint8_t)-1234567);
	assert_int_equal(buf[23], 0xff);			/* negative price */
	assert_int_equal(buf[24], 0x18);
	assert_int_equal(buf[31], 0x11);
	assert_int_equal(buf[32], 0x28);
	assert_int_equal(buf[40], 0x38);
	assert_int_equal(buf[47], 0x31);
	for (unsigned i = 48; i < 56; i++)
		assert_int_equal(buf[i], 0);
}

static void
test_req_round_trip(void **state)
{
	uint8_t buf[PEL_FEED_REQ_SIZE];
	struct pel_feed_req spin = {
		.kind = PEL_FEED_SPIN, .instrument = UINT32_MAX, .seq = UINT64_MAX,
		.send_ns = UINT64_MAX, .req_id = 0, .service_ns = 500000,
	};
	struct pel_feed_req out;

	(void)state;
	pel_feed_req_encode(buf, &book);
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.kind, book.kind);
	assert_int_equal(out.side, book.side);
	assert_int_equal(out.instrument, book.instrument);
	assert_int_equal(out.quantity, book.quantity);
	assert_true(out.price == book.price);
	assert_true(out.seq == book.seq);
	assert_true(out.send_ns == book.send_ns);
	assert_true(out.req_id == book.req_id);
	assert_true(out.service_ns == 0);
	pel_feed_req_encode(buf, &spin);
	assert_int_equal(pel_feed_req_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.kind, PEL_FEED_SPIN);
	assert_int_equal(out.instrument, UINT32_MAX);
	assert_true(out.seq == UINT64_MAX && out.send_ns == UINT64_MAX);
	assert_true(out.service_ns == 500000);
}

static void
test_reply(void **state)
{
	uint8_t buf[PEL_FEED_REPLY_SIZE + 4], req[PEL_FEED_REQ_SIZE];
	struct pel_feed_reply out;

	(void)state;
	pel_feed_reply_encode(buf, PEL_FEED_LATE, UINT64_C(0x0102030405060708), 77);
	for (size_t len = 0; len < sizeof(buf); len++)
		if (len != PEL_FEED_REPLY_SIZE)
			assert_int_equal(pel_feed_reply_decode(buf, len, &out), -EMSGSIZE);
	assert_int_equal(buf[0], 0x50);
	assert_int_equal(buf[3], PEL_FEED_REPLY);
	assert_int_equal(buf[4], PEL_FEED_LATE);
	assert_int_equal(buf[8], 0x08);
	assert_int_equal(buf[16], 77);
	assert_int_equal(pel_feed_reply_decode(buf, PEL_FEED_REPLY_SIZE, &out), 0);
	assert_int_equal(out.status, PEL_FEED_LATE);
	assert_true(out.req_id == UINT64_C(0x0102030405060708));
	assert_true(out.send_ns == 77);
	buf[4] = PEL_FEED_STATUS_MAX + 1;
	assert_int_equal(pel_feed_reply_decode(buf, PEL_FEED_REPLY_SIZE, &out), -EBADMSG);
	pel_feed_reply_encode(buf, 0, 1, 2);
	buf[3] = PEL_FEED_SPIN;
	assert_int_equal(pel_feed_reply_decode(buf, PEL_FEED_REPLY_SIZE, &out), -EBADMSG);
	/* a request is not a reply, even cut to a reply's length */
	pel_feed_req_encode(req, &book);
	assert_int_equal(pel_feed_reply_decode(req, PEL_FEED_REPLY_SIZE, &out), -EBADMSG);
}

/* Random bytes with a valid head half the time: decoded only when every check holds. */
static void
test_random_datagrams(void **state)
{
	uint8_t buf[PEL_FEED_REQ_SIZE + 1];
	struct pel_feed_req out;
	struct pel_rng r;
	unsigned ok = 0;

	(void)state;
	pel_rng_seed(&r, 7);
	for (unsigned i = 0; i < 200000; i++) {
		size_t len = PEL_FEED_REQ_SIZE - 1 + pel_rng_below(&r, 3);
		int err;

		for (size_t k = 0; k < sizeof(buf); k++)
			buf[k] = (uint8_t)pel_rng_next(&r);
		if (i & 1) {
			pel_feed_put_head(buf, (uint8_t)(1 + pel_rng_below(&r, 2)));
			buf[8] = (uint8_t)pel_rng_below(&r, 3);
			buf[48 + 3] = buf[48 + 4] = buf[48 + 5] = buf[48 + 6] = buf[48 + 7] = 0;
			if (i & 2)	/* a price in range: below 2^40 */
				buf[16 + 5] = buf[16 + 6] = buf[16 + 7] = 0;
		}
		err = pel_feed_req_decode(buf, len, &out);
		if (len != PEL_FEED_REQ_SIZE) {
			assert_int_equal(err, -EMSGSIZE);
			continue;
		}
		if (err) {
			assert_int_equal(err, -EBADMSG);
			continue;
		}
		ok++;
		assert_int_equal(pel_feed_get16(buf), PEL_FEED_MAGIC);
		assert_true(out.kind == PEL_FEED_SPIN ? out.service_ns <= PEL_FEED_SPIN_MAX_NS :
			    out.kind == PEL_FEED_BOOK && out.side <= PEL_FEED_ASK &&
			    out.price <= PEL_FEED_PRICE_MAX && out.price >= -PEL_FEED_PRICE_MAX);
	}
	assert_true(ok > 1000);	/* the valid-head half does reach the field checks */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req_bad_length),
		cmocka_unit_test(test_req_bad_fields),
		cmocka_unit_test(test_req_layout),
		cmocka_unit_test(test_req_round_trip),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_random_datagrams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
