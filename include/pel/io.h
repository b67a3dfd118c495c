/* SPDX-License-Identifier: MIT */
/*
 * pel/io.h - the io_uring layer: I/O operations whose completions run as tasks on the workers.
 *
 * In PEL_IO_PER_WORKER mode each worker owns an io_uring, created on its own thread (with
 * SINGLE_ISSUER, DEFER_TASKRUN and TASKRUN_FLAG where the kernel has them; PEL_IO_CF_SQPOLL adds
 * a kernel thread that submits, without the last two). An operation names the
 * worker whose ring carries it; its completion callback runs on that worker, in that worker's loop,
 * like a task. The worker reaps completions from the CQ ring in memory and enters the kernel only
 * when it has submissions or the kernel flagged waiting work: no syscall while idle, at most one a
 * loop pass under load, and a callback's next operation goes in within the same pass.
 *
 *	struct pel_io *io;
 *	struct pel_io_config ic;
 *
 *	pel_io_config_default(&ic);
 *	err = pel_io_create(rt, &ic, &io);
 *	struct pel_io_req r = pel_io_req_recv(fd, buf, sizeof(buf), 0, on_data, conn);
 *	err = pel_io_submit(io, producer, worker, &r, &handle);	(producer NULL from a task)
 *
 * Every call returns 0 or a negative errno; a refused submit queues nothing and its callback never
 * runs. Every accepted operation's callback runs, exactly once for a single-shot operation, until a
 * final result for a multishot one: at pel_destroy() the operations still pending are cancelled and
 * their callbacks run with -ECANCELED before it returns.
 *
 * pel_drain() waits for tasks, not for I/O: an operation may wait for its fd for ever (a receive),
 * so after pel_drain() some may still be in flight (pel_io_stats().inflight says how many); state
 * their callbacks use must live until they have run. The io handle is the runtime's: valid until
 * pel_destroy() returns, and after it while a producer handle of the runtime stays open (then every
 * call answers -ESHUTDOWN).
 */
#ifndef PEL_IO_H
#define PEL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pel_runtime;
struct pel_producer;
struct pel_io;		/* opaque: the runtime's I/O layer */

enum pel_io_mode {
	PEL_IO_PER_WORKER,	/* each worker owns a ring, polled in its loop */
	PEL_IO_DEDICATED,	/* one I/O thread (io_cpu) owns the ring: workers hand it requests
				 * over SPSC rings, it hands completions back over SPSC rings,
				 * steering multishot ones (steer) */
};

/** PEL_IO_DEDICATED: which worker a multishot operation's completions go to. Single-shot
 * operations always complete on the worker pel_io_submit() named. */
enum pel_io_steer {
	PEL_IO_STEER_FIXED,	/* the worker named at submit: callbacks in order, on one worker */
	PEL_IO_STEER_HASH,	/* a flow hash: the peer's address (multishot recvmsg), the new
				 * fd (multishot accept), else the fd: one flow, one worker */
	PEL_IO_STEER_RR,	/* round robin, completion by completion */
	PEL_IO_STEER_JSQ,	/* join the shortest queue: the worker with the fewest completions
				 * waiting for it */
};

/** Config flags. */
#define PEL_IO_CF_PLAIN		(1u << 0)	/* no DEFER_TASKRUN/COOP_TASKRUN: the kernel runs task
						 * work at interrupts (for comparison) */
#define PEL_IO_CF_NO_PARK	(1u << 1)	/* a worker with I/O never parks (it yields instead);
						 * by default it parks in io_uring_enter() where the
						 * kernel has futex operations (Linux 6.7) */
#define PEL_IO_CF_SQPOLL	(1u << 2)	/* a kernel thread per worker ring polls its SQ
						 * (IORING_SETUP_SQPOLL): the worker does not enter
						 * to submit. That thread is one more busy poller:
						 * give it a CPU (sqpoll_cpu). No DEFER_TASKRUN with
						 * it (the kernel refuses the pair) */
#define PEL_IO_CF_RECV_BUNDLE	(1u << 3)	/* multishot recv takes a run of provided buffers
						 * per completion (IORING_RECVSEND_BUNDLE, Linux
						 * 6.10; probed: pel_io_stats().uses says
						 * if on): fewer CQEs for a TCP stream; pel still
						 * calls back once per buffer. Per-worker mode with
						 * DEFER_TASKRUN only */
#define PEL_IO_CF_BUF_INC	(1u << 5)	/* provided buffers consumed piece by piece
						 * (IOU_PBUF_RING_INC, Linux 6.12; probed): a recv
						 * fills the rest of the buffer the last one left,
						 * the callback gets the piece (buf inside the
						 * buffer), and the buffer goes back to the kernel
						 * once it is full and every piece is released.
						 * For streams: recvmsg into it is refused. Not
						 * with PEL_IO_CF_RECV_BUNDLE */
#define PEL_IO_CF_COOP		(1u << 4)	/* COOP_TASKRUN | TASKRUN_FLAG instead of
						 * SINGLE_ISSUER | DEFER_TASKRUN (for comparison;
						 * docs/io.md has the figures) */

struct pel_io_config {
	enum pel_io_mode mode;
	unsigned sq_entries;	/* SQ ring entries per worker, power of two 1..32768; 0: 256 */
	unsigned cq_entries;	/* CQ ring entries, power of two >= sq_entries; 0: 4 x sq_entries */
	unsigned max_ops;	/* operations in flight at once per worker; 0: 4096 */
	unsigned buf_count;	/* provided buffers per worker (buffer ring), power of two up to
				 * 32768; 0: none (PEL_IO_REQ_BUFSEL is refused) */
	unsigned buf_size;	/* bytes of each provided buffer, 1..1 MiB; 0 with buf_count: 2048 */
	unsigned flags;		/* PEL_IO_CF_* */
	int sqpoll_cpu;		/* PEL_IO_CF_SQPOLL: the online CPU its kernel thread is pinned to
				 * (IORING_SETUP_SQ_AFF), not a spinning worker's unless
				 * PEL_F_SHARE_CPUS; -1: not pinned (the default) */
	unsigned sqpoll_idle_ms;/* PEL_IO_CF_SQPOLL: ms that thread spins without work before it
				 * sleeps (then one enter wakes it), 1..60000; 0: 100 */
	unsigned files;		/* registered file slots per worker, up to 32768; 0: none
				 * (pel_io_file_register(), PEL_IO_REQ_FIXED_FILE); per-worker
				 * mode only */
	int io_cpu;		/* PEL_IO_DEDICATED: the online CPU the I/O thread is pinned to;
				 * -1: not pinned (the default). It polls while the runtime's
				 * idle strategy says workers poll (spin, backoff's spin) */
	unsigned steer;		/* PEL_IO_DEDICATED: enum pel_io_steer (0: FIXED) */
	unsigned napi_busy_poll_us; /* NAPI busy poll (IORING_REGISTER_NAPI, Linux 6.9): a waiting
				 * enter busy-polls the sockets' NIC queues this long, 1..1000000;
				 * 0: off. Probed: a kernel without it fails pel_io_create() with
				 * -EOPNOTSUPP */
	unsigned reserved[2];	/* zero */
};

/** Operations. */
enum pel_io_opcode {
	PEL_IO_NOP,
	PEL_IO_READ,		/* fd, addr = buffer, len, off (-1: the file position) */
	PEL_IO_WRITE,		/* fd, addr = buffer, len, off (-1: the file position) */
	PEL_IO_RECV,		/* fd, addr = buffer (NULL with BUFSEL), len, msg_flags */
	PEL_IO_SEND,		/* fd, addr = buffer, len, msg_flags */
	PEL_IO_RECVMSG,		/* fd, addr = struct msghdr * (valid until the final callback) */
	PEL_IO_SENDMSG,		/* fd, addr = struct msghdr * (valid until the callback) */
	PEL_IO_ACCEPT,		/* fd; res = the new fd (SOCK_CLOEXEC); MULTISHOT: one a connection */
	PEL_IO_CONNECT,		/* fd, addr = struct sockaddr * (copied), len = its length */
	PEL_IO_CLOSE,		/* fd */
	PEL_IO_TIMEOUT,		/* off = ns from now, or absolute CLOCK_MONOTONIC ns with ABS;
				 * res -ETIME when it fired, -ECANCELED when cancelled */
	PEL_IO_CANCEL,		/* off = the handle of an operation on the same worker; res 0,
				 * -ENOENT (not pending), -EALREADY (running, may still complete) */
	PEL_IO_POLL,		/* fd, len = poll events (POLLIN ...); res = the events that fired */
	PEL__IO_OPS
};

/** Request flags. */
#define PEL_IO_REQ_MULTISHOT	(1u << 0)	/* ACCEPT, RECV, RECVMSG, POLL: one callback per result,
						 * with PEL_IO_F_MORE while it stays armed */
#define PEL_IO_REQ_BUFSEL	(1u << 1)	/* RECV, RECVMSG: the data lands in a provided buffer
						 * of the worker (pel_io_result.buf) */
#define PEL_IO_REQ_ABS		(1u << 2)	/* TIMEOUT: off is an absolute CLOCK_MONOTONIC time */
#define PEL_IO_REQ_FIXED_BUF	(1u << 5)	/* READ, WRITE: addr..addr+len lies in buffer
						 * buf_index that pel_io_buffers_register() gave
						 * this worker's ring (no page pinning per I/O) */
#define PEL_IO_REQ_NO_STEER	(1u << 4)	/* PEL_IO_DEDICATED: this multishot operation's
						 * results stay on the worker named, whatever
						 * pel_io_config.steer says (a TCP stream) */
#define PEL_IO_REQ_FIXED_FILE	(1u << 3)	/* fd is an index that pel_io_file_register() gave
						 * on this worker (IOSQE_FIXED_FILE): no fd lookup.
						 * READ, WRITE, RECV, SEND, RECVMSG, SENDMSG,
						 * ACCEPT, CONNECT, POLL */

/** pel_io_stats().uses: the probed options in use. */
#define PEL_IO_USES_RECV_BUNDLE	(1u << 0)
#define PEL_IO_USES_BUF_INC	(1u << 1)

/** Result flags. */
#define PEL_IO_F_MORE		(1u << 0)	/* the multishot operation stays armed: more to come */
#define PEL_IO_F_BUFFER		(1u << 1)	/* buf holds the data: release it */

/** What a completion callback gets; valid during the callback only (buf: until released). */
struct pel_io_result {
	int32_t res;		/* bytes, a new fd (accept), poll events, or -errno */
	uint32_t flags;		/* PEL_IO_F_* */
	void *buf;		/* PEL_IO_F_BUFFER: the provided buffer holding res bytes */
	uint32_t buf_size;	/* its size */
	unsigned worker;	/* where the operation ran, and the callback runs */
	uint64_t handle;	/* the operation's handle (as pel_io_submit() gave it) */
};

/** A completion callback: runs on the operation's worker, as a task. It may submit more. */
typedef void (*pel_io_cb)(const struct pel_io_result *r, void *arg);

/** One operation, by value: pel_io_submit() copies it. Build one with the pel_io_req_*() below. */
struct pel_io_req {
	uint8_t opcode;		/* enum pel_io_opcode */
	uint8_t flags;		/* PEL_IO_REQ_* */
	uint16_t buf_index;	/* PEL_IO_REQ_FIXED_BUF: the registered buffer addr lies in */
	int fd;
	void *addr;
	uint32_t len;
	int msg_flags;		/* recv/send flags (MSG_*) */
	uint64_t off;
	pel_io_cb cb;		/* not NULL */
	void *arg;
};

/** Defaults: per-worker rings of 256 SQ entries, 4096 operations, no provided buffers. */
void pel_io_config_default(struct pel_io_config *cfg);

/**
 * Set up the I/O layer of @p rt: a ring on every worker, created on the worker's own thread
 * (PEL_IO_DEDICATED: one ring, on the I/O thread pel starts).
 * @param cfg  NULL: the defaults
 * @return 0; -EINVAL a bad field (pel_last_error() names it; with PEL_IO_CF_SQPOLL: sqpoll_cpu
 *         not online, a worker's CPU, or one CPU for several workers' SQ threads, the last two
 *         unless PEL_F_SHARE_CPUS); -EEXIST the runtime has one;
 *         -ENOSYS, -EPERM, -ENOMEM io_uring cannot be used here
 *         (the message names the cause and the fix: kernel.io_uring_disabled, a seccomp filter,
 *         RLIMIT_MEMLOCK; for SQPOLL, EPERM before Linux 5.11 without CAP_SYS_ADMIN);
 *         -EDEADLK from a task; -ESHUTDOWN the runtime is stopping.
 * Threads: any but a worker's. The layer lives until pel_destroy() of the runtime.
 */
int pel_io_create(struct pel_runtime *rt, const struct pel_io_config *cfg, struct pel_io **out);

/**
 * Submit @p req on @p worker's ring; its callback will run on @p worker.
 * @param p       from a thread that is not a worker: its producer handle (the request travels
 *                to the worker in its ring); from a task: NULL
 * @param handle  where to put the operation's handle (for PEL_IO_CANCEL); may be NULL
 * @return 0 accepted; -EINVAL bad worker, opcode, flags or NULL cb (nothing queued);
 *         -EAGAIN the worker's ring is full or max_ops are in flight (retry later);
 *         -ENOBUFS BUFSEL without provided buffers; -ESHUTDOWN the runtime is stopping;
 *         -EPERM NULL @p p outside a task.
 * Threads: a task (p NULL), or the thread owning @p p. No lock, no syscall, no allocation: the
 * submission itself happens in the worker's next loop pass (this same pass from a task on
 * @p worker).
 */
int pel_io_submit(struct pel_io *io, struct pel_producer *p, unsigned worker,
		  const struct pel_io_req *req, uint64_t *handle);

/**
 * Give a provided buffer (PEL_IO_F_BUFFER) back to its worker's buffer ring. From its worker it
 * goes back at once; from any other thread it goes on a lock-free list the worker drains in its
 * next pass. Multishot receives that stopped for want of buffers are re-armed then.
 * @return 0; -EINVAL not a buffer of @p io.
 */
int pel_io_buf_release(struct pel_io *io, void *buf);

/**
 * Put @p fd in a free registered-file slot of @p worker's ring (io_uring_register_files_update()):
 * requests on that worker with PEL_IO_REQ_FIXED_FILE then name it by the index returned. The
 * ring holds its own reference: closing @p fd afterwards leaves the slot usable.
 * @return the index, 0 .. pel_io_config.files - 1; -EINVAL NULL @p io, bad worker or no slots
 *         configured (files 0); -EPERM not called from a task on @p worker (the ring's owner
 *         registers: SINGLE_ISSUER); -ENOSPC every slot is in use; -EBADF @p fd is not an open
 *         fd; -ESHUTDOWN the runtime is stopping; other -errno from the kernel.
 * Threads: a task on @p worker only (from elsewhere, send it a task that calls this).
 * The slots go with the ring when pel_destroy() closes it.
 */
int pel_io_file_register(struct pel_io *io, unsigned worker, int fd);

/**
 * Register @p n buffers (@p iov) with @p worker's ring (io_uring_register_buffers()): the kernel
 * pins their pages once, and READ/WRITE requests on that worker with PEL_IO_REQ_FIXED_BUF and
 * buf_index i then use buffer i without pinning per I/O. The memory must stay valid until
 * pel_io_buffers_unregister() or pel_destroy().
 * @return 0; -EINVAL NULL @p io or @p iov, bad worker, @p n 0 or beyond 16384, or dedicated mode;
 *         -EPERM not from a task on @p worker; -EBUSY it has registered buffers already;
 *         -ENOMEM the pages cannot be pinned (RLIMIT_MEMLOCK); -ESHUTDOWN; other -errno from the
 *         kernel (-EFAULT an unmapped range).
 * Threads: a task on @p worker only.
 */
int pel_io_buffers_register(struct pel_io *io, unsigned worker, const struct iovec *iov,
			    unsigned n);

/** Drop @p worker's registered buffers. @return 0; -EINVAL none registered, else as above. */
int pel_io_buffers_unregister(struct pel_io *io, unsigned worker);

/**
 * Empty slot @p index of @p worker's ring; requests already in the kernel keep their file.
 * @return 0; -EINVAL as pel_io_file_register(), or @p index not a slot in use; -EPERM not from a
 *         task on @p worker; -ESHUTDOWN stopping; other -errno from the kernel.
 * Threads: a task on @p worker only.
 */
int pel_io_file_unregister(struct pel_io *io, unsigned worker, unsigned index);

struct pel_io_stats {
	uint32_t setup_flags;	/* the IORING_SETUP_* flags the ring was created with */
	uint32_t features;	/* IORING_FEAT_* the kernel reported */
	uint64_t submitted;	/* SQEs handed to the kernel */
	uint64_t completed;	/* CQEs reaped */
	uint64_t enters;	/* io_uring_enter() calls */
	uint64_t sq_full;	/* operations that waited for a free SQE (kept, in order) */
	uint64_t cq_overflow;	/* CQEs the kernel had to hold back (then flushed, none lost) */
	uint64_t rearms;	/* multishot operations pel re-armed (after -ENOBUFS or a stop) */
	uint64_t nobufs;	/* of those, stopped for want of provided buffers */
	uint64_t inflight;	/* operations accepted and not finished now */
	uint32_t parks_in_ring;	/* 1: the worker parks in io_uring_enter() (a futex wait on its
				 * parked flag in the ring); 0: it never parks (yields) */
	uint32_t uses;		/* PEL_IO_USES_*: the probed options asked for that this ring
				 * has (the kernel had them) */
	uint64_t sq_wakeups;	/* PEL_IO_CF_SQPOLL: of the enters, those that woke the SQ thread */
	int32_t sqpoll_cpu;	/* the CPU the SQ thread is pinned to; -1 not pinned or no SQPOLL
				 * (setup_flags has IORING_SETUP_SQPOLL when it is on) */
	uint32_t files;		/* registered file slots of this worker (0: none) */
	uint32_t files_used;	/* of those, holding a file now */
	int32_t io_cpu;		/* PEL_IO_DEDICATED: the I/O thread's CPU, -1 not pinned; per-worker
				 * mode: -1. The ring's counters above are then the one ring's,
				 * the same for every worker */
	uint64_t delivered;	/* PEL_IO_DEDICATED: completions handed to this worker */
	uint32_t napi_busy_poll_us; /* NAPI busy poll registered on the ring (0: off) */
	uint32_t fixed_bufs;	/* registered buffers of this worker's ring (0: none) */
};

/** @return 0; -EINVAL bad worker or NULL. Any thread, any time, no lock. */
int pel_io_stats(const struct pel_io *io, unsigned worker, struct pel_io_stats *out);

/* ---- building requests ---- */

static inline struct pel_io_req
pel_io_req_nop(pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_NOP, 0, 0, -1, NULL, 0, 0, 0, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_read(int fd, void *buf, uint32_t len, uint64_t off, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_READ, 0, 0, fd, buf, len, 0, off, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_write(int fd, const void *buf, uint32_t len, uint64_t off, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_WRITE, 0, 0, fd, (void *)buf, len, 0, off, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_recv(int fd, void *buf, uint32_t len, int msg_flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_RECV, 0, 0, fd, buf, len, msg_flags, 0, cb, arg };

	return r;
}

/** Multishot receive into the worker's provided buffers: one callback a datagram or read. */
static inline struct pel_io_req
pel_io_req_recv_multishot(int fd, int msg_flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_RECV, PEL_IO_REQ_MULTISHOT | PEL_IO_REQ_BUFSEL, 0, fd, NULL, 0,
				msg_flags, 0, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_send(int fd, const void *buf, uint32_t len, int msg_flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_SEND, 0, 0, fd, (void *)buf, len, msg_flags, 0, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_recvmsg(int fd, struct msghdr *msg, int msg_flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_RECVMSG, 0, 0, fd, msg, 0, msg_flags, 0, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_sendmsg(int fd, const struct msghdr *msg, int msg_flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_SENDMSG, 0, 0, fd, (void *)msg, 0, msg_flags, 0, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_accept(int fd, unsigned flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_ACCEPT, (uint8_t)flags, 0, fd, NULL, 0, 0, 0, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_connect(int fd, const struct sockaddr *sa, socklen_t len, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_CONNECT, 0, 0, fd, (void *)sa, (uint32_t)len, 0, 0, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_close(int fd, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_CLOSE, 0, 0, fd, NULL, 0, 0, 0, cb, arg };

	return r;
}

/** A timer: @p ns from now, or at CLOCK_MONOTONIC @p ns with PEL_IO_REQ_ABS in @p flags. */
static inline struct pel_io_req
pel_io_req_timeout(uint64_t ns, unsigned flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_TIMEOUT, (uint8_t)flags, 0, -1, NULL, 0, 0, ns, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_cancel(uint64_t handle, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_CANCEL, 0, 0, -1, NULL, 0, 0, handle, cb, arg };

	return r;
}

static inline struct pel_io_req
pel_io_req_poll(int fd, unsigned events, unsigned flags, pel_io_cb cb, void *arg)
{
	struct pel_io_req r = { PEL_IO_POLL, (uint8_t)flags, 0, fd, NULL, events, 0, 0, cb, arg };

	return r;
}

#ifdef __cplusplus
}
#endif

#endif /* PEL_IO_H */
