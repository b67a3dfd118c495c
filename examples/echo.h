/* SPDX-License-Identifier: MIT */
/*
 * examples/echo.h - what udp-echo and tcp-echo share: sockperf's message header, the command
 * line, the runtime and I/O layer set-up, and waiting for SIGINT/SIGTERM.
 *
 * sockperf 3.7 (src/message.h) starts every message with a packed 14-byte header, each field
 * big-endian: u64 sequence number, u16 flags, u32 length of the whole message (header included).
 * A server answers a message that has the client and pong-request bits and not the warm-up bit
 * with the same bytes, the client bit cleared; answering anything else makes sockperf count
 * duplicates.
 */
#ifndef PEL_EXAMPLES_ECHO_H
#define PEL_EXAMPLES_ECHO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <pel/io.h>
#include <pel/pel.h>

#define SP_HDR		14u		/* bytes of sockperf's header */
#define SP_MAX		65536u		/* the longest message tcp-echo accepts */
#define SP_F_CLIENT	0x1u		/* sent by the client */
#define SP_F_PONG	0x2u		/* the client asks for an answer */
#define SP_F_WARMUP	0x4u		/* warm-up: never answered */

static inline unsigned
sp_flags(const uint8_t *m)
{
	return (unsigned)m[8] << 8 | m[9];
}

static inline uint32_t
sp_len(const uint8_t *m)
{
	return (uint32_t)m[10] << 24 | (uint32_t)m[11] << 16 | (uint32_t)m[12] << 8 | m[13];
}

/* The message (at least SP_HDR bytes) asks for an answer. */
static inline bool
sp_wants_reply(const uint8_t *m)
{
	unsigned f = sp_flags(m);

	return (f & (SP_F_CLIENT | SP_F_PONG)) == (SP_F_CLIENT | SP_F_PONG) && !(f & SP_F_WARMUP);
}

/* Turn the request into its answer, in place: the client bit (low byte of the flags) cleared. */
static inline void
sp_make_reply(uint8_t *m)
{
	m[9] &= (uint8_t)~SP_F_CLIENT;
}

/* A counter only one worker writes; the main thread reads it at the end. */
static inline void
echo_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t
echo_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

struct echo_opts {
	const char *prog;	/* "udp-echo" or "tcp-echo": for messages */
	unsigned port;		/* 0: an ephemeral port (printed in the ready line) */
	const char *cpus;	/* NULL: pel's default */
	enum pel_idle idle;
	enum pel_io_mode io_mode;
	int io_cpu;		/* PEL_IO_DEDICATED: the I/O thread's CPU; -1 not pinned */
	unsigned steer;		/* PEL_IO_DEDICATED: enum pel_io_steer */
};

/* What main() keeps: the runtime, its I/O layer, and the signals it waits for. */
struct echo_rt {
	struct pel_runtime *rt;
	struct pel_io *io;
	int sigfd;
};

/* Parse argv into @p o. @return 0; 2 after a usage message (the exit code). */
int echo_parse(int argc, char **argv, struct echo_opts *o);

/* Block SIGINT/SIGTERM (the workers inherit the mask), create the runtime and its I/O layer with
 * @p buf_count provided buffers of @p buf_size bytes per worker. @return 0; 1 after a message. */
int echo_start(const struct echo_opts *o, unsigned buf_count, unsigned buf_size,
	       struct echo_rt *e);

/* Wait for SIGINT or SIGTERM. @return the signal. */
int echo_wait(struct echo_rt *e);

/* Wait until every task has run and no I/O operation is in flight (pel_drain() covers tasks
 * only). @return 0; -ETIMEDOUT after @p timeout_ns. */
int echo_quiesce(const struct echo_rt *e, int64_t timeout_ns);

/* Add every worker's pel_io_stats() to one line: "submitted N completed N ...". Call before
 * pel_destroy() (the layer's counters go with it). */
void echo_io_stats(const struct echo_rt *e, char *line, unsigned len);

#endif /* PEL_EXAMPLES_ECHO_H */
