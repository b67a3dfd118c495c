/* SPDX-License-Identifier: MIT */
/*
 * io/io.c - the io_uring layer, per-worker mode (include/pel/io.h).
 *
 * Each worker owns a ring, created on its own thread (SINGLE_ISSUER needs the submitter to be the
 * creator; DEFER_TASKRUN runs completions only in it). The layer enters the worker loop through
 * one poller per worker, which each pass:
 *   1. drains the buffers other threads released (a lock-free stack) back into the buffer ring and
 *      re-arms the multishot receives that stopped for want of buffers;
 *   2. reaps every CQE in the CQ ring (memory, no syscall) and runs its callback, the way a task
 *      runs; a callback's own submissions are prepared into the SQ at once;
 *   3. enters the kernel once if there are SQEs to submit, operations waiting for SQ space, or the
 *      kernel flagged work for us (IORING_SQ_TASKRUN, IORING_SQ_CQ_OVERFLOW): so a reply goes in
 *      within the pass its request completed in, and an idle worker makes no syscall. With
 *      SQPOLL it publishes the SQ tail instead, and enters only to wake the kernel's SQ thread
 *      when that sleeps (IORING_SQ_NEED_WAKEUP) or to flush an overflowed CQ.
 * Operations are objects of a pel pool (any thread allocates; the worker frees them when their
 * final CQE is in), so a request from a producer or another worker travels to its worker as the
 * argument of one task. An operation's user_data is its address; its handle adds a generation
 * the pool leaves in the object across reuse, so a stale handle never cancels another operation.
 * This layer depends on sched/layer.h and the pool layer; sched/ knows nothing of it.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <liburing.h>

#include <pel/io.h>
#include <pel/pool.h>

#include "sched/layer.h"
#include "mem/pool_layer.h"
#include "trace/trace.h"

#define DEF_SQ		256u
#define DEF_OPS		4096u
#define DEF_BUF_SIZE	2048u
#define MAX_SQ		32768u
#define MAX_BUFS	32768u
#define MAX_BUF_SIZE	(1u << 20)
#define DEF_SQ_IDLE_MS	100u
#define MAX_FILES	32768u
#define REQ_FLAGS	(PEL_IO_REQ_MULTISHOT | PEL_IO_REQ_BUFSEL | PEL_IO_REQ_ABS | \
			 PEL_IO_REQ_FIXED_FILE | PEL_IO_REQ_NO_STEER | PEL_IO_REQ_FIXED_BUF)
#define MAX_FIXED_BUFS	16384u	/* the kernel's limit of registered buffers (UIO_MAXIOV) */
#define MAX_NAPI_US	1000000u
/* IORING_REGISTER_NAPI (Linux 6.9) and its argument: newer than liburing 2.3 */
#define REGISTER_NAPI	27
/* recv bundles (Linux 6.10): one CQE for a run of provided buffers; newer than liburing 2.3 */
#define FEAT_RECVSEND_BUNDLE	(1u << 14)
#define RECVSEND_BUNDLE		(1u << 4)	/* sqe->ioprio of a recv */
/* incremental buffer rings (Linux 6.12): a buffer is consumed piece by piece */
#define PBUF_RING_INC		2u		/* io_uring_buf_reg.flags ("pad" in liburing 2.3) */
#define CQE_F_BUF_MORE		(1u << 4)	/* the buffer stays in the ring: more will follow */
struct napi_reg {
	uint32_t busy_poll_to;		/* us */
	uint8_t prefer_busy_poll;
	uint8_t opcode;			/* 0: register, dynamic tracking (6.15; 0 before too) */
	uint8_t pad[2];
	uint32_t op_param;
	uint32_t resv;
};
#define MAX_SQ_IDLE_MS	60000u
#define BGID		0		/* the one buffer group of each worker's ring */
#define NIL		UINT32_MAX
#define PTR_BITS	48		/* user-space addresses (x86-64, arm64 with 48-bit VA) */
#define PTR_MASK	((UINT64_C(1) << PTR_BITS) - 1)

/* the set-up options took reserved words: the structs keep their size (the ABI of 0.1) */
static_assert(sizeof(struct pel_io_config) == 15 * sizeof(unsigned), "pel_io_config grew");
static_assert(sizeof(struct pel_io_stats) == 120, "pel_io_stats grew");
static_assert(sizeof(struct pel_io_req) == 48, "pel_io_req grew");

enum op_state { OP_FREE, OP_QUEUED, OP_WAITING, OP_INFLIGHT };

/* One operation; a pool object, 64-byte aligned. gen survives free and reuse (the pool never
 * writes into an object), so handles of earlier uses of the object go stale. */
struct op {
	/* Read through a stale handle by a cancel on any worker while another thread may be
	 * reusing the object: relaxed atomics (a cancel that reads a mix finds no match). */
	_Atomic uint16_t gen;
	_Atomic uint8_t state;		/* enum op_state */
	uint8_t rearm;			/* waits for buffers to be re-armed */
	_Atomic unsigned worker;
	struct pel_io *io;
	struct pel_io_req req;
	struct op *next;		/* the worker's waiting or re-arm list */
	struct __kernel_timespec ts;	/* TIMEOUT */
	struct sockaddr_storage sa;	/* CONNECT: the address, copied */
};

/* A ring and its owner: a worker (per-worker mode) or the I/O thread (dedicated mode), with its
 * provided buffers and its counters. Touched by its owner only, but for the counters
 * (pel_io_stats() reads them relaxed) and the release stack. */
struct io_worker {
	struct io_uring ring;
	bool ring_ok;
	bool ded;			/* the I/O thread's ring: results go to the workers' lanes */
	bool reap_blocked;		/* dedicated: the lanes' overflow lists are full */
	struct pel_io *io;
	unsigned id;			/* the worker; the I/O thread: the worker count */
	char name[24];			/* "worker 3", "the I/O thread": for messages */
	unsigned prepared;		/* SQEs prepared since the last enter */
	struct op *wait_head, *wait_tail;	/* accepted, no SQE yet: in order */
	struct op *rearm_head;		/* multishot ops stopped by -ENOBUFS */
	bool cancelling;		/* saw stopping: every operation was cancelled */
	bool can_park;			/* IORING_OP_FUTEX_WAIT: the worker sleeps in the ring */
	bool futex_armed;		/* a futex wait on the parked word is in the ring */
	char futex_mark;		/* its user_data: &futex_mark */
	bool sqpoll;			/* IORING_SETUP_SQPOLL: a kernel thread takes the SQEs */
	bool ring_fd_reg;		/* the ring fd is registered: enter through enter_ring_fd */
	bool woke;			/* SQPOLL: a wake-up went in at SQ head wake_head */
	unsigned wake_head;
	/* registered files: which slots hold one; files_used is read by pel_io_stats() */
	uint8_t *file_used;
	unsigned file_next;		/* where the search for a free slot starts */
	_Atomic uint32_t files_used;
	unsigned nfiles;		/* slots registered at set-up (0: none) */
	_Atomic uint32_t fixed_bufs;	/* registered buffers now (pel_io_buffers_register()) */
	uint32_t napi_us;		/* NAPI busy poll registered (0: off) */
	/* provided buffers */
	struct io_uring_buf_ring *br;
	size_t br_len;
	char *bufs;
	size_t bufs_len;
	unsigned nbufs;
	unsigned in_ring;		/* buffers the kernel may pick now */
	/* recv bundles: which buffer sits at each ring position, the next position pel adds at,
	 * and the next the kernel takes from (CQE order is the kernel's taking order: one task,
	 * SINGLE_ISSUER | DEFER_TASKRUN) */
	bool bundle;
	uint16_t *ring_bid;
	uint32_t add_pos, take_pos;
	/* incremental buffers: per buffer, where the kernel's next piece starts, the pieces the
	 * user holds, whether the kernel is done with it; pieces released by other threads are
	 * counted in inc_rel[] (the release stack holds a buffer once, on its 0 -> 1) */
	bool inc;
	uint32_t *inc_off;
	uint32_t *inc_refs;
	uint8_t *inc_done;
	_Atomic uint32_t *inc_rel;
	/* buffers released by other threads: a tagged Treiber stack of ids, links in rel_next[] */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t rel_head;
	_Atomic uint32_t *rel_next;
	/* counters */
	alignas(PEL_CACHE_GUARD) _Atomic uint64_t submitted, completed, enters, sq_full, cq_overflow,
		rearms, nobufs, inflight, sq_wakeups;
	uint32_t setup_flags, features;
	int setup_err;
	char setup_msg[256];
	/* the I/O thread's park word (1 while it sleeps in the ring): others clear it and wake it */
	alignas(PEL_CACHE_GUARD) _Atomic uint32_t parked;
};

/* A result on its way from the I/O thread to a worker: it rides in the lane's completion ring,
 * at the position of the slot that carries it. */
struct cpl_rec {
	struct pel_io_result r;
	pel_io_cb cb;
	void *arg;
	struct op *op;			/* the final result: the worker frees the operation */
};

/* Dedicated mode: a worker's two SPSC rings with the I/O thread. */
struct io_lane {
	/* the worker's side: requests out, results in */
	alignas(PEL_CACHE_GUARD) struct pel_ring *req;	/* worker -> I/O thread: operations */
	struct op *wait_head, *wait_tail;	/* req was full: in order, pushed next pass */
	_Atomic uint32_t waiting;		/* their count, for io_busy() */
	struct pel_io *io;
	unsigned id;
	/* the I/O thread's side */
	alignas(PEL_CACHE_GUARD) struct pel_ring *cpl;	/* I/O thread -> worker: results */
	struct cpl_rec *rec;			/* rec[pos & mask]: the result in cpl's slot pos */
	uint64_t mask;
	struct cpl_rec *ovf;			/* cpl was full: in order (a ring of ovf_cap) */
	unsigned ovf_head, ovf_cap;
	_Atomic uint32_t novf;
	_Atomic uint64_t delivered;
	int setup_err;
};

struct pel_io {
	struct pel_runtime *rt;
	struct pel_pool *ops;		/* struct op objects */
	struct pel_io_config cfg;
	unsigned nworkers;
	unsigned nrings;		/* per-worker: nworkers; dedicated: 1 */
	struct io_worker **w;		/* the rings: w[worker], or w[0] the I/O thread's */
	_Atomic uint32_t stopped;	/* io_stop() ran: rings and buffers are gone */
	/* dedicated mode */
	bool ded;
	bool ded_may_park;		/* the runtime parks: wakers check the I/O thread's word */
	bool workers_park;		/* not PEL_IDLE_SPIN: a handed result may need a wake */
	struct io_lane **lanes;		/* lanes[worker] */
	struct pel_ring **preq;		/* preq[producer slot]: producer -> I/O thread */
	unsigned npreq;
	_Atomic uint32_t preq_hwm;	/* slots below it have been used: the thread scans them */
	unsigned rr;			/* PEL_IO_STEER_RR's next worker (the I/O thread's) */
	unsigned ovf_total;		/* results in the lanes' overflow lists (the I/O thread's) */
	pthread_t thread;
	bool thread_up;
	_Atomic uint32_t ded_exit;	/* io_stop(): the I/O thread leaves its loop */
	pthread_mutex_t setup_lock;
	pthread_cond_t setup_cond;
	int setup_state;		/* 0 starting, 1 set up, -1 failed */
};

/* ---- small helpers ---- */

static inline void
count(_Atomic uint64_t *c, uint64_t n)
{
	/* relaxed: a counter only its worker writes; pel_io_stats() reads it relaxed */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t
handle_of(const struct op *op)
{
	return (uint64_t)atomic_load_explicit(&op->gen, memory_order_relaxed) << PTR_BITS |
	       ((uintptr_t)op & PTR_MASK);
}

static inline struct op *
op_of_handle(uint64_t h)
{
	return (struct op *)(uintptr_t)(h & PTR_MASK);
}

static void
wait_push(struct io_worker *iw, struct op *op)
{
	atomic_store_explicit(&op->state, OP_WAITING, memory_order_relaxed);
	op->next = NULL;
	if (iw->wait_tail)
		iw->wait_tail->next = op;
	else
		iw->wait_head = op;
	iw->wait_tail = op;
}

/* ---- provided buffers ---- */

static inline void
buf_add(struct io_worker *iw, unsigned bid, int offset)
{
	if (iw->bundle)
		iw->ring_bid[(iw->add_pos + (unsigned)offset) & (iw->nbufs - 1)] = (uint16_t)bid;
	iw->in_ring++;
	io_uring_buf_ring_add(iw->br, iw->bufs + (size_t)bid * iw->io->cfg.buf_size,
			      iw->io->cfg.buf_size, (unsigned short)bid,
			      io_uring_buf_ring_mask(iw->nbufs), offset);
}

/* Publish @p n buffers added with buf_add() to the kernel. */
static inline void
buf_advance(struct io_worker *iw, unsigned n)
{
	iw->add_pos += n;
	io_uring_buf_ring_advance(iw->br, (int)n);
}

/* Incremental buffers: the user gave back @p n pieces of buffer @p bid; once the kernel is done
 * with it and no piece is held, it goes back into the ring, whole. On its worker. */
static void
inc_put(struct io_worker *iw, unsigned bid, uint32_t n)
{
	iw->inc_refs[bid] -= n;
	if (iw->inc_refs[bid] || !iw->inc_done[bid])
		return;
	iw->inc_off[bid] = 0;
	iw->inc_done[bid] = 0;
	buf_add(iw, bid, 0);
	buf_advance(iw, 1);
}

/* Which worker's buffer @p buf is, and its id; -1 when it is none of @p io's. */
static int
buf_owner(const struct pel_io *io, const void *buf, unsigned *bid)
{
	for (unsigned w = 0; w < io->nrings; w++) {
		const struct io_worker *iw = io->w[w];
		size_t off;

		if (!iw->bufs || (const char *)buf < iw->bufs ||
		    (const char *)buf >= iw->bufs + (size_t)iw->nbufs * io->cfg.buf_size)
			continue;
		off = (size_t)((const char *)buf - iw->bufs);
		if (off % io->cfg.buf_size && !iw->inc)	/* incremental: a piece inside one */
			return -1;
		*bid = (unsigned)(off / io->cfg.buf_size);
		return (int)w;
	}
	return -1;
}

static void rearm_waiting(struct io_worker *iw);
static void ded_wake(struct pel_io *io);
static int ded_submit(struct pel_io *io, struct pel_producer *p, int self, struct op *op);

int
pel_io_buf_release(struct pel_io *io, void *buf)
{
	struct io_worker *iw;
	unsigned bid;
	int w;

	if (!io || !buf)
		return pel__fail(-EINVAL, "pel_io_buf_release: %s is NULL", io ? "buf" : "io");
	w = buf_owner(io, buf, &bid);
	if (w < 0)
		return pel__fail(-EINVAL, "pel_io_buf_release: %p is not a provided buffer of this "
				 "I/O layer", buf);
	iw = io->w[w];
	if (!iw->ded && pel__self_id(io->rt) == w) {
		if (iw->inc)
			inc_put(iw, bid, 1);
		else {
			buf_add(iw, bid, 0);
			buf_advance(iw, 1);
		}
		if (iw->rearm_head && !iw->cancelling)
			rearm_waiting(iw);
		return 0;
	}
	/* incremental: count the piece; the buffer goes on the stack only on its first */
	if (iw->inc && atomic_fetch_add_explicit(&iw->inc_rel[bid], 1, memory_order_release))
		return 0;
	/* another thread: onto the worker's release stack, taken back at its next pass */
	uint64_t h = atomic_load_explicit(&iw->rel_head, memory_order_relaxed);

	do {
		atomic_store_explicit(&iw->rel_next[bid], (uint32_t)h, memory_order_relaxed);
		/* release: pairs with the acquire exchange in drain_released(); the link is set */
	} while (!atomic_compare_exchange_weak_explicit(&iw->rel_head, &h,
							((h >> 32) + 1) << 32 | bid,
							memory_order_release, memory_order_relaxed));
	/* a multishot receive may be waiting for it on a parked worker: Dekker with the park
	 * (our push, then pel__worker_wake()'s fence and load of parked; the worker's parked
	 * store, fence, then its pollers). A syscall only when the worker is parked. */
	if (iw->ded)
		ded_wake(io);
	else
		pel__worker_wake(io->rt, (unsigned)w);
	return 0;
}

/* The worker takes back every buffer other threads released. @return how many. */
static unsigned
drain_released(struct io_worker *iw)
{
	uint64_t h;
	uint32_t bid;
	unsigned n = 0;

	/* relaxed look first: no RMW on an empty stack, the common case */
	if ((uint32_t)atomic_load_explicit(&iw->rel_head, memory_order_relaxed) == NIL)
		return 0;
	/* acquire: pairs with the release CAS in pel_io_buf_release(); the links are visible.
	 * Taking the whole stack at once leaves no ABA window (nobody pops but us). */
	h = atomic_exchange_explicit(&iw->rel_head, (uint64_t)NIL, memory_order_acquire);
	if (iw->inc) {
		for (bid = (uint32_t)h; bid != NIL;) {
			/* the link first: once its count is 0 the buffer may be pushed again */
			uint32_t next = atomic_load_explicit(&iw->rel_next[bid], memory_order_relaxed);
			/* acquire: pairs with the releasers' fetch_add; their use of the piece is
			 * over */
			uint32_t k = atomic_exchange_explicit(&iw->inc_rel[bid], 0,
							      memory_order_acquire);

			inc_put(iw, bid, k);
			bid = next;
			n++;
		}
		return n;
	}
	for (bid = (uint32_t)h; bid != NIL;
	     bid = atomic_load_explicit(&iw->rel_next[bid], memory_order_relaxed))
		buf_add(iw, bid, (int)n++);
	buf_advance(iw, n);
	return n;
}

/* ---- submission, on the worker ---- */

static void
prep(struct io_worker *iw, struct io_uring_sqe *sqe, struct op *op)
{
	const struct pel_io_req *r = &op->req;
	bool multi = r->flags & PEL_IO_REQ_MULTISHOT;

	switch (r->opcode) {
	case PEL_IO_NOP:
		io_uring_prep_nop(sqe);
		break;
	case PEL_IO_READ:
		if (r->flags & PEL_IO_REQ_FIXED_BUF)
			io_uring_prep_read_fixed(sqe, r->fd, r->addr, r->len, r->off, r->buf_index);
		else
			io_uring_prep_read(sqe, r->fd, r->addr, r->len, r->off);
		break;
	case PEL_IO_WRITE:
		if (r->flags & PEL_IO_REQ_FIXED_BUF)
			io_uring_prep_write_fixed(sqe, r->fd, r->addr, r->len, r->off, r->buf_index);
		else
			io_uring_prep_write(sqe, r->fd, r->addr, r->len, r->off);
		break;
	case PEL_IO_RECV:
		if (multi && iw->bundle) {
			io_uring_prep_recv_multishot(sqe, r->fd, NULL, 0, r->msg_flags);
			sqe->ioprio |= RECVSEND_BUNDLE;	/* a run of buffers per CQE */
		} else if (multi)
			io_uring_prep_recv_multishot(sqe, r->fd, NULL, 0, r->msg_flags);
		else
			io_uring_prep_recv(sqe, r->fd, r->addr, r->len, r->msg_flags);
		break;
	case PEL_IO_SEND:
		io_uring_prep_send(sqe, r->fd, r->addr, r->len, r->msg_flags);
		break;
	case PEL_IO_RECVMSG:
		if (multi)
			io_uring_prep_recvmsg_multishot(sqe, r->fd, r->addr, (unsigned)r->msg_flags);
		else
			io_uring_prep_recvmsg(sqe, r->fd, r->addr, (unsigned)r->msg_flags);
		break;
	case PEL_IO_SENDMSG:
		io_uring_prep_sendmsg(sqe, r->fd, r->addr, (unsigned)r->msg_flags);
		break;
	case PEL_IO_ACCEPT:
		if (multi)
			io_uring_prep_multishot_accept(sqe, r->fd, NULL, NULL, SOCK_CLOEXEC);
		else
			io_uring_prep_accept(sqe, r->fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case PEL_IO_CONNECT:
		io_uring_prep_connect(sqe, r->fd, (struct sockaddr *)&op->sa, r->len);
		break;
	case PEL_IO_CLOSE:
		io_uring_prep_close(sqe, r->fd);
		break;
	case PEL_IO_TIMEOUT:
		op->ts.tv_sec = (long long)(r->off / PEL_NS_PER_S);
		op->ts.tv_nsec = (long long)(r->off % PEL_NS_PER_S);
		io_uring_prep_timeout(sqe, &op->ts, 0, r->flags & PEL_IO_REQ_ABS ?
					IORING_TIMEOUT_ABS : 0);
		break;
	case PEL_IO_CANCEL:
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op_of_handle(r->off), 0);
		break;
	case PEL_IO_POLL:
		if (multi)
			io_uring_prep_poll_multishot(sqe, r->fd, r->len);
		else
			io_uring_prep_poll_add(sqe, r->fd, r->len);
		break;
	}
	if (r->flags & PEL_IO_REQ_FIXED_FILE)
		sqe->flags |= IOSQE_FIXED_FILE;		/* fd is the slot */
	if (r->flags & PEL_IO_REQ_BUFSEL) {
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BGID;
	}
	io_uring_sqe_set_data(sqe, op);
	atomic_store_explicit(&op->state, OP_INFLIGHT, memory_order_relaxed);
	iw->prepared++;
	pel__trace(io_submit, iw->ded ? atomic_load_explicit(&op->worker, memory_order_relaxed) :
		   iw->id, r->opcode, r->fd, handle_of(op));
}

/* Into the SQ, or behind the ones already waiting for room. */
static void
enqueue(struct io_worker *iw, struct op *op)
{
	struct io_uring_sqe *sqe = iw->wait_head ? NULL : io_uring_get_sqe(&iw->ring);

	if (pel_likely(sqe != NULL)) {
		prep(iw, sqe, op);
		return;
	}
	count(&iw->sq_full, 1);
	wait_push(iw, op);
}

/* Those waiting for SQ room, in order, while there is room. */
static void
move_waiting(struct io_worker *iw)
{
	while (iw->wait_head) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&iw->ring);
		struct op *op = iw->wait_head;

		if (!sqe)
			return;
		iw->wait_head = op->next;
		if (!iw->wait_head)
			iw->wait_tail = NULL;
		prep(iw, sqe, op);
	}
}

static void
rearm_waiting(struct io_worker *iw)
{
	struct op *op = iw->rearm_head;

	iw->rearm_head = NULL;
	while (op) {
		struct op *next = op->next;

		op->rearm = 0;
		count(&iw->rearms, 1);
		enqueue(iw, op);
		op = next;
	}
}

static void cancel_op_here(struct io_worker *iw, struct op *op, uint64_t target);
static void ded_emit(struct io_worker *iw, struct op *op, struct pel_io_result *r, bool final);

/* The operation's life ends on its ring's worker: its object goes back to the pool. */
static void
op_done(struct io_worker *iw, struct op *op)
{
	atomic_store_explicit(&op->state, OP_FREE, memory_order_relaxed);
	/* release: after its callbacks; a thread that reads inflight 0 (acquire, pel_io_stats())
	 * then sees what they did, the tasks they queued too (pel_drain() after it counts them) */
	atomic_store_explicit(&iw->inflight, atomic_load_explicit(&iw->inflight,
			      memory_order_relaxed) - 1, memory_order_release);
	pel_free(iw->io->ops, op);
}

/* One result of @p op to its callback: here, as a task would run (per-worker mode), or through
 * a worker's lane (dedicated mode). @p final: the operation's last; it ends with it. */
static inline void
emit(struct io_worker *iw, struct op *op, struct pel_io_result *r, bool final)
{
	if (iw->ded) {
		ded_emit(iw, op, r, final);
		return;
	}
	pel__trace(task_start, iw->id, (const void *)op->req.cb, PEL__TRACE_SRC_IO, r->handle);
	op->req.cb(r, op->req.arg);
	pel__trace(task_end, iw->id, (const void *)op->req.cb, PEL__TRACE_SRC_IO, r->handle);
	if (final)
		op_done(iw, op);
}

/* The task a request travels in from another thread; also the direct path on its worker. */
static void
submit_here(struct io_worker *iw, struct op *op)
{
	if (pel_unlikely(iw->cancelling)) {
		/* the runtime stops: it was accepted, so its callback runs */
		struct pel_io_result r = { -ECANCELED, 0, NULL, 0, iw->id, handle_of(op) };

		emit(iw, op, &r, true);
		return;
	}
	if (op->req.opcode == PEL_IO_CANCEL) {
		cancel_op_here(iw, op, op->req.off);
		return;
	}
	enqueue(iw, op);
}

/* The task a request from another thread travels in. */
static void
submit_task(void *arg)
{
	struct op *op = arg;
	struct io_worker *iw = op->io->w[atomic_load_explicit(&op->worker, memory_order_relaxed)];

	count(&iw->inflight, 1);	/* only the worker writes it */
	submit_here(iw, op);
}

/* The operation behind a handle is still that use, on that worker, in that state. */
static bool
op_is(const struct op *t, uint16_t gen, unsigned worker, enum op_state state)
{
	return atomic_load_explicit(&t->gen, memory_order_relaxed) == gen &&
	       atomic_load_explicit(&t->worker, memory_order_relaxed) == worker &&
	       atomic_load_explicit(&t->state, memory_order_relaxed) == state;
}

/* A cancel of an operation still waiting for SQ room is done here; others go to the kernel. */
static void
cancel_op_here(struct io_worker *iw, struct op *op, uint64_t target)
{
	struct op *t = op_of_handle(target);
	uint16_t gen = (uint16_t)(target >> PTR_BITS);
	unsigned w = iw->id;

	if (!pel__pool_owns(iw->io->ops, t))
		t = NULL;	/* a handle no operation ever had */
	else if (iw->ded)
		w = atomic_load_explicit(&t->worker, memory_order_relaxed);	/* one ring */
	if (t && (op_is(t, gen, w, OP_WAITING) || (op_is(t, gen, w, OP_INFLIGHT) && t->rearm))) {
		/* waiting for SQ room, or a multishot receive stopped for buffers: not in the
		 * kernel, so cancelled here */
		struct op **pp = t->rearm ? &iw->rearm_head : &iw->wait_head, *prev = NULL;
		struct pel_io_result r = { -ECANCELED, 0, NULL, 0, iw->id, target };

		while (*pp != t) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = t->next;
		if (!t->rearm && iw->wait_tail == t)
			iw->wait_tail = prev;
		t->rearm = 0;
		emit(iw, t, &r, true);
		r.res = 0;
		r.handle = handle_of(op);
		emit(iw, op, &r, true);
		return;
	}
	if (!t || !op_is(t, gen, w, OP_INFLIGHT))
		op->req.off = 0;	/* stale or elsewhere: the kernel finds no such user_data */
	enqueue(iw, op);
}

/* PEL_IO_REQ_FIXED_FILE: an opcode with an fd, an index in range (its slot the kernel checks). */
static int
check_fixed_file(const struct pel_io *io, const struct pel_io_req *req)
{
	switch (req->opcode) {
	case PEL_IO_READ: case PEL_IO_WRITE: case PEL_IO_RECV: case PEL_IO_SEND:
	case PEL_IO_RECVMSG: case PEL_IO_SENDMSG: case PEL_IO_ACCEPT: case PEL_IO_CONNECT:
	case PEL_IO_POLL:
		break;
	default:
		return pel__fail(-EINVAL, "pel_io_submit: FIXED_FILE is for read, write, recv, "
				 "send, recvmsg, sendmsg, accept, connect and poll");
	}
	if (!io->cfg.files)
		return pel__fail(-EINVAL, "pel_io_submit: FIXED_FILE, but the I/O layer has no "
				 "registered file slots (set pel_io_config.files)");
	if (req->fd < 0 || (unsigned)req->fd >= io->cfg.files)
		return pel__fail(-EINVAL, "pel_io_submit: FIXED_FILE index %d is outside 0..%u",
				 req->fd, io->cfg.files - 1);
	return 0;
}

int
pel_io_submit(struct pel_io *io, struct pel_producer *p, unsigned worker,
	      const struct pel_io_req *req, uint64_t *handle)
{
	struct io_worker *iw;
	struct op *op;
	int self, err;

	if (pel_unlikely(!io || !req))
		return pel__fail(-EINVAL, "pel_io_submit: %s is NULL", io ? "req" : "io");
	if (pel_unlikely(worker >= io->nworkers))
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, io->nworkers);
	if (pel_unlikely(!req->cb || req->opcode >= PEL__IO_OPS))
		return pel__fail(-EINVAL, "pel_io_submit: %s", req->cb ? "unknown opcode" :
				 "the callback is NULL");
	if (pel_unlikely(req->flags & ~REQ_FLAGS))
		return pel__fail(-EINVAL, "pel_io_submit: flags 0x%x hold unknown bits", req->flags);
	if (pel_unlikely(req->flags & PEL_IO_REQ_FIXED_FILE)) {
		err = check_fixed_file(io, req);
		if (err)
			return err;
	}
	if (pel_unlikely(req->flags & PEL_IO_REQ_FIXED_BUF) &&
	    ((req->opcode != PEL_IO_READ && req->opcode != PEL_IO_WRITE) || io->ded))
		return pel__fail(-EINVAL, "pel_io_submit: FIXED_BUF is for read and write, in "
				 "PEL_IO_PER_WORKER mode");
	if (pel_unlikely((req->flags & PEL_IO_REQ_MULTISHOT) && req->opcode != PEL_IO_ACCEPT &&
			 req->opcode != PEL_IO_RECV && req->opcode != PEL_IO_RECVMSG &&
			 req->opcode != PEL_IO_POLL))
		return pel__fail(-EINVAL, "pel_io_submit: MULTISHOT is for accept, recv, recvmsg "
				 "and poll");
	if (pel_unlikely(req->flags & PEL_IO_REQ_BUFSEL)) {
		if (req->opcode != PEL_IO_RECV && req->opcode != PEL_IO_RECVMSG)
			return pel__fail(-EINVAL, "pel_io_submit: BUFSEL is for recv and recvmsg");
		if (!io->cfg.buf_count)
			return pel__fail(-ENOBUFS, "pel_io_submit: BUFSEL, but the I/O layer has no "
					 "provided buffers (set pel_io_config.buf_count)");
		if (req->opcode == PEL_IO_RECVMSG && (io->cfg.flags & PEL_IO_CF_BUF_INC))
			return pel__fail(-EINVAL, "pel_io_submit: recvmsg into incremental buffers "
					 "(PEL_IO_CF_BUF_INC): use recv (a stream)");
	}
	if (pel_unlikely((req->flags & PEL_IO_REQ_MULTISHOT) && req->opcode == PEL_IO_RECV &&
			 !(req->flags & PEL_IO_REQ_BUFSEL)))
		return pel__fail(-EINVAL, "pel_io_submit: a multishot recv needs BUFSEL");
	if (pel_unlikely(req->opcode == PEL_IO_CONNECT && (!req->addr || req->len == 0 ||
							   req->len > sizeof(struct sockaddr_storage))))
		return pel__fail(-EINVAL, "pel_io_submit: connect address NULL or its length %u "
				 "outside 1..%zu", req->len, sizeof(struct sockaddr_storage));
	self = pel__self_id(io->rt);
	if (self >= 0)
		p = NULL;	/* a task goes through the worker mesh, whatever it was given */
	if (pel_unlikely(!p && self < 0))
		return pel__fail(-EPERM, "pel_io_submit: no producer handle and not in a task of this "
				 "runtime");
	if (p) {
		/* the producer's section: pel_destroy() waits for it, so the layer stays */
		err = pel__producer_enter(p);
		if (pel_unlikely(err))
			return err;
	} else if (pel_unlikely(pel__rt_stopping(io->rt))) {
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	}
	op = pel_alloc(io->ops);
	if (pel_unlikely(!op)) {
		if (p)
			pel__producer_leave(p);
		return pel__fail(-EAGAIN, "pel_io_submit: %u operations are in flight on the workers "
				 "(max_ops %u each): retry when some have completed",
				 io->cfg.max_ops * io->nworkers, io->cfg.max_ops);
	}
	atomic_store_explicit(&op->gen, atomic_load_explicit(&op->gen, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&op->state, OP_QUEUED, memory_order_relaxed);
	op->rearm = 0;
	atomic_store_explicit(&op->worker, worker, memory_order_relaxed);
	op->io = io;
	op->req = *req;
	if (req->opcode == PEL_IO_CONNECT) {
		memcpy(&op->sa, req->addr, req->len);
		op->req.addr = &op->sa;
	}
	if (handle)
		*handle = handle_of(op);
	if (io->ded) {
		err = ded_submit(io, p, self, op);
		if (p)
			pel__producer_leave(p);
		return err;
	}
	iw = io->w[worker];
	if (self == (int)worker) {
		/* on its own worker: straight into the SQ, submitted at the end of this pass */
		count(&iw->inflight, 1);
		submit_here(iw, op);
		return 0;
	}
	/* another thread: the request travels as the argument of a task to its worker */
	err = p ? pel__producer_push(p, worker, submit_task, op) :
		  pel_spawn(worker, submit_task, op);
	if (pel_unlikely(err)) {
		atomic_store_explicit(&op->state, OP_FREE, memory_order_relaxed);
		pel_free(io->ops, op);
	}
	if (p)
		pel__producer_leave(p);
	return err;
}

/* ---- dedicated mode: the lanes between the workers and the I/O thread ---- */

/* The slot word of lane rings (their consumers read the op from arg, not a function). */
static void
lane_marker(void *arg)
{
	(void)arg;
}

/* Wake the I/O thread if it sleeps in its ring: Dekker with ded_park() (our push, a fence, its
 * parked word; its parked store, a fence, its look at the rings). A syscall only then. */
static void
ded_wake(struct pel_io *io)
{
	struct io_worker *iw = io->w[0];

	if (!io->ded_may_park)
		return;
	pel__fence();
	/* relaxed: ordered by the fence; the exchange decides who wakes it */
	if (pel_unlikely(atomic_load_explicit(&iw->parked, memory_order_relaxed)) &&
	    atomic_exchange_explicit(&iw->parked, 0, memory_order_acq_rel))
		syscall(SYS_futex, &iw->parked, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* A worker's requests that found its lane full, in order, while there is room. */
static unsigned
lane_flush(struct io_lane *l)
{
	unsigned n = 0;

	while (l->wait_head) {
		struct op *op = l->wait_head, *next = op->next;	/* the I/O thread's once pushed */

		if (pel_ring_push(l->req, lane_marker, op))
			break;
		l->wait_head = next;
		n++;
	}
	if (!l->wait_head)
		l->wait_tail = NULL;
	if (n) {
		/* release: after the pushes, so io_busy() sees each in one place or the other */
		atomic_store_explicit(&l->waiting, atomic_load_explicit(&l->waiting,
				      memory_order_relaxed) - n, memory_order_release);
		ded_wake(l->io);
	}
	return n;
}

/* Dedicated mode: hand @p op to the I/O thread, from a task (its worker's lane) or a producer
 * (its own ring). A full lane keeps it in order, for the worker's next pass; a full producer ring
 * is -EAGAIN, as pel_submit() says. */
static int
ded_submit(struct pel_io *io, struct pel_producer *p, int self, struct op *op)
{
	if (p) {
		unsigned slot = pel__producer_slot(p);
		uint32_t hwm = atomic_load_explicit(&io->preq_hwm, memory_order_relaxed);

		if (pel_unlikely(pel_ring_push(io->preq[slot], lane_marker, op))) {
			atomic_store_explicit(&op->state, OP_FREE, memory_order_relaxed);
			pel_free(io->ops, op);
			return pel__fail(-EAGAIN, "pel_io_submit: the producer's ring to the I/O thread "
					 "is full (%u requests): retry later", io->cfg.cq_entries);
		}
		/* release: pairs with the I/O thread's acquire; it scans rings below hwm */
		while (hwm <= slot && !atomic_compare_exchange_weak_explicit(
				&io->preq_hwm, &hwm, slot + 1, memory_order_release,
				memory_order_relaxed))
			;
		ded_wake(io);
		return 0;
	}
	struct io_lane *l = io->lanes[self];

	if (pel_likely(!l->wait_head) && pel_likely(pel_ring_push(l->req, lane_marker, op) == 0)) {
		ded_wake(io);
		return 0;
	}
	op->next = NULL;
	if (l->wait_tail)
		l->wait_tail->next = op;
	else
		l->wait_head = op;
	l->wait_tail = op;
	atomic_store_explicit(&l->waiting, atomic_load_explicit(&l->waiting,
			      memory_order_relaxed) + 1, memory_order_relaxed);
	return 0;
}

/* The worker's poller (dedicated mode): its results from the I/O thread run as tasks would, and
 * its requests that found the lane full go out. */
static int
lane_poll(void *ctx)
{
	struct io_lane *l = ctx;
	struct pel_task t[32];
	unsigned n, found = 0;

	if (pel_unlikely(l->wait_head))
		found += lane_flush(l) + 1;	/* still waiting: do not park */
	while ((n = pel_ring_peek_burst(l->cpl, t, 32)) > 0) {
		uint64_t head = atomic_load_explicit(&l->cpl->cons.head, memory_order_relaxed);

		for (unsigned i = 0; i < n; i++) {
			struct cpl_rec *c = &l->rec[(head + i) & l->mask];
			struct pel_io_result r = c->r;

			r.worker = l->id;
			pel__trace(task_start, l->id, (const void *)c->cb, PEL__TRACE_SRC_IO, r.handle);
			c->cb(&r, c->arg);
			pel__trace(task_end, l->id, (const void *)c->cb, PEL__TRACE_SRC_IO, r.handle);
			if (c->op) {
				atomic_store_explicit(&c->op->state, OP_FREE, memory_order_relaxed);
				pel_free(l->io->ops, c->op);
			}
		}
		/* after the callbacks: io_busy() sees the results until they have run */
		pel_ring_consume(l->cpl, n);
		found += n;
		/* results wait for room in the I/O thread's overflow list: it may sleep, say so */
		if (atomic_load_explicit(&l->novf, memory_order_relaxed))
			ded_wake(l->io);
	}
	return (int)found;
}

static unsigned lanes_flush(struct pel_io *io);

/*
 * The overflow list is full: double it (only the I/O thread touches its entries; workers read
 * novf). CQEs never get here (ded_room() stops the reaping first); results without a CQE do
 * (cancels, requests taken while stopping), and none may be lost. Cold: allocation. On failure
 * it waits for the worker to take results. @return true.
 */
static bool
ovf_grow(struct io_lane *l)
{
	unsigned cap = l->ovf_cap * 2;
	struct cpl_rec *n = malloc((size_t)cap * sizeof(*n));

	if (!n) {
		pel__rt_log(l->io->rt, PEL_LOG_ERROR, "the I/O thread: out of memory for worker %u's "
			    "%u waiting results: waits for the worker to take some", l->id,
			    l->ovf_cap);
		while (atomic_load_explicit(&l->novf, memory_order_relaxed) == l->ovf_cap)
			if (!lanes_flush(l->io))
				pel__cpu_relax();
		return true;
	}
	for (unsigned i = 0; i < l->ovf_cap; i++)
		n[i] = l->ovf[(l->ovf_head + i) % l->ovf_cap];
	free(l->ovf);
	l->ovf = n;
	l->ovf_head = 0;
	l->ovf_cap = cap;
	return true;
}

/* Into @p l's completion ring, or behind the ones waiting for room there. */
static bool
lane_put(struct io_lane *l, const struct cpl_rec *c)
{
	uint32_t novf = atomic_load_explicit(&l->novf, memory_order_relaxed);

	if (pel_likely(!novf)) {
		uint64_t pos = atomic_load_explicit(&l->cpl->prod.tail, memory_order_relaxed);

		/* room first: the record at pos is the worker's until it consumed that slot */
		if (pel_likely(pel__ring_free(l->cpl, pos, 1))) {
			l->rec[pos & l->mask] = *c;
			/* the push's release publishes the record with its slot */
			pel_ring_push(l->cpl, lane_marker, c->op);
			return true;
		}
	}
	if (pel_unlikely(novf == l->ovf_cap) && !ovf_grow(l))
		return false;
	l->ovf[(l->ovf_head + novf) % l->ovf_cap] = *c;
	atomic_store_explicit(&l->novf, novf + 1, memory_order_relaxed);
	l->io->ovf_total++;
	return true;
}

/* The I/O thread moves results that waited for room into the lanes' rings, in order. */
static unsigned
lanes_flush(struct pel_io *io)
{
	unsigned moved = 0;

	for (unsigned w = 0; io->ovf_total && w < io->nworkers; w++) {
		struct io_lane *l = io->lanes[w];
		uint32_t novf = atomic_load_explicit(&l->novf, memory_order_relaxed);
		unsigned n = 0;

		while (n < novf) {
			const struct cpl_rec *c = &l->ovf[l->ovf_head];
			uint64_t pos = atomic_load_explicit(&l->cpl->prod.tail, memory_order_relaxed);

			if (!pel__ring_free(l->cpl, pos, 1))
				break;
			l->rec[pos & l->mask] = *c;
			pel_ring_push(l->cpl, lane_marker, c->op);
			l->ovf_head = (l->ovf_head + 1) % l->ovf_cap;
			n++;
		}
		if (!n)
			continue;
		/* release: after the pushes (io_busy()) */
		atomic_store_explicit(&l->novf, novf - n, memory_order_release);
		io->ovf_total -= n;
		moved += n;
		if (io->workers_park)
			pel__worker_wake(io->rt, w);
	}
	return moved;
}

/* How many CQEs the I/O thread may reap now: each gives at most two results (a last one and a
 * -ECANCELED), and every one of them must find room in its lane or its overflow list. */
static unsigned
ded_room(struct pel_io *io)
{
	unsigned room = io->lanes[0]->ovf_cap / 2;

	for (unsigned w = 0; io->ovf_total && w < io->nworkers; w++) {
		struct io_lane *l = io->lanes[w];
		unsigned r = (l->ovf_cap - atomic_load_explicit(&l->novf, memory_order_relaxed)) / 2;

		if (r < room)
			room = r;
	}
	return room < 64 ? room : 64;
}

static inline uint32_t
mix32(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (uint32_t)h;
}

/* PEL_IO_STEER_HASH: the flow of a multishot result: the peer of a datagram (recvmsg, whose
 * buffer starts with the kernel's io_uring_recvmsg_out and the name), the new connection of an
 * accept, else the fd. */
static uint32_t
flow_hash(const struct op *op, const struct pel_io_result *r)
{
	uint64_t h = (uint64_t)(unsigned)op->req.fd * UINT64_C(0x9e3779b97f4a7c15);

	if (op->req.opcode == PEL_IO_ACCEPT && r->res >= 0)
		return mix32((uint64_t)(unsigned)r->res * UINT64_C(0x9e3779b97f4a7c15));
	if (op->req.opcode == PEL_IO_RECVMSG && r->buf && r->res > 0) {
		struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(r->buf, r->res,
									   op->req.addr);
		const unsigned char *name;
		uint32_t len;

		if (!o)
			return mix32(h);
		name = io_uring_recvmsg_name(o);
		len = o->namelen < ((struct msghdr *)op->req.addr)->msg_namelen ? o->namelen :
		      ((struct msghdr *)op->req.addr)->msg_namelen;
		for (uint32_t i = 0; i < len; i++)		/* FNV-1a over the address */
			h = (h ^ name[i]) * UINT64_C(0x100000001b3);
	}
	return mix32(h);
}

/* Which worker gets this result of @p op. */
static unsigned
steer(struct pel_io *io, const struct op *op, const struct pel_io_result *r, bool final)
{
	unsigned n = io->nworkers, best;
	uint64_t q, bq = UINT64_MAX;

	if (final || (op->req.flags & (PEL_IO_REQ_MULTISHOT | PEL_IO_REQ_NO_STEER)) !=
	    PEL_IO_REQ_MULTISHOT || n == 1)
		return atomic_load_explicit(&op->worker, memory_order_relaxed);
	switch (io->cfg.steer) {
	case PEL_IO_STEER_HASH:
		return flow_hash(op, r) % n;
	case PEL_IO_STEER_RR:
		best = io->rr;
		io->rr = best + 1 == n ? 0 : best + 1;
		return best;
	case PEL_IO_STEER_JSQ:
		best = 0;
		for (unsigned w = 0; w < n; w++) {
			struct io_lane *l = io->lanes[w];

			q = pel_ring_count(l->cpl) +
			    atomic_load_explicit(&l->novf, memory_order_relaxed);
			if (q < bq) {
				bq = q;
				best = w;
			}
		}
		return best;
	default:
		return atomic_load_explicit(&op->worker, memory_order_relaxed);
	}
}

/* The I/O thread hands one result of @p op to a worker; the final one ends the operation there
 * (the worker frees it after its callback). */
static void
ded_emit(struct io_worker *iw, struct op *op, struct pel_io_result *r, bool final)
{
	struct pel_io *io = iw->io;
	unsigned w = steer(io, op, r, final);
	struct io_lane *l = io->lanes[w];
	struct cpl_rec c = { *r, op->req.cb, op->req.arg, final ? op : NULL };
	bool ok;

	c.r.worker = w;
	if (final)	/* a stale handle's cancel on this thread no longer sees it in flight */
		atomic_store_explicit(&op->state, OP_FREE, memory_order_relaxed);
	ok = lane_put(l, &c);
	assert(ok);	/* the overflow list grows when it must */
	(void)ok;
	atomic_store_explicit(&l->delivered, atomic_load_explicit(&l->delivered,
			      memory_order_relaxed) + 1, memory_order_relaxed);
	if (final)
		/* release: after the result is in the lane, so io_busy() sees the operation in
		 * one place or the other */
		atomic_store_explicit(&iw->inflight, atomic_load_explicit(&iw->inflight,
				      memory_order_relaxed) - 1, memory_order_release);
	/* spinning workers never park: no fence, no look at their word, per result */
	if (io->workers_park)
		pel__worker_wake(io->rt, w);
}

/* The I/O thread takes the requests of the workers' lanes and the producers' rings. */
static unsigned
take_requests(struct pel_io *io, struct io_worker *iw)
{
	/* acquire: pairs with the release in ded_submit(); rings below hwm are in use */
	unsigned np = atomic_load_explicit(&io->preq_hwm, memory_order_acquire);
	unsigned found = 0;

	for (unsigned r = 0; r < io->nworkers + np; r++) {
		struct pel_ring *ring = r < io->nworkers ? io->lanes[r]->req :
					io->preq[r - io->nworkers];
		struct pel_task t[32];
		unsigned n = pel_ring_peek_burst(ring, t, 32);

		if (!n)
			continue;
		/* in flight before the lane lets go of them (io_busy()) */
		atomic_store_explicit(&iw->inflight, atomic_load_explicit(&iw->inflight,
				      memory_order_relaxed) + n, memory_order_relaxed);
		for (unsigned i = 0; i < n; i++)
			submit_here(iw, t[i].arg);
		pel_ring_consume(ring, n);
		found += n;
	}
	return found;
}

/* Anything for the I/O thread to do? (Before it sleeps, after its parked word is up.) */
static bool
ded_has_work(struct pel_io *io, struct io_worker *iw)
{
	unsigned np = atomic_load_explicit(&io->preq_hwm, memory_order_acquire);

	if ((io_uring_cq_ready(&iw->ring) && !iw->reap_blocked) || iw->wait_head ||
	    iw->prepared ||
	    (uint32_t)atomic_load_explicit(&iw->rel_head, memory_order_relaxed) != NIL ||
	    (!iw->cancelling && pel__rt_stopping(io->rt)) ||
	    atomic_load_explicit(&io->ded_exit, memory_order_acquire))
		return true;
	for (unsigned r = 0; r < io->nworkers + np; r++)
		if (pel_ring_count(r < io->nworkers ? io->lanes[r]->req :
				   io->preq[r - io->nworkers]))
			return true;
	/* results waiting for a lane: work once the worker has made room (it wakes us then) */
	for (unsigned w = 0; io->ovf_total && w < io->nworkers; w++) {
		struct io_lane *l = io->lanes[w];

		if (atomic_load_explicit(&l->novf, memory_order_relaxed) &&
		    pel__ring_free(l->cpl, atomic_load_explicit(&l->cpl->prod.tail,
								memory_order_relaxed), 1))
			return true;
	}
	return false;
}

static void io_park(void *ctx, _Atomic uint32_t *word);

/* The I/O thread sleeps in its ring: a request's wake (ded_wake()) or a completion ends it. */
static void
ded_park(struct pel_io *io, struct io_worker *iw)
{
	atomic_store_explicit(&iw->parked, 1, memory_order_relaxed);
	/* full barrier: pairs with the fence in ded_wake() */
	pel__fence();
	if (!ded_has_work(io, iw))
		io_park(iw, &iw->parked);
	atomic_exchange_explicit(&iw->parked, 0, memory_order_acq_rel);
}

static int ring_init(struct io_worker *iw);
static int napi_init(struct io_worker *iw);
static int bufs_init(struct io_worker *iw);
static bool futex_wait_supported(struct io_uring *ring);
static unsigned ring_pass(struct io_worker *iw);
static int setup_fail(struct io_worker *iw, int err, const char *fmt, ...) pel__printf(3, 4);

/* The I/O thread: its ring is created here (SINGLE_ISSUER: the submitter is the creator). It
 * polls while the runtime's workers would (spin, backoff's spin stage), then sleeps in the ring. */
static void *
ded_main(void *arg)
{
	struct pel_io *io = arg;
	struct io_worker *iw = io->w[0];
	enum pel_idle mode = pel__rt_idle(io->rt);
	uint64_t idle_since = 0, spin_ns = 50 * 1000;
	int err = 0;

	pthread_setname_np(pthread_self(), "pel-io");
	if (io->cfg.io_cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(io->cfg.io_cpu, &set);
		err = -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (err)
			setup_fail(iw, err, "the I/O thread cannot be pinned to cpu %d: %s "
				   "(outside this process's cpuset?)", io->cfg.io_cpu, strerror(-err));
	}
	if (!err)
		err = ring_init(iw);
	if (!err)
		err = napi_init(iw);
	if (!err)
		err = bufs_init(iw);
	if (!err)
		io->ded_may_park = mode != PEL_IDLE_SPIN && !(io->cfg.flags & PEL_IO_CF_NO_PARK) &&
				   futex_wait_supported(&iw->ring);
	iw->can_park = io->ded_may_park;
	pthread_mutex_lock(&io->setup_lock);
	io->setup_state = err ? -1 : 1;
	pthread_cond_broadcast(&io->setup_cond);
	pthread_mutex_unlock(&io->setup_lock);
	if (err)
		return NULL;
	while (!atomic_load_explicit(&io->ded_exit, memory_order_acquire)) {
		unsigned found = lanes_flush(io) + take_requests(io, iw);

		found += ring_pass(iw);
		if (found) {
			idle_since = 0;
			continue;
		}
		if (!io->ded_may_park) {
			if (mode == PEL_IDLE_SPIN)
				pel__cpu_relax();
			else
				sched_yield();	/* no futex operation: it cannot sleep in the ring */
			continue;
		}
		if (mode == PEL_IDLE_BACKOFF) {
			uint64_t now = pel__mono_ns();

			if (!idle_since)
				idle_since = now;
			if (now - idle_since < spin_ns) {
				pel__cpu_relax();
				continue;
			}
		}
		ded_park(io, iw);
		idle_since = 0;
	}
	return NULL;
}

/* ---- completions, on the worker ---- */

/* A multishot operation stopped: re-arm it (counted) when pel, not the user, should. */
static bool
wants_rearm(const struct op *op, const struct io_uring_cqe *cqe)
{
	if (!(op->req.flags & PEL_IO_REQ_MULTISHOT) || (cqe->flags & IORING_CQE_F_MORE))
		return false;
	if (cqe->res == -ENOBUFS)
		return true;
	/* the kernel may end a multishot receive or accept that still works (its retry limit,
	 * an overflowing CQ): a result, no MORE. A receive of 0 bytes is the peer's end. */
	return cqe->res > 0 || (cqe->res == 0 && op->req.opcode == PEL_IO_ACCEPT);
}

/*
 * A recv bundle: one CQE for a run of buffers the kernel took in ring order from the position
 * after the last one it took. Every buffer but the last goes to the callback as a result of its
 * own (full, PEL_IO_F_MORE); the caller delivers the last with the CQE's own flags. A CQE of any
 * other receive takes one buffer. @return the id of the last buffer (@p r->res its bytes).
 */
static unsigned
bundle_take(struct io_worker *iw, struct op *op, struct pel_io_result *r, unsigned bid)
{
	unsigned size = iw->io->cfg.buf_size, mask = iw->nbufs - 1;
	unsigned nb = r->res > (int)size ? ((unsigned)r->res + size - 1) / size : 1;

	if (pel_unlikely(iw->ring_bid[iw->take_pos & mask] != bid)) {
		/* the kernel took buffers in another order than pel believes: only the CQE's own
		 * buffer is known for sure; say so (never seen: one task posts them in order) */
		pel__rt_log(iw->io->rt, PEL_LOG_ERROR, "%s: recv bundle began at buffer %u, pel "
			    "expected %u: resynchronised", iw->name, bid,
			    iw->ring_bid[iw->take_pos & mask]);
		for (unsigned i = 0; i < iw->nbufs; i++)
			if (iw->ring_bid[(iw->take_pos + i) & mask] == bid) {
				iw->take_pos += i;
				break;
			}
	}
	for (unsigned i = 0; i + 1 < nb; i++) {
		struct pel_io_result part = *r;

		part.res = (int32_t)size;
		part.flags = PEL_IO_F_MORE | PEL_IO_F_BUFFER;
		part.buf = iw->bufs + (size_t)iw->ring_bid[(iw->take_pos + i) & mask] * size;
		part.buf_size = size;
		iw->in_ring--;
		emit(iw, op, &part, false);
	}
	bid = iw->ring_bid[(iw->take_pos + nb - 1) & mask];
	r->res -= (int32_t)((nb - 1) * size);
	iw->take_pos += nb;
	return bid;
}

/* @return 1 for an operation's CQE, 0 for pel's own (the cancel-all, the park's futex wait) */
static unsigned
complete(struct io_worker *iw, struct io_uring_cqe *cqe)
{
	struct op *op = io_uring_cqe_get_data(cqe);
	struct pel_io_result r;
	bool more, rearm;

	if (!op)
		return 0;	/* the internal cancel-all of shutdown */
	if ((void *)op == &iw->futex_mark) {
		iw->futex_armed = false;	/* the park's futex wait: woken, or cancelled */
		return 0;
	}
	more = cqe->flags & IORING_CQE_F_MORE;
	rearm = wants_rearm(op, cqe);
	pel__trace(io_complete, iw->ded ? atomic_load_explicit(&op->worker, memory_order_relaxed) :
		   iw->id, op->req.opcode, cqe->res, cqe->flags, handle_of(op));
	if (cqe->res == -ENOBUFS && rearm && pel_unlikely(iw->cancelling)) {
		/* stopping: the cancel-all has gone by; the stream ends here, told */
		struct pel_io_result c = { -ECANCELED, 0, NULL, 0, iw->id, handle_of(op) };

		emit(iw, op, &c, true);
		return 1;
	}
	if (cqe->res == -ENOBUFS && rearm) {
		/* out of buffers: not the user's error; back in when buffers come back */
		count(&iw->nobufs, 1);
		op->rearm = 1;
		op->next = iw->rearm_head;
		iw->rearm_head = op;
		return 1;
	}
	r.res = cqe->res;
	r.flags = more || rearm ? PEL_IO_F_MORE : 0;
	r.buf = NULL;
	r.buf_size = 0;
	r.worker = iw->id;
	r.handle = handle_of(op);
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT, size = iw->io->cfg.buf_size;

		if (iw->bundle)
			bid = bundle_take(iw, op, &r, bid);	/* the run's last buffer */
		r.flags |= PEL_IO_F_BUFFER;
		if (iw->inc) {
			/* a piece: where the kernel's last one ended; the buffer stays in the ring
			 * while the kernel says BUF_MORE */
			uint32_t at = iw->inc_off[bid];

			r.buf = iw->bufs + (size_t)bid * size + at;
			r.buf_size = size - at;
			iw->inc_off[bid] = at + (r.res > 0 ? (uint32_t)r.res : 0);
			iw->inc_refs[bid]++;
			if (!(cqe->flags & CQE_F_BUF_MORE)) {
				iw->inc_done[bid] = 1;
				iw->in_ring--;
			}
		} else {
			iw->in_ring--;
			r.buf = iw->bufs + (size_t)bid * size;
			r.buf_size = size;
		}
	}
	emit(iw, op, &r, !more && !rearm);	/* final: the op is gone after this */
	if (more || !rearm)
		return 1;
	if (!iw->cancelling) {
		count(&iw->rearms, 1);
		enqueue(iw, op);
		return 1;
	}
	/* stopping: the stream ends here, and the user hears of it */
	r.res = -ECANCELED;
	r.flags = 0;
	r.buf = NULL;
	r.buf_size = 0;
	emit(iw, op, &r, true);
	return 1;
}

/* Shutdown: every operation of this ring is cancelled; those waiting, and those stopped for
 * buffers, end here with -ECANCELED. */
static void
cancel_everything(struct io_worker *iw)
{
	struct io_uring_sqe *sqe;
	struct op *lists[2] = { iw->wait_head, iw->rearm_head };

	iw->cancelling = true;
	iw->wait_head = iw->wait_tail = NULL;
	iw->rearm_head = NULL;
	for (unsigned l = 0; l < 2; l++) {
		for (struct op *op = lists[l], *next; op; op = next) {
			struct pel_io_result r = { -ECANCELED, 0, NULL, 0, iw->id, handle_of(op) };

			next = op->next;
			op->rearm = 0;
			emit(iw, op, &r, true);
		}
	}
	sqe = io_uring_get_sqe(&iw->ring);
	if (!sqe) {
		io_uring_submit(&iw->ring);
		sqe = io_uring_get_sqe(&iw->ring);
	}
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data(sqe, NULL);
		iw->prepared++;
	}
}

/*
 * SQPOLL: the kernel's SQ thread takes the SQEs; the worker publishes the SQ tail and enters only
 * to wake that thread when it went to sleep with SQEs left (IORING_SQ_NEED_WAKEUP) or to flush an
 * overflowed CQ: one enter at most, counted like any other. liburing 2.3's io_uring_submit() does
 * the same but does not say whether it entered, so the tail is published here.
 * @return 1 when it handed SQEs over, entered, or operations wait for SQ room; else 0.
 */
static unsigned
sqpoll_kick(struct io_worker *iw)
{
	struct io_uring *ring = &iw->ring;
	struct io_uring_sq *sq = &ring->sq;
	unsigned n = iw->prepared, kflags, eflags = 0;
	int ret;

	if (sq->sqe_head != sq->sqe_tail) {
		sq->sqe_head = sq->sqe_tail;
		/* release: pairs with the SQ thread's acquire load of the tail (io_get_sqring());
		 * the SQEs before it are written */
		io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
	}
	if (n)
		count(&iw->submitted, n);
	iw->prepared = 0;
	/* full fence: our tail store before our load of NEED_WAKEUP; pairs with the SQ thread's
	 * smp_mb() between its store of NEED_WAKEUP and its last look at the tail before it sleeps:
	 * either it sees our SQEs, or we see the flag (the kernel's io_uring.c, "SQPOLL") */
	atomic_thread_fence(memory_order_seq_cst);
	kflags = IO_URING_READ_ONCE(*ring->sq.kflags);
	if ((kflags & IORING_SQ_NEED_WAKEUP) && io_uring_sq_ready(ring)) {
		/* acquire: pairs with the SQ thread's release of the head as it takes SQEs */
		unsigned head = io_uring_smp_load_acquire(sq->khead);

		/* one wake a sleep: the flag stays up until the woken thread clears it, and the
		 * thread sleeps again only with the SQ empty, so our SQEs move the head first */
		if (!iw->woke || head != iw->wake_head) {
			eflags |= IORING_ENTER_SQ_WAKEUP;
			iw->woke = true;
			iw->wake_head = head;
		}
	}
	if ((kflags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) && !iw->reap_blocked)
		eflags |= IORING_ENTER_GETEVENTS;
	if (!eflags)
		return n || iw->wait_head;
	if (kflags & IORING_SQ_CQ_OVERFLOW)
		count(&iw->cq_overflow, 1);
	if (iw->ring_fd_reg)
		eflags |= IORING_ENTER_REGISTERED_RING;
	ret = io_uring_enter(iw->ring_fd_reg ? (unsigned)ring->enter_ring_fd :
			     (unsigned)ring->ring_fd, 0, 0, eflags, NULL);
	if (ret < 0)
		iw->woke = false;	/* -EINTR, -EBUSY: the next pass looks again */
	count(&iw->enters, 1);
	if (eflags & IORING_ENTER_SQ_WAKEUP)
		count(&iw->sq_wakeups, 1);
	return 1;
}

static unsigned ded_room(struct pel_io *io);

/* Reap every CQE in the CQ ring (memory, no syscall) and hand each result on. In dedicated mode
 * only as many as the lanes' overflow lists can surely take: the rest wait in the CQ (and
 * beyond it in the kernel's overflow list, counted), in order, nothing lost. */
static unsigned
reap(struct io_worker *iw)
{
	struct io_uring *ring = &iw->ring;
	struct io_uring_cqe *cqes[64];
	unsigned n, found = 0, lim = 64;

	iw->reap_blocked = false;
	for (;;) {
		unsigned ops = 0;

		if (iw->ded && (lim = ded_room(iw->io)) == 0) {
			iw->reap_blocked = true;	/* no enter to flush what we cannot take */
			break;
		}
		n = io_uring_peek_batch_cqe(ring, cqes, lim);
		if (!n)
			break;
		for (unsigned i = 0; i < n; i++)
			ops += complete(iw, cqes[i]);
		io_uring_cq_advance(ring, n);
		count(&iw->completed, ops);
		found += ops;
	}
	return found;
}

/* Enter the kernel once if there are SQEs to submit, operations waiting for SQ room, or work
 * the kernel flagged (task work, an overflowed CQ); SQPOLL: sqpoll_kick(). @return 1 if it did. */
static unsigned
kick(struct io_worker *iw)
{
	struct io_uring *ring = &iw->ring;
	unsigned kflags;
	int ret;

	if (iw->sqpoll)
		return sqpoll_kick(iw);
	/* relaxed: a hint; the kernel sets these flags, an enter sorts them out */
	kflags = IO_URING_READ_ONCE(*ring->sq.kflags);
	if (iw->reap_blocked)
		kflags = 0;	/* the lanes are full: the CQ stays full until workers take some */
	if (!iw->prepared && !iw->wait_head &&
	    !(kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
		return 0;
	if (kflags & IORING_SQ_CQ_OVERFLOW)
		count(&iw->cq_overflow, 1);
	ret = io_uring_submit_and_get_events(ring);
	count(&iw->enters, 1);
	if (ret > 0)
		count(&iw->submitted, (uint64_t)ret);
	iw->prepared = 0;
	return 1;
}

/* One pass of a ring's owner: released buffers back, stop when the runtime stops, reap, re-arm,
 * submit. @return the work it found. */
static unsigned
ring_pass(struct io_worker *iw)
{
	unsigned found;

	if (pel_unlikely(iw->nbufs) && drain_released(iw) && iw->rearm_head && !iw->cancelling)
		rearm_waiting(iw);
	if (pel_unlikely(!iw->cancelling) && pel_unlikely(pel__rt_stopping(iw->io->rt)))
		cancel_everything(iw);
	found = reap(iw);
	/* stopped for buffers that callbacks have given back since: in again now */
	if (pel_unlikely(iw->rearm_head) && iw->in_ring && !iw->cancelling)
		rearm_waiting(iw);
	if (iw->wait_head)
		move_waiting(iw);
	return found + kick(iw);
}

/* The worker's poller (per-worker mode): reap, run callbacks, enter the kernel once if it must. */
static int
io_poll(void *ctx)
{
	return (int)ring_pass(ctx);
}

/* ---- parking in the ring ---- */

/* The kernel's futex-wait operation (Linux 6.7) and futex2 flags; liburing 2.3 has neither. */
#define OP_FUTEX_WAIT		51
#define FUTEX2_U32		0x02
#define FUTEX2_PRIV		128
#define FUTEX_MATCH_ANY		0xffffffffu

/*
 * The worker's sleep when it parks (pel__park_hook_set()): a futex wait on its parked word goes
 * into the ring, and io_uring_enter() waits for one completion: a producer's FUTEX_WAKE after it
 * cleared the word completes the futex wait, an I/O completion wakes it as well. The futex wait
 * stays armed across parks until it completes (it finds the word 0 and ends at once if a wake
 * came before it was armed: no lost wake-up). One syscall a park, none while busy or spinning.
 */
static void
io_park(void *ctx, _Atomic uint32_t *word)
{
	struct io_worker *iw = ctx;

	if (!iw->futex_armed) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&iw->ring);

		if (!sqe)
			return;		/* no room: back to the loop, which submits */
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = OP_FUTEX_WAIT;
		sqe->fd = FUTEX2_U32 | FUTEX2_PRIV;
		sqe->addr = (uint64_t)(uintptr_t)word;
		sqe->off = 1;				/* addr2: sleep while *word == 1 */
		sqe->addr3 = FUTEX_MATCH_ANY;
		io_uring_sqe_set_data(sqe, &iw->futex_mark);
		iw->futex_armed = true;
		iw->prepared++;
	}
	io_uring_submit_and_wait(&iw->ring, 1);
	count(&iw->enters, 1);
	iw->prepared = 0;
}

static bool
futex_wait_supported(struct io_uring *ring)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	bool ok = p && io_uring_opcode_supported(p, OP_FUTEX_WAIT);

	free(p);
	return ok;
}

/* ---- set-up, on each worker ---- */

static int
setup_fail(struct io_worker *iw, int err, const char *fmt, ...) pel__printf(3, 4);

static int
setup_fail(struct io_worker *iw, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(iw->setup_msg, sizeof(iw->setup_msg), fmt, ap);
	va_end(ap);
	iw->setup_err = err;
	return err;
}

static int
ring_init(struct io_worker *iw)
{
	const struct pel_io_config *cfg = &iw->io->cfg;
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	/* the kernel refuses COOP_TASKRUN, TASKRUN_FLAG and DEFER_TASKRUN with SQPOLL ("IPI
	 * related flags don't make sense with SQPOLL", io_uring_create()): its thread runs the
	 * task work. SINGLE_ISSUER is allowed (6.18 checked, where it was added in 6.0). */
	static const unsigned sq_tries[] = { 0 /* unused */, IORING_SETUP_SINGLE_ISSUER, 0 };
	bool sqpoll = cfg->flags & PEL_IO_CF_SQPOLL;
	const unsigned *list = sqpoll ? sq_tries : tries;
	int err = -EINVAL;

	for (unsigned t = cfg->flags & PEL_IO_CF_PLAIN ? 2 : cfg->flags & PEL_IO_CF_COOP ? 1 : sqpoll;
	     t < 3; t++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = list[t] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = cfg->cq_entries;
		if (sqpoll) {
			p.flags |= IORING_SETUP_SQPOLL;
			p.sq_thread_idle = cfg->sqpoll_idle_ms;
			if (cfg->sqpoll_cpu >= 0) {
				p.flags |= IORING_SETUP_SQ_AFF;
				p.sq_thread_cpu = (unsigned)cfg->sqpoll_cpu;
			}
		}
		err = io_uring_queue_init_params(cfg->sq_entries, &iw->ring, &p);
		if (err == -EINVAL)	/* a flag this kernel lacks: the next, plainer try */
			continue;
		if (err)
			break;
		iw->setup_flags = p.flags;
		iw->features = p.features;
		iw->ring_ok = true;
		iw->sqpoll = sqpoll;
		/* optional: saves an fd lookup per enter; 1 = one fd registered */
		iw->ring_fd_reg = io_uring_register_ring_fd(&iw->ring) == 1;
		return 0;
	}
	if (sqpoll && err == -EINVAL)
		return setup_fail(iw, err, "%s: io_uring_setup() refused SQPOLL (EINVAL)%s",
				  iw->name, cfg->sqpoll_cpu >= 0 ? ": is sqpoll_cpu outside this "
				  "process's cpuset? (the kernel pins its thread only within it)" : "");
	if (sqpoll && err == -EPERM)
		return setup_fail(iw, err, "%s: io_uring_setup() refused SQPOLL (EPERM): "
				  "before Linux 5.11 it needs CAP_SYS_ADMIN; or "
				  "kernel.io_uring_disabled, or a seccomp filter", iw->name);
	switch (err) {
	case -ENOSYS:
		return setup_fail(iw, err, "%s: io_uring_setup() is not in this kernel "
				  "(ENOSYS): build it with CONFIG_IO_URING=y", iw->name);
	case -EPERM:
		return setup_fail(iw, err, "%s: io_uring_setup() refused (EPERM): "
				  "kernel.io_uring_disabled is set (sysctl -w "
				  "kernel.io_uring_disabled=0, or put this user in "
				  "kernel.io_uring_group), or a seccomp filter blocks it", iw->name);
	case -ENOMEM: {
		struct rlimit rl = { 0, 0 };

		getrlimit(RLIMIT_MEMLOCK, &rl);
		return setup_fail(iw, err, "%s: io_uring_setup() ran out of memory (ENOMEM) "
				  "for %u SQ / %u CQ entries; on kernels before 5.12 rings count "
				  "against RLIMIT_MEMLOCK (now %llu bytes): raise it (ulimit -l)",
				  iw->name, cfg->sq_entries, cfg->cq_entries,
				  (unsigned long long)rl.rlim_cur);
	}
	default:
		return setup_fail(iw, err, "%s: io_uring_setup() failed: %s", iw->name,
				  strerror(-err));
	}
}

/* NAPI busy poll on the ring (IORING_REGISTER_NAPI, Linux 6.9), through the raw syscall. */
static int
napi_init(struct io_worker *iw)
{
	struct napi_reg nr;
	unsigned us = iw->io->cfg.napi_busy_poll_us;
	long ret;

	if (!us)
		return 0;
	memset(&nr, 0, sizeof(nr));
	nr.busy_poll_to = us;
	nr.prefer_busy_poll = 1;
	ret = syscall(__NR_io_uring_register, iw->ring.ring_fd, REGISTER_NAPI, &nr, 1);
	if (ret < 0 && (errno == EINVAL || errno == EOPNOTSUPP))
		return setup_fail(iw, -EOPNOTSUPP, "%s: this kernel has no NAPI busy poll for "
				  "io_uring (IORING_REGISTER_NAPI, Linux 6.9; %s): set "
				  "napi_busy_poll_us 0", iw->name, strerror(errno));
	if (ret < 0)
		return setup_fail(iw, -errno, "%s: IORING_REGISTER_NAPI failed: %s", iw->name,
				  strerror(errno));
	iw->napi_us = us;
	return 0;
}

static int
bufs_init(struct io_worker *iw)
{
	const struct pel_io_config *cfg = &iw->io->cfg;
	struct io_uring_buf_reg reg;
	bool huge;
	char what[64];
	int err;

	if (!cfg->buf_count)
		return 0;
	iw->nbufs = cfg->buf_count;
	iw->br_len = (size_t)cfg->buf_count * sizeof(struct io_uring_buf);
	snprintf(what, sizeof(what), "%s's buffer ring", iw->name);
	iw->br = pel__map(iw->io->rt, iw->br_len, false, what, &iw->br_len, &huge);
	snprintf(what, sizeof(what), "%s's provided buffers", iw->name);
	iw->bufs = pel__map(iw->io->rt, (size_t)cfg->buf_count * cfg->buf_size,
			    pel__rt_flags(iw->io->rt) & PEL_F_HUGEPAGES, what, &iw->bufs_len, &huge);
	iw->rel_next = calloc(cfg->buf_count, sizeof(*iw->rel_next));
	if (iw->bundle)
		iw->ring_bid = calloc(cfg->buf_count, sizeof(*iw->ring_bid));
	if (cfg->flags & PEL_IO_CF_BUF_INC) {
		iw->inc_off = calloc(cfg->buf_count, sizeof(*iw->inc_off));
		iw->inc_refs = calloc(cfg->buf_count, sizeof(*iw->inc_refs));
		iw->inc_done = calloc(cfg->buf_count, sizeof(*iw->inc_done));
		iw->inc_rel = calloc(cfg->buf_count, sizeof(*iw->inc_rel));
		if (!iw->inc_off || !iw->inc_refs || !iw->inc_done || !iw->inc_rel)
			return setup_fail(iw, -ENOMEM, "%s: out of memory for %u incremental "
					  "buffers", iw->name, cfg->buf_count);
	}
	if (!iw->br || !iw->bufs || !iw->rel_next || (iw->bundle && !iw->ring_bid))
		return setup_fail(iw, -ENOMEM, "%s: out of memory for %u provided buffers "
				  "of %u bytes", iw->name, cfg->buf_count, cfg->buf_size);
	/* first touch here, on the worker's CPU: the buffers come from its node */
	memset(iw->bufs, 0, iw->bufs_len);
	atomic_init(&iw->rel_head, (uint64_t)NIL);
	io_uring_buf_ring_init(iw->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)iw->br;
	reg.ring_entries = cfg->buf_count;
	reg.bgid = BGID;
	if (cfg->flags & PEL_IO_CF_BUF_INC) {
		/* probed: a kernel before 6.12 refuses the flag; then a plain ring, reported */
		reg.pad = PBUF_RING_INC;
		iw->inc = io_uring_register_buf_ring(&iw->ring, &reg, 0) == 0;
		reg.pad = 0;
	}
	err = iw->inc ? 0 : io_uring_register_buf_ring(&iw->ring, &reg, 0);
	if (err)
		return setup_fail(iw, err, "%s: io_uring_register_buf_ring() failed: %s "
				  "(provided-buffer rings need Linux 5.19)", iw->name, strerror(-err));
	for (unsigned b = 0; b < cfg->buf_count; b++)
		buf_add(iw, b, (int)b);
	buf_advance(iw, cfg->buf_count);
	return 0;
}

/* Registered files: a sparse table of cfg.files slots (io_uring_register_files_sparse(), Linux
 * 5.19; before it, a table of -1, which 5.12 accepts). */
static int
files_init(struct io_worker *iw)
{
	unsigned n = iw->io->cfg.files;
	int err, *fds;

	if (!n)
		return 0;
	iw->file_used = calloc(n, 1);
	if (!iw->file_used)
		return setup_fail(iw, -ENOMEM, "%s: out of memory for %u file slots", iw->name,
				  n);
	err = io_uring_register_files_sparse(&iw->ring, n);
	if (err == -EINVAL) {
		fds = malloc(n * sizeof(*fds));
		if (!fds)
			return setup_fail(iw, -ENOMEM, "%s: out of memory for %u file slots",
					  iw->name, n);
		memset(fds, 0xff, n * sizeof(*fds));	/* -1: an empty slot */
		err = io_uring_register_files(&iw->ring, fds, n);
		free(fds);
	}
	if (err == -EMFILE)
		return setup_fail(iw, err, "%s: %u registered file slots are more than "
				  "RLIMIT_NOFILE allows (EMFILE): raise it (ulimit -n) or lower "
				  "files", iw->name, n);
	if (err)
		return setup_fail(iw, err, "%s: registering %u file slots failed: %s "
				  "(sparse tables need Linux 5.12)", iw->name, n, strerror(-err));
	iw->nfiles = n;
	return 0;
}

/* The ring's owner (its worker, in a task) may change its tables: SINGLE_ISSUER. */
static int
owner_call_check(struct pel_io *io, unsigned worker, const char *fn)
{
	if (!io)
		return pel__fail(-EINVAL, "%s: io is NULL", fn);
	if (worker >= io->nworkers)
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, io->nworkers);
	if (io->ded)
		return pel__fail(-EINVAL, "%s: the rings' tables are PEL_IO_PER_WORKER mode's",
				 fn);
	if (pel__self_id(io->rt) != (int)worker)
		return pel__fail(-EPERM, "%s: call it from a task on worker %u (its ring's owner)",
				 fn, worker);
	if (io->w[worker]->cancelling || pel__rt_stopping(io->rt))
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	return 0;
}

static int
file_call_check(struct pel_io *io, unsigned worker, const char *fn)
{
	if (io && !io->cfg.files)
		return pel__fail(-EINVAL, "%s: the I/O layer has no registered file slots (set "
				 "pel_io_config.files)", fn);
	return owner_call_check(io, worker, fn);
}

int
pel_io_buffers_register(struct pel_io *io, unsigned worker, const struct iovec *iov, unsigned n)
{
	struct io_worker *iw;
	int err = owner_call_check(io, worker, "pel_io_buffers_register");

	if (err)
		return err;
	if (!iov || !n || n > MAX_FIXED_BUFS)
		return pel__fail(-EINVAL, "pel_io_buffers_register: %s", !iov ? "iov is NULL" :
				 "n must be 1..16384");
	iw = io->w[worker];
	if (atomic_load_explicit(&iw->fixed_bufs, memory_order_relaxed))
		return pel__fail(-EBUSY, "pel_io_buffers_register: worker %u has %u registered "
				 "buffers already: unregister them first", worker,
				 atomic_load_explicit(&iw->fixed_bufs, memory_order_relaxed));
	err = io_uring_register_buffers(&iw->ring, iov, n);
	if (err == -ENOMEM) {
		struct rlimit rl = { 0, 0 };

		getrlimit(RLIMIT_MEMLOCK, &rl);
		return pel__fail(err, "pel_io_buffers_register: the kernel cannot pin %u buffers "
				 "(ENOMEM): they count against RLIMIT_MEMLOCK (now %llu bytes); "
				 "raise it (ulimit -l)", n, (unsigned long long)rl.rlim_cur);
	}
	if (err)
		return pel__fail(err, "pel_io_buffers_register: %u buffers: %s", n, strerror(-err));
	/* relaxed: only this worker writes it; pel_io_stats() reads it relaxed */
	atomic_store_explicit(&iw->fixed_bufs, n, memory_order_relaxed);
	return 0;
}

int
pel_io_buffers_unregister(struct pel_io *io, unsigned worker)
{
	struct io_worker *iw;
	int err = owner_call_check(io, worker, "pel_io_buffers_unregister");

	if (err)
		return err;
	iw = io->w[worker];
	if (!atomic_load_explicit(&iw->fixed_bufs, memory_order_relaxed))
		return pel__fail(-EINVAL, "pel_io_buffers_unregister: worker %u has no registered "
				 "buffers", worker);
	err = io_uring_unregister_buffers(&iw->ring);
	if (err)
		return pel__fail(err, "pel_io_buffers_unregister: %s", strerror(-err));
	atomic_store_explicit(&iw->fixed_bufs, 0, memory_order_relaxed);
	return 0;
}

int
pel_io_file_register(struct pel_io *io, unsigned worker, int fd)
{
	struct io_worker *iw;
	unsigned n, slot;
	int err = file_call_check(io, worker, "pel_io_file_register");

	if (err)
		return err;
	if (fd < 0)
		return pel__fail(-EBADF, "pel_io_file_register: fd %d is not a file descriptor",
				 fd);
	iw = io->w[worker];
	n = io->cfg.files;
	if (atomic_load_explicit(&iw->files_used, memory_order_relaxed) == n)
		return pel__fail(-ENOSPC, "pel_io_file_register: all %u file slots of worker %u "
				 "are in use (raise pel_io_config.files, or unregister one)", n,
				 worker);
	for (slot = iw->file_next; iw->file_used[slot]; slot = (slot + 1) % n)
		;
	err = io_uring_register_files_update(&iw->ring, slot, &fd, 1);
	if (err < 0)
		return pel__fail(err, "pel_io_file_register: fd %d into slot %u: %s", fd, slot,
				 strerror(-err));
	iw->file_used[slot] = 1;
	iw->file_next = (slot + 1) % n;
	/* relaxed: only this worker writes it; pel_io_stats() reads it relaxed */
	atomic_store_explicit(&iw->files_used,
			      atomic_load_explicit(&iw->files_used, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	return (int)slot;
}

int
pel_io_file_unregister(struct pel_io *io, unsigned worker, unsigned index)
{
	struct io_worker *iw;
	int none = -1, err = file_call_check(io, worker, "pel_io_file_unregister");

	if (err)
		return err;
	iw = io->w[worker];
	if (index >= io->cfg.files || !iw->file_used[index])
		return pel__fail(-EINVAL, "pel_io_file_unregister: slot %u of worker %u holds no "
				 "file", index, worker);
	err = io_uring_register_files_update(&iw->ring, index, &none, 1);
	if (err < 0)
		return pel__fail(err, "pel_io_file_unregister: slot %u: %s", index, strerror(-err));
	iw->file_used[index] = 0;
	/* relaxed: only this worker writes it; pel_io_stats() reads it relaxed */
	atomic_store_explicit(&iw->files_used,
			      atomic_load_explicit(&iw->files_used, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	return 0;
}

static void
setup_on_worker(unsigned worker, void *arg)
{
	struct pel_io *io = arg;
	struct io_worker *iw = io->w[worker];
	int err = ring_init(iw);

	if (!err)
		err = napi_init(iw);
	/* recv bundles where the kernel has them and CQE order is its taking order */
	iw->bundle = !err && (io->cfg.flags & PEL_IO_CF_RECV_BUNDLE) && io->cfg.buf_count &&
		     (iw->features & FEAT_RECVSEND_BUNDLE) &&
		     (iw->setup_flags & IORING_SETUP_DEFER_TASKRUN);
	if (!err)
		err = bufs_init(iw);
	if (!err)
		err = files_init(iw);
	if (!err) {
		/* a worker may park when it can sleep in its ring: completions wake it there */
		iw->can_park = !(io->cfg.flags & PEL_IO_CF_NO_PARK) &&
			       futex_wait_supported(&iw->ring) &&
			       pel__park_hook_set(io_park, iw) == 0;
		err = pel__poller_add(io_poll, iw, iw->can_park ? PEL__POLL_PARK_OK : 0);
		if (err)
			setup_fail(iw, err, "worker %u: no poller slot left for the I/O layer",
				   worker);
	}
}

/* ---- dedicated mode's set-up ---- */

static struct pel_ring *
ring_new(unsigned slots)
{
	struct pel_ring *r = aligned_alloc(PEL_CACHE_GUARD, pel_ring_memsize(slots));

	if (r)
		pel_ring_init(r, slots);
	return r;
}

/* The lanes (a request ring and a completion ring per worker, of cq_entries slots, and an
 * overflow list as long) and a request ring per producer slot. @return 0; -ENOMEM. */
static int
ded_alloc(struct pel_io *io)
{
	unsigned slots = io->cfg.cq_entries;

	io->lanes = calloc(io->nworkers, sizeof(*io->lanes));
	if (!io->lanes)
		return -ENOMEM;
	for (unsigned w = 0; w < io->nworkers; w++) {
		struct io_lane *l = aligned_alloc(PEL_CACHE_GUARD, (sizeof(*l) + PEL_CACHE_GUARD - 1) &
						  ~(size_t)(PEL_CACHE_GUARD - 1));

		if (!l)
			return -ENOMEM;
		memset(l, 0, sizeof(*l));
		io->lanes[w] = l;
		l->io = io;
		l->id = w;
		l->req = ring_new(slots);
		l->cpl = ring_new(slots);
		l->rec = calloc(slots, sizeof(*l->rec));
		l->ovf = calloc(slots, sizeof(*l->ovf));
		l->mask = slots - 1;
		l->ovf_cap = slots;
		if (!l->req || !l->cpl || !l->rec || !l->ovf)
			return -ENOMEM;
	}
	io->npreq = pel__rt_producer_slots(io->rt);
	io->preq = calloc(io->npreq, sizeof(*io->preq));
	if (!io->preq)
		return -ENOMEM;
	for (unsigned p = 0; p < io->npreq; p++)
		if (!(io->preq[p] = ring_new(slots)))
			return -ENOMEM;
	return 0;
}

/* Start the I/O thread and wait until its ring is set up (or refused). */
static int
ded_start(struct pel_io *io)
{
	struct io_worker *iw = io->w[0];
	int err = pthread_create(&io->thread, NULL, ded_main, io);

	if (err)
		return pel__fail(-err, "the I/O thread cannot be started: %s", strerror(err));
	io->thread_up = true;
	pthread_mutex_lock(&io->setup_lock);
	while (!io->setup_state)
		pthread_cond_wait(&io->setup_cond, &io->setup_lock);
	pthread_mutex_unlock(&io->setup_lock);
	if (io->setup_state > 0)
		return 0;
	pthread_join(io->thread, NULL);
	io->thread_up = false;
	return pel__fail(iw->setup_err, "%s", iw->setup_msg);
}

static void
lane_setup(unsigned worker, void *arg)
{
	struct pel_io *io = arg;
	struct io_lane *l = io->lanes[worker];

	/* the I/O thread wakes a parked worker when it hands it a result */
	l->setup_err = pel__poller_add(lane_poll, l, PEL__POLL_PARK_OK);
}

/* ---- the layer ---- */

static void io_stop(struct pel_runtime *rt, void *state);
static bool io_busy(struct pel_runtime *rt, void *state);
static void io_release(void *state);
static bool io_quiet(struct pel_runtime *rt, void *state, uint64_t *stamp);

static const struct pel__layer_ops io_ops = {
	.name = "io",
	.stop = io_stop,
	.busy = io_busy,
	.release = io_release,
	.quiet = io_quiet,
};

/*
 * pel_drain(): no result waits in a lane for its callback (dedicated mode: the I/O thread has
 * handed it over, the worker has not run it; such a result is work accepted like a task). The
 * stamp grows with every result put in a lane and every one taken out. Per-worker mode runs
 * callbacks where it reaps them: nothing waits.
 */
static bool
io_quiet(struct pel_runtime *rt, void *state, uint64_t *stamp)
{
	struct pel_io *io = state;
	uint64_t s = 0;
	bool quiet = true;

	(void)rt;
	*stamp = 0;
	if (!io->ded || atomic_load_explicit(&io->stopped, memory_order_acquire))
		return true;
	for (unsigned w = 0; w < io->nworkers; w++) {
		struct io_lane *l = io->lanes[w];

		/* acquire: the I/O thread's count after its put; the worker's head after its
		 * callbacks (lane_poll()) */
		s += atomic_load_explicit(&l->delivered, memory_order_acquire) +
		     atomic_load_explicit(&l->cpl->cons.head, memory_order_acquire);
		if (pel_ring_count(l->cpl) || atomic_load_explicit(&l->novf, memory_order_acquire))
			quiet = false;
	}
	*stamp = s;
	return quiet;
}

/*
 * Dedicated mode: an operation moves from a worker's wait list or a request ring, to the I/O
 * thread (inflight), to a lane's overflow list or completion ring, and is done once its worker ran
 * its final callback. Each step enters the next place before it leaves the last (with release
 * stores); these acquire loads look in the same order, so an operation not done is always seen
 * somewhere. The I/O thread is woken first, to see the runtime stop and cancel everything.
 */
static bool
ded_busy(struct pel_io *io)
{
	struct io_worker *iw = io->w[0];
	uint64_t heads[64];

	ded_wake(io);
	/* a callback may submit (into a request ring already looked at) before its own result
	 * leaves the completion ring: a result taken during the look may have made a request */
	for (unsigned w = 0; w < io->nworkers && w < 64; w++)
		heads[w] = atomic_load_explicit(&io->lanes[w]->cpl->cons.head,
						memory_order_acquire);
	for (unsigned w = 0; w < io->nworkers; w++)
		if (atomic_load_explicit(&io->lanes[w]->waiting, memory_order_acquire) ||
		    pel_ring_count(io->lanes[w]->req))
			return true;
	for (unsigned p = 0; p < io->npreq; p++)
		if (pel_ring_count(io->preq[p]))
			return true;
	if (atomic_load_explicit(&iw->inflight, memory_order_acquire))
		return true;
	for (unsigned w = 0; w < io->nworkers; w++)
		if (pel_ring_count(io->lanes[w]->cpl) ||
		    atomic_load_explicit(&io->lanes[w]->novf, memory_order_acquire))
			return true;
	for (unsigned w = 0; w < io->nworkers; w++)
		if (w >= 64 || atomic_load_explicit(&io->lanes[w]->cpl->cons.head,
						    memory_order_acquire) != heads[w])
			return true;	/* results were taken meanwhile: look again */
	return false;
}

static bool
io_busy(struct pel_runtime *rt, void *state)
{
	struct pel_io *io = state;

	(void)rt;
	if (io->ded)
		return ded_busy(io);
	for (unsigned w = 0; w < io->nworkers; w++)
		if (atomic_load_explicit(&io->w[w]->inflight, memory_order_relaxed))
			return true;
	return false;
}

/* The rings and buffers: what stop gives back. The structs stay for pel_io_stats(). */
static void
io_close(struct pel_io *io)
{
	for (unsigned w = 0; io->w && w < io->nrings; w++) {
		struct io_worker *iw = io->w[w];

		if (!iw)
			continue;
		if (iw->ring_ok)
			io_uring_queue_exit(&iw->ring);
		iw->ring_ok = false;
		if (iw->br)
			munmap(iw->br, iw->br_len);
		iw->br = NULL;
		if (iw->bufs)
			munmap(iw->bufs, iw->bufs_len);
		iw->bufs = NULL;
		free(iw->rel_next);
		iw->rel_next = NULL;
		free(iw->ring_bid);
		iw->ring_bid = NULL;
		free(iw->inc_off);
		free(iw->inc_refs);
		free(iw->inc_done);
		free((void *)iw->inc_rel);
		iw->inc_off = iw->inc_refs = NULL;
		iw->inc_done = NULL;
		iw->inc_rel = NULL;
		free(iw->file_used);
		iw->file_used = NULL;
	}
}

/* Dedicated mode: the I/O thread leaves its loop (everything has finished: io_busy()). */
static void
ded_stop(struct pel_io *io)
{
	if (!io->thread_up)
		return;
	atomic_store_explicit(&io->ded_exit, 1, memory_order_release);
	/* full barrier: our exit store before the look at its parked word (ded_park()) */
	pel__fence();
	if (atomic_exchange_explicit(&io->w[0]->parked, 0, memory_order_acq_rel))
		syscall(SYS_futex, &io->w[0]->parked, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	pthread_join(io->thread, NULL);
	io->thread_up = false;
}

static void
ded_free(struct pel_io *io)
{
	for (unsigned w = 0; io->lanes && w < io->nworkers; w++) {
		struct io_lane *l = io->lanes[w];

		if (!l)
			continue;
		free(l->req);
		free(l->cpl);
		free(l->rec);
		free(l->ovf);
		free(l);
	}
	free(io->lanes);
	io->lanes = NULL;
	for (unsigned p = 0; io->preq && p < io->npreq; p++)
		free(io->preq[p]);
	free(io->preq);
	io->preq = NULL;
	if (io->ded) {
		pthread_mutex_destroy(&io->setup_lock);
		pthread_cond_destroy(&io->setup_cond);
	}
}

static void
io_release(void *state)
{
	struct pel_io *io = state;

	ded_stop(io);
	io_close(io);
	ded_free(io);
	for (unsigned w = 0; io->w && w < io->nrings; w++)
		free(io->w[w]);
	free(io->w);
	free(io);
}

/*
 * pel_destroy(), after the workers: every operation has finished (io_busy() said so). The handle
 * stays readable until the runtime's table goes (io_release()): a producer still holding it gets
 * -ESHUTDOWN from pel_io_submit(), pel_io_stats() -ESHUTDOWN.
 */
static void
io_stop(struct pel_runtime *rt, void *state)
{
	struct pel_io *io = state;

	(void)rt;
	ded_stop(io);
	pel__pool_release_at_stop(io->ops);
	io_close(io);
	atomic_store_explicit(&io->stopped, 1, memory_order_relaxed);
}

void
pel_io_config_default(struct pel_io_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = PEL_IO_PER_WORKER;
	cfg->sq_entries = DEF_SQ;
	cfg->cq_entries = 4 * DEF_SQ;
	cfg->max_ops = DEF_OPS;
	cfg->sqpoll_cpu = -1;
}

static bool
pow2(unsigned v)
{
	return v && !(v & (v - 1));
}

/* SQPOLL's fields: only with the flag (a zeroed config's sqpoll_cpu 0 passes), CPU online. */
static int
check_sqpoll(struct pel_io_config *cfg)
{
	char online[128];
	int on;

	if (!(cfg->flags & PEL_IO_CF_SQPOLL)) {
		if (cfg->sqpoll_idle_ms || cfg->sqpoll_cpu > 0 || cfg->sqpoll_cpu < -1)
			return pel__fail(-EINVAL, "sqpoll_cpu %d, sqpoll_idle_ms %u: set only with "
					 "PEL_IO_CF_SQPOLL (else -1 and 0)", cfg->sqpoll_cpu,
					 cfg->sqpoll_idle_ms);
		cfg->sqpoll_cpu = -1;
		return 0;
	}
	if (!cfg->sqpoll_idle_ms)
		cfg->sqpoll_idle_ms = DEF_SQ_IDLE_MS;
	if (cfg->sqpoll_idle_ms > MAX_SQ_IDLE_MS)
		return pel__fail(-EINVAL, "sqpoll_idle_ms %u is beyond %u (0: %u)",
				 cfg->sqpoll_idle_ms, MAX_SQ_IDLE_MS, DEF_SQ_IDLE_MS);
	if (cfg->sqpoll_cpu < -1)
		return pel__fail(-EINVAL, "sqpoll_cpu %d: a CPU number, or -1 for not pinned",
				 cfg->sqpoll_cpu);
	if (cfg->sqpoll_cpu == -1)
		return 0;
	on = pel__cpu_online(cfg->sqpoll_cpu, online, sizeof(online));
	if (on < 0)
		return on;	/* pel__fail() kept the cause */
	if (!on)
		return pel__fail(-EINVAL, "sqpoll_cpu %d is not online (online: %s)",
				 cfg->sqpoll_cpu, online);
	return 0;
}

/* A pinned SQ thread spins: not on a spinning worker's CPU, nor several on one, unless shared. */
static int
check_sqpoll_cpu(struct pel_runtime *rt, const struct pel_io_config *cfg, unsigned nworkers,
		 unsigned nrings)
{
	if (cfg->sqpoll_cpu < 0 || (pel__rt_flags(rt) & PEL_F_SHARE_CPUS))
		return 0;
	for (unsigned w = 0; w < nworkers; w++)
		if (pel_worker_cpu(rt, w) == cfg->sqpoll_cpu)
			return pel__fail(-EINVAL, "sqpoll_cpu %d is worker %u's CPU: two busy "
					 "pollers on one CPU; pick another CPU, or set "
					 "PEL_F_SHARE_CPUS", cfg->sqpoll_cpu, w);
	if (nrings > 1)
		return pel__fail(-EINVAL, "sqpoll_cpu %d would pin the SQ threads of all %u "
				 "workers to one CPU; use -1 (not pinned), or set PEL_F_SHARE_CPUS",
				 cfg->sqpoll_cpu, nworkers);
	return 0;
}

/* PEL_IO_DEDICATED's fields: only with that mode (a zeroed config's io_cpu 0 passes). */
static int
check_dedicated(struct pel_io_config *cfg)
{
	char online[128];
	int on;

	if (cfg->mode != PEL_IO_DEDICATED) {
		if (cfg->io_cpu > 0 || cfg->io_cpu < -1 || cfg->steer)
			return pel__fail(-EINVAL, "io_cpu %d, steer %u: set only with "
					 "PEL_IO_DEDICATED (else -1 and 0)", cfg->io_cpu, cfg->steer);
		cfg->io_cpu = -1;
		return 0;
	}
	if (cfg->steer > PEL_IO_STEER_JSQ)
		return pel__fail(-EINVAL, "steer %u is not a pel_io_steer (FIXED, HASH, RR, JSQ)",
				 cfg->steer);
	if (cfg->files)
		return pel__fail(-EINVAL, "files %u: registered files are for PEL_IO_PER_WORKER "
				 "(the I/O thread's ring would need the slots; set files 0)",
				 cfg->files);
	if (cfg->io_cpu < -1)
		return pel__fail(-EINVAL, "io_cpu %d: a CPU number, or -1 for not pinned",
				 cfg->io_cpu);
	if (cfg->io_cpu == -1)
		return 0;
	on = pel__cpu_online(cfg->io_cpu, online, sizeof(online));
	if (on < 0)
		return on;	/* pel__fail() kept the cause */
	if (!on)
		return pel__fail(-EINVAL, "io_cpu %d is not online (online: %s)", cfg->io_cpu,
				 online);
	return 0;
}

/* The I/O thread polls while spinning workers do: not on a spinning worker's CPU, nor on the SQ
 * thread's, unless shared. */
static int
check_io_cpu(struct pel_runtime *rt, const struct pel_io_config *cfg, unsigned nworkers)
{
	if (cfg->io_cpu < 0 || (pel__rt_flags(rt) & PEL_F_SHARE_CPUS))
		return 0;
	if (cfg->io_cpu == cfg->sqpoll_cpu)
		return pel__fail(-EINVAL, "io_cpu %d is also sqpoll_cpu: two busy pollers on one "
				 "CPU; pick another CPU, or set PEL_F_SHARE_CPUS", cfg->io_cpu);
	if (pel__rt_idle(rt) != PEL_IDLE_SPIN)
		return 0;
	for (unsigned w = 0; w < nworkers; w++)
		if (pel_worker_cpu(rt, w) == cfg->io_cpu)
			return pel__fail(-EINVAL, "io_cpu %d is worker %u's CPU and both spin "
					 "(PEL_IDLE_SPIN); pick another CPU, or set "
					 "PEL_F_SHARE_CPUS", cfg->io_cpu, w);
	return 0;
}

static int
check_config(const struct pel_io_config *in, struct pel_io_config *cfg)
{
	int err;

	*cfg = *in;
	if (cfg->mode != PEL_IO_PER_WORKER && cfg->mode != PEL_IO_DEDICATED)
		return pel__fail(-EINVAL, "mode %d is not a pel_io_mode", (int)cfg->mode);
	err = check_dedicated(cfg);
	if (err)
		return err;
	if (!cfg->sq_entries)
		cfg->sq_entries = DEF_SQ;
	if (!pow2(cfg->sq_entries) || cfg->sq_entries > MAX_SQ)
		return pel__fail(-EINVAL, "sq_entries %u is not a power of two in 1..%u",
				 cfg->sq_entries, MAX_SQ);
	if (!cfg->cq_entries)
		cfg->cq_entries = 4 * cfg->sq_entries;
	if (!pow2(cfg->cq_entries) || cfg->cq_entries < cfg->sq_entries ||
	    cfg->cq_entries > 2 * 65536)
		return pel__fail(-EINVAL, "cq_entries %u is not a power of two in sq_entries (%u) .. "
				 "131072", cfg->cq_entries, cfg->sq_entries);
	if (!cfg->max_ops)
		cfg->max_ops = DEF_OPS;
	if (cfg->max_ops > PEL_POOL_MAX_COUNT)
		return pel__fail(-EINVAL, "max_ops %u is beyond %u", cfg->max_ops,
				 PEL_POOL_MAX_COUNT);
	if (cfg->buf_count && (!pow2(cfg->buf_count) || cfg->buf_count > MAX_BUFS))
		return pel__fail(-EINVAL, "buf_count %u is not 0 or a power of two in 1..%u",
				 cfg->buf_count, MAX_BUFS);
	if (cfg->buf_count && !cfg->buf_size)
		cfg->buf_size = DEF_BUF_SIZE;
	if (cfg->buf_size > MAX_BUF_SIZE || (cfg->buf_size && !cfg->buf_count))
		return pel__fail(-EINVAL, "buf_size %u: 1..%u bytes, with buf_count set",
				 cfg->buf_size, MAX_BUF_SIZE);
	if ((cfg->flags & PEL_IO_CF_BUF_INC) && (cfg->flags & PEL_IO_CF_RECV_BUNDLE))
		return pel__fail(-EINVAL, "flags: PEL_IO_CF_BUF_INC and PEL_IO_CF_RECV_BUNDLE are "
				 "one or the other");
	if ((cfg->flags & PEL_IO_CF_BUF_INC) && !cfg->buf_count)
		return pel__fail(-EINVAL, "flags: PEL_IO_CF_BUF_INC needs provided buffers "
				 "(buf_count)");
	if (cfg->flags & ~(PEL_IO_CF_PLAIN | PEL_IO_CF_NO_PARK | PEL_IO_CF_SQPOLL |
			   PEL_IO_CF_RECV_BUNDLE | PEL_IO_CF_COOP | PEL_IO_CF_BUF_INC))
		return pel__fail(-EINVAL, "flags 0x%x hold unknown bits", cfg->flags);
	err = check_sqpoll(cfg);
	if (err)
		return err;
	if (cfg->files > MAX_FILES)
		return pel__fail(-EINVAL, "files %u is beyond %u", cfg->files, MAX_FILES);
	if (cfg->napi_busy_poll_us > MAX_NAPI_US)
		return pel__fail(-EINVAL, "napi_busy_poll_us %u is beyond %u (0: off)",
				 cfg->napi_busy_poll_us, MAX_NAPI_US);
	for (unsigned i = 0; i < sizeof(cfg->reserved) / sizeof(cfg->reserved[0]); i++)
		if (cfg->reserved[i])
			return pel__fail(-EINVAL, "reserved[%u] is not zero", i);
	return 0;
}

int
pel_io_create(struct pel_runtime *rt, const struct pel_io_config *cfg, struct pel_io **out)
{
	struct pel_io_config def;
	struct pel_io *io;
	int err;

	if (!out)
		return pel__fail(-EINVAL, "out pointer is NULL");
	*out = NULL;
	if (!rt)
		return pel__fail(-EINVAL, "runtime is NULL");
	if (!cfg) {
		pel_io_config_default(&def);
		cfg = &def;
	}
	io = calloc(1, sizeof(*io));
	if (!io)
		return pel__fail(-ENOMEM, "out of memory for the I/O layer");
	err = check_config(cfg, &io->cfg);
	if (err)
		goto out_free;
	io->rt = rt;
	io->nworkers = pel_worker_count(rt);
	io->ded = io->cfg.mode == PEL_IO_DEDICATED;
	io->workers_park = pel__rt_idle(rt) != PEL_IDLE_SPIN;
	io->nrings = io->ded ? 1 : io->nworkers;
	if (io->ded) {
		pthread_mutex_init(&io->setup_lock, NULL);
		pthread_cond_init(&io->setup_cond, NULL);
	}
	err = check_sqpoll_cpu(rt, &io->cfg, io->nworkers, io->nrings);
	if (!err && io->ded)
		err = check_io_cpu(rt, &io->cfg, io->nworkers);
	if (err)
		goto out_free;
	/* the operations' pool first: pel_pool_create() takes the layer lock itself */
	err = pel_pool_create(rt, sizeof(struct op), io->cfg.max_ops, PEL_POOL_F_CACHE_ALIGN,
			      &io->ops);
	if (err)
		goto out_free;
	io->w = calloc(io->nrings, sizeof(*io->w));
	for (unsigned w = 0; io->w && w < io->nrings; w++) {
		io->w[w] = aligned_alloc(PEL_CACHE_GUARD, (sizeof(struct io_worker) +
							   PEL_CACHE_GUARD - 1) &
					 ~(size_t)(PEL_CACHE_GUARD - 1));
		if (!io->w[w])
			break;
		memset(io->w[w], 0, sizeof(struct io_worker));
		io->w[w]->io = io;
		io->w[w]->id = io->ded ? io->nworkers : w;
		io->w[w]->ded = io->ded;
		if (io->ded)
			snprintf(io->w[w]->name, sizeof(io->w[w]->name), "the I/O thread");
		else
			snprintf(io->w[w]->name, sizeof(io->w[w]->name), "worker %u", w);
	}
	if (!io->w || !io->w[io->nrings - 1] || (io->ded && ded_alloc(io))) {
		err = pel__fail(-ENOMEM, "out of memory for the I/O layer");
		goto out_pool;
	}
	err = pel__layer_enter(rt);
	if (err)
		goto out_pool;
	if (pel__layer_get(rt, &io_ops)) {
		err = pel__fail(-EEXIST, "this runtime has its I/O layer already");
		goto out_leave;
	}
	if (io->ded) {
		err = ded_start(io);
		if (err)
			goto out_leave;
		err = pel__run_on_each_worker(rt, lane_setup, io);
		for (unsigned w = 0; !err && w < io->nworkers; w++)
			if (io->lanes[w]->setup_err)
				err = pel__fail(io->lanes[w]->setup_err, "worker %u: no poller slot "
						"left for the I/O layer", w);
	} else {
		err = pel__run_on_each_worker(rt, setup_on_worker, io);
		for (unsigned w = 0; !err && w < io->nworkers; w++)
			if (io->w[w]->setup_err)
				err = pel__fail(io->w[w]->setup_err, "%s", io->w[w]->setup_msg);
	}
	if (err) {
		/* pollers may be in place on some workers: keep the state alive until stop */
		bool polled = false;

		for (unsigned w = 0; w < io->nworkers; w++)
			polled |= io->ded ? !io->lanes[w]->setup_err :
				  io->w[w]->ring_ok && !io->w[w]->setup_err;
		if (polled && pel__layer_add(rt, &io_ops, io) == 0) {
			pel__layer_leave(rt);
			return err;
		}
		goto out_leave;
	}
	err = pel__layer_add(rt, &io_ops, io);
	if (err)
		goto out_leave;
	pel__layer_leave(rt);
	*out = io;
	return 0;

out_leave:
	pel__layer_leave(rt);
out_pool:
	pel_pool_destroy(io->ops);
out_free:
	io_release(io);
	return err;
}

int
pel_io_stats(const struct pel_io *io, unsigned worker, struct pel_io_stats *out)
{
	const struct io_worker *iw;

	if (!io || !out)
		return pel__fail(-EINVAL, "%s is NULL", io ? "stats pointer" : "io");
	if (worker >= io->nworkers)
		return pel__fail_lazy(-EINVAL, PEL__LAZY_BAD_WORKER, worker, io->nworkers);
	if (atomic_load_explicit(&io->stopped, memory_order_relaxed))
		return pel__fail_lazy(-ESHUTDOWN, PEL__LAZY_SHUTDOWN, 0, 0);
	iw = io->w[io->ded ? 0 : worker];
	memset(out, 0, sizeof(*out));
	out->io_cpu = io->ded ? io->cfg.io_cpu : -1;
	out->delivered = io->ded ? atomic_load_explicit(&io->lanes[worker]->delivered,
							memory_order_relaxed) : 0;
	out->napi_busy_poll_us = iw->napi_us;
	out->fixed_bufs = atomic_load_explicit(&iw->fixed_bufs, memory_order_relaxed);
	out->setup_flags = iw->setup_flags;
	out->features = iw->features;
	out->submitted = atomic_load_explicit(&iw->submitted, memory_order_relaxed);
	out->completed = atomic_load_explicit(&iw->completed, memory_order_relaxed);
	out->enters = atomic_load_explicit(&iw->enters, memory_order_relaxed);
	out->sq_full = atomic_load_explicit(&iw->sq_full, memory_order_relaxed);
	out->cq_overflow = atomic_load_explicit(&iw->cq_overflow, memory_order_relaxed);
	out->rearms = atomic_load_explicit(&iw->rearms, memory_order_relaxed);
	out->nobufs = atomic_load_explicit(&iw->nobufs, memory_order_relaxed);
	/* acquire: pairs with the release of its decrements (op_done(), ded_emit()) */
	out->inflight = atomic_load_explicit(&iw->inflight, memory_order_acquire);
	out->parks_in_ring = iw->can_park;
	out->uses = (iw->bundle ? PEL_IO_USES_RECV_BUNDLE : 0) |
		    (iw->inc ? PEL_IO_USES_BUF_INC : 0);
	out->sq_wakeups = atomic_load_explicit(&iw->sq_wakeups, memory_order_relaxed);
	out->sqpoll_cpu = iw->sqpoll && io->cfg.sqpoll_cpu >= 0 ? io->cfg.sqpoll_cpu : -1;
	out->files = iw->nfiles;
	out->files_used = atomic_load_explicit(&iw->files_used, memory_order_relaxed);
	return 0;
}
