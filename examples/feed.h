/* SPDX-License-Identifier: MIT */
/*
 * examples/feed.h - the binary format of the demo's UDP feed, shared by the feed handler, the
 * load generator (bench/pel-load) and its test server (bench/pel-spin-echo). See docs/feed.md.
 *
 * One message per datagram, fixed size, every field little-endian, no padding left undefined
 * (reserved bytes are sent as 0 and ignored on receipt).
 *
 * Request, PEL_FEED_REQ_SIZE (56) bytes:
 *   off size field
 *     0    2 magic        PEL_FEED_MAGIC (0x4650, "PF" in memory)
 *     2    1 version      PEL_FEED_VERSION (1)
 *     3    1 kind         PEL_FEED_BOOK (order-book update) or PEL_FEED_SPIN (synthetic request)
 *     4    4 instrument   instrument id, 0 .. instruments - 1
 *     8    1 side         PEL_FEED_BID or PEL_FEED_ASK (BOOK; 0 in SPIN)
 *     9    3 reserved
 *    12    4 quantity     shares/lots, u32
 *    16    8 price        i64, fixed point: units of 1e-4 (PEL_FEED_PRICE_SCALE)
 *    24    8 seq          per-instrument sequence, 1, 2, 3 ... (a gap means loss)
 *    32    8 send_ns      planned send time, ns of the sender's CLOCK_MONOTONIC
 *    40    8 req_id       request id, unique per sender run (0, 1, 2 ...)
 *    48    8 service_ns   SPIN: ns the server must busy-spin before answering (<= 1 s); BOOK: 0
 *
 * Reply, PEL_FEED_REPLY_SIZE (24) bytes:
 *     0    2 magic        PEL_FEED_MAGIC
 *     2    1 version      PEL_FEED_VERSION
 *     3    1 kind         PEL_FEED_REPLY
 *     4    1 status       enum pel_feed_status
 *     5    3 reserved
 *     8    8 req_id       the request's, echoed
 *    16    8 send_ns      the request's planned send time, echoed
 *
 * A datagram of another length, magic, version or kind, a BOOK with a side that is neither bid
 * nor ask or with a price beyond +-PEL_FEED_PRICE_MAX (2^40 units: 110 million), or a SPIN
 * longer than PEL_FEED_SPIN_MAX_NS is malformed: pel_feed_req_decode() and
 * pel_feed_reply_decode() say so and the receiver counts it; nothing here can crash on it.
 */
#ifndef PEL_EXAMPLES_FEED_H
#define PEL_EXAMPLES_FEED_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define PEL_FEED_MAGIC		0x4650u
#define PEL_FEED_VERSION	1u
#define PEL_FEED_REQ_SIZE	56u
#define PEL_FEED_REPLY_SIZE	24u
#define PEL_FEED_PRICE_SCALE	10000	/* price 1.2345 is sent as 12345 */
#define PEL_FEED_SPIN_MAX_NS	UINT64_C(1000000000)
#define PEL_FEED_PRICE_MAX	(INT64_C(1) << 40)	/* |price| above it is malformed */

enum pel_feed_kind {
	PEL_FEED_BOOK = 1,	/* order-book update: answered after the book and the rule */
	PEL_FEED_SPIN = 2,	/* synthetic: busy-spin service_ns, then answer */
	PEL_FEED_REPLY = 3,	/* server to sender */
};

enum pel_feed_side {
	PEL_FEED_BID = 0,
	PEL_FEED_ASK = 1,
};

enum pel_feed_status {
	PEL_FEED_ANSWERED = 0,	/* processed */
	PEL_FEED_LATE = 1,	/* past its deadline on arrival at the worker: dropped, not run */
	PEL_FEED_MALFORMED = 2,	/* parsed but refused (e.g. an unknown instrument) */
	PEL_FEED_STATUS_MAX = PEL_FEED_MALFORMED,
};

/* A request, decoded (host byte order). */
struct pel_feed_req {
	uint8_t kind;		/* enum pel_feed_kind: BOOK or SPIN */
	uint8_t side;		/* enum pel_feed_side */
	uint32_t instrument;
	uint32_t quantity;
	int64_t price;
	uint64_t seq;
	uint64_t send_ns;
	uint64_t req_id;
	uint64_t service_ns;
};

/* A reply, decoded. */
struct pel_feed_reply {
	uint8_t status;		/* enum pel_feed_status */
	uint64_t req_id;
	uint64_t send_ns;
};

static inline void
pel_feed_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
pel_feed_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
pel_feed_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t
pel_feed_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
pel_feed_get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint64_t
pel_feed_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The common 4-byte head: magic, version, kind. */
static inline void
pel_feed_put_head(uint8_t *p, uint8_t kind)
{
	pel_feed_put16(p, PEL_FEED_MAGIC);
	p[2] = PEL_FEED_VERSION;
	p[3] = kind;
}

/**
 * Encode @p r into @p buf.
 * @param buf  PEL_FEED_REQ_SIZE bytes
 * @param r    kind BOOK or SPIN; not checked (pel_feed_req_decode() checks on the other side)
 * Threads: any; touches nothing but @p buf.
 */
static inline void
pel_feed_req_encode(uint8_t *buf, const struct pel_feed_req *r)
{
	pel_feed_put_head(buf, r->kind);
	pel_feed_put32(buf + 4, r->instrument);
	buf[8] = r->side;
	buf[9] = buf[10] = buf[11] = 0;
	pel_feed_put32(buf + 12, r->quantity);
	pel_feed_put64(buf + 16, (uint64_t)r->price);
	pel_feed_put64(buf + 24, r->seq);
	pel_feed_put64(buf + 32, r->send_ns);
	pel_feed_put64(buf + 40, r->req_id);
	pel_feed_put64(buf + 48, r->service_ns);
}

/**
 * Decode and check a request datagram.
 * @param buf  the datagram; may be anything
 * @param len  its length as received (a truncated datagram has the wrong one)
 * @param out  filled on success only
 * @return 0; -EMSGSIZE @p len is not PEL_FEED_REQ_SIZE; -EBADMSG wrong magic, version or kind,
 *         a BOOK side neither bid nor ask or a price beyond +-PEL_FEED_PRICE_MAX, or a SPIN
 *         over PEL_FEED_SPIN_MAX_NS.
 * Threads: any.
 */
static inline int
pel_feed_req_decode(const uint8_t *buf, size_t len, struct pel_feed_req *out)
{
	struct pel_feed_req r;

	if (len != PEL_FEED_REQ_SIZE)
		return -EMSGSIZE;
	if (pel_feed_get16(buf) != PEL_FEED_MAGIC || buf[2] != PEL_FEED_VERSION)
		return -EBADMSG;
	r.kind = buf[3];
	r.instrument = pel_feed_get32(buf + 4);
	r.side = buf[8];
	r.quantity = pel_feed_get32(buf + 12);
	r.price = (int64_t)pel_feed_get64(buf + 16);
	r.seq = pel_feed_get64(buf + 24);
	r.send_ns = pel_feed_get64(buf + 32);
	r.req_id = pel_feed_get64(buf + 40);
	r.service_ns = pel_feed_get64(buf + 48);
	if (r.kind == PEL_FEED_BOOK) {
		/* bounded prices keep the book's arithmetic (a mid, a band in 1e-4) far from
		 * int64_t's range */
		if ((r.side != PEL_FEED_BID && r.side != PEL_FEED_ASK) ||
		    r.price > PEL_FEED_PRICE_MAX || r.price < -PEL_FEED_PRICE_MAX)
			return -EBADMSG;
	} else if (r.kind != PEL_FEED_SPIN || r.service_ns > PEL_FEED_SPIN_MAX_NS) {
		return -EBADMSG;
	}
	*out = r;
	return 0;
}

/**
 * Encode the reply to a request.
 * @param buf      PEL_FEED_REPLY_SIZE bytes
 * @param status   enum pel_feed_status
 * @param req_id   the request's
 * @param send_ns  the request's
 * Threads: any.
 */
static inline void
pel_feed_reply_encode(uint8_t *buf, uint8_t status, uint64_t req_id, uint64_t send_ns)
{
	pel_feed_put_head(buf, PEL_FEED_REPLY);
	buf[4] = status;
	buf[5] = buf[6] = buf[7] = 0;
	pel_feed_put64(buf + 8, req_id);
	pel_feed_put64(buf + 16, send_ns);
}

/**
 * Decode and check a reply datagram.
 * @return 0; -EMSGSIZE wrong length; -EBADMSG wrong magic, version, kind or an unknown status.
 * Threads: any.
 */
static inline int
pel_feed_reply_decode(const uint8_t *buf, size_t len, struct pel_feed_reply *out)
{
	if (len != PEL_FEED_REPLY_SIZE)
		return -EMSGSIZE;
	if (pel_feed_get16(buf) != PEL_FEED_MAGIC || buf[2] != PEL_FEED_VERSION ||
	    buf[3] != PEL_FEED_REPLY || buf[4] > PEL_FEED_STATUS_MAX)
		return -EBADMSG;
	out->status = buf[4];
	out->req_id = pel_feed_get64(buf + 8);
	out->send_ns = pel_feed_get64(buf + 16);
	return 0;
}

#endif /* PEL_EXAMPLES_FEED_H */
