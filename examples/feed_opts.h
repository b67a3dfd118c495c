/* SPDX-License-Identifier: MIT */
/*
 * examples/feed_opts.h - what the demo's two servers share around the logic of feed_book.h: the
 * command line, the counters and their report, the books' table and stopping on a signal or
 * after --seconds. pel-feed (feed-handler.c) serves on pel; feed-pool (feed-pool.c) is the same
 * service on an epoll loop and a mutex/condvar thread pool, the baseline. See docs/demo.md.
 */
#ifndef PEL_EXAMPLES_FEED_OPTS_H
#define PEL_EXAMPLES_FEED_OPTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "feed_book.h"

#define FEED_INSTRUMENTS_MAX	1000000u

enum feed_server {
	FEED_SERVER_PEL,	/* pel-feed */
	FEED_SERVER_POOL,	/* feed-pool */
};

struct feed_opts {
	const char *prog;
	enum feed_server server;
	unsigned port;		/* 0: any free port, printed in the ready line */
	const char *cpus;	/* CPU list; NULL: the server's default */
	unsigned instruments;	/* ids 0 .. instruments - 1; others are refused */
	uint64_t deadline_ns;	/* after the planned send time; 0: none */
	unsigned fanout_every;	/* one request in N fans out to the models; 0: none */
	unsigned models;	/* 1 .. FEED_MODELS_MAX */
	unsigned rounds;	/* mixing passes per model */
	double seconds;		/* stop after; 0: at SIGINT/SIGTERM */
	const char *books;	/* write the books here at exit */
	const char *stats;	/* write the counters as JSON here at exit */
	/* pel-feed */
	int idle;		/* enum pel_idle */
	int io_mode;		/* enum pel_io_mode */
	int io_cpu;
	unsigned max_ops;	/* I/O operations in flight per worker; 0: room for every reply */
	int rt_priority;	/* SCHED_FIFO priority of the workers; 0: leave the policy */
	unsigned rt_batch;	/* ready requests a worker runs per pass (pel_rt_config.batch) */
	bool mlock;		/* lock the process's memory (PEL_F_MLOCK) */
	/* feed-pool */
	unsigned threads;	/* pool threads */
};

/*
 * The service's counters, one set per worker or pool thread, written by it alone (relaxed
 * read-modify-free stores) and added up at the end. received = answered + late + rejected +
 * malformed + dropped.
 */
struct feed_counters {
	_Atomic uint64_t received;	/* datagrams taken off the socket */
	_Atomic uint64_t answered;	/* replied ANSWERED (book and spin requests) */
	_Atomic uint64_t late;		/* past their deadline: dropped unprocessed, replied LATE */
	_Atomic uint64_t rejected;	/* an unknown instrument: replied MALFORMED */
	_Atomic uint64_t malformed;	/* did not decode: counted, never answered */
	_Atomic uint64_t dropped;	/* could not be queued or answered (no room): counted */
	_Atomic uint64_t fanouts;	/* requests scored by the models */
	_Atomic uint64_t send_errors;	/* replies the kernel refused */
	_Atomic uint64_t send_retries;	/* replies submitted again: no room in the ring then */
} __attribute__((aligned(64)));

static inline void
feed_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Parse argv. @return 0; 2 after a message and the usage (the exit code); exits 0 on --help. */
int feed_parse(int argc, char **argv, struct feed_opts *o);

/*
 * Block SIGINT and SIGTERM in the calling thread (threads created after inherit the mask) and
 * open the descriptor feed_wait() waits on. @return 0; 1 after a message.
 */
int feed_signals(const struct feed_opts *o);

/* Wait for SIGINT/SIGTERM, or --seconds. @return the signal, 0 for the time. */
int feed_wait(const struct feed_opts *o);

/* A UDP socket bound to o->port (SO_REUSEPORT: one per worker may share it), non-blocking when
 * @p nonblock; the port chosen written back for port 0. @return the fd; -1 after a message. */
int feed_udp_socket(struct feed_opts *o, bool nonblock);

/*
 * Add up @p n counter sets, print the summary line, and write --stats (JSON) and --books
 * (@p books[i] for instrument i; NULL entries never saw an update).
 * @return 0; 1 a file could not be written (after a message).
 */
int feed_report(const struct feed_opts *o, const struct feed_counters *c, unsigned n,
		struct feed_book *const *books);

/*
 * Deadline of a request planned at @p send_ns and received at @p arrival_ns (CLOCK_MONOTONIC,
 * the feed's clock): 0 for none. A send time after the arrival (a sender's bad clock, a forged
 * datagram) counts as the arrival: it can neither postpone a deadline nor overflow.
 */
static inline uint64_t
feed_deadline(const struct feed_opts *o, uint64_t send_ns, uint64_t arrival_ns)
{
	if (!o->deadline_ns)
		return 0;
	return (send_ns < arrival_ns ? send_ns : arrival_ns) + o->deadline_ns;
}

#endif /* PEL_EXAMPLES_FEED_OPTS_H */
