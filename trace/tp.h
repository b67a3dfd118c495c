/* SPDX-License-Identifier: MIT */
/*
 * trace/tp.h - pel's LTTng-UST tracepoint provider, "pel".
 *
 * Small fixed-size fields; LTTng's own clock stamps every event. A task is identified by where it
 * came from and its position in that ring: (worker, src, seq), src = producer handle id (user
 * handles are 1..max_producers, 0 is the runtime's own) or, for spawns, 1000000 + the spawning
 * worker. pel:submit / pel:spawn and pel:dequeue carry the same triple; task_start / task_end carry
 * it too. Work that does not come off a task ring starts and ends with task_start / task_end all
 * the same, with src 2000000 for a real-time task (seq: the worker's count of them) and 3000000
 * for an I/O completion callback (seq: the operation's handle). pel:dequeue's queue_wait_ns is the wait the runtime measured from its enqueue stamp, -1
 * when no stamp was written; tools/pel-trace takes it when >= 0, else dequeue - submit of the same
 * triple. Idle events mark transitions only, never each empty pass.
 */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER pel

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "trace/tp.h"

#if !defined(PEL_TRACE_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define PEL_TRACE_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(pel, worker_start,
	TP_ARGS(unsigned, worker, int, cpu),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(int32_t, cpu, cpu)))

TRACEPOINT_EVENT(pel, worker_stop,
	TP_ARGS(unsigned, worker, uint64_t, tasks),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint64_t, tasks, tasks)))

TRACEPOINT_EVENT(pel, submit,
	TP_ARGS(unsigned, worker, unsigned, src, uint64_t, seq),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint32_t, src, src)
		  ctf_integer(uint64_t, seq, seq)))

TRACEPOINT_EVENT(pel, spawn,
	TP_ARGS(unsigned, worker, unsigned, src, uint64_t, seq),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint32_t, src, src)
		  ctf_integer(uint64_t, seq, seq)))

TRACEPOINT_EVENT(pel, ring_full,
	TP_ARGS(unsigned, worker, unsigned, src),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint32_t, src, src)))

TRACEPOINT_EVENT(pel, dequeue,
	TP_ARGS(unsigned, worker, unsigned, src, uint64_t, seq, unsigned, burst, int64_t, wait),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint32_t, src, src)
		  ctf_integer(uint64_t, seq, seq) ctf_integer(uint32_t, burst, burst)
		  ctf_integer(int64_t, queue_wait_ns, wait)))

TRACEPOINT_EVENT(pel, task_start,
	TP_ARGS(unsigned, worker, const void *, fn, unsigned, src, uint64_t, seq),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer_hex(uint64_t, fn, (uintptr_t)fn)
		  ctf_integer(uint32_t, src, src) ctf_integer(uint64_t, seq, seq)))

TRACEPOINT_EVENT(pel, task_end,
	TP_ARGS(unsigned, worker, const void *, fn, unsigned, src, uint64_t, seq),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer_hex(uint64_t, fn, (uintptr_t)fn)
		  ctf_integer(uint32_t, src, src) ctf_integer(uint64_t, seq, seq)))

TRACEPOINT_EVENT(pel, idle_enter,
	TP_ARGS(unsigned, worker),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker)))

TRACEPOINT_EVENT(pel, idle_exit,
	TP_ARGS(unsigned, worker),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker)))

TRACEPOINT_EVENT(pel, park,
	TP_ARGS(unsigned, worker),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker)))

TRACEPOINT_EVENT(pel, unpark,
	TP_ARGS(unsigned, worker),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker)))

TRACEPOINT_EVENT(pel, pool_alloc_fail,
	TP_ARGS(int, worker, uint64_t, obj_size),
	TP_FIELDS(ctf_integer(int32_t, worker, worker) ctf_integer(uint64_t, obj_size, obj_size)))

/* Parallel work (par/): a probe of another worker's stealable queue, and a group's completion. */
TRACEPOINT_EVENT(pel, steal,
	TP_ARGS(unsigned, thief, unsigned, victim, int, ok),
	TP_FIELDS(ctf_integer(uint32_t, thief, thief) ctf_integer(uint32_t, victim, victim)
		  ctf_integer(int32_t, ok, ok)))

TRACEPOINT_EVENT(pel, group_done,
	TP_ARGS(int, worker, unsigned, home),
	TP_FIELDS(ctf_integer(int32_t, worker, worker) ctf_integer(uint32_t, home, home)))

/* TAU-style user timers: id is the address of the name literal, stable for the process. */
TRACEPOINT_EVENT(pel, io_submit,
	TP_ARGS(unsigned, worker, unsigned, op, int, fd, uint64_t, handle),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint32_t, op, op)
		  ctf_integer(int32_t, fd, fd) ctf_integer_hex(uint64_t, handle, handle)))

TRACEPOINT_EVENT(pel, io_complete,
	TP_ARGS(unsigned, worker, unsigned, op, int, res, unsigned, flags, uint64_t, handle),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint32_t, op, op)
		  ctf_integer(int32_t, res, res) ctf_integer_hex(uint32_t, flags, flags)
		  ctf_integer_hex(uint64_t, handle, handle)))

TRACEPOINT_EVENT(pel, timer_entry,
	TP_ARGS(const char *, name, int, worker),
	TP_FIELDS(ctf_integer_hex(uint64_t, id, (uintptr_t)name) ctf_string(name, name)
		  ctf_integer(int32_t, worker, worker)))

TRACEPOINT_EVENT(pel, timer_exit,
	TP_ARGS(const char *, name, int, worker),
	TP_FIELDS(ctf_integer_hex(uint64_t, id, (uintptr_t)name) ctf_integer(int32_t, worker, worker)))

/* Real-time layer (rt/): a task past its deadline (dropped: 1 under PEL_LATE_DROP), a timer's
 * firing and its lateness, a task the stall detector caught running past its threshold. */
TRACEPOINT_EVENT(pel, rt_late,
	TP_ARGS(unsigned, worker, unsigned, prio, uint64_t, lateness_ns, int, dropped),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer(uint32_t, prio, prio)
		  ctf_integer(uint64_t, lateness_ns, lateness_ns)
		  ctf_integer(int32_t, dropped, dropped)))

TRACEPOINT_EVENT(pel, timer_fire,
	TP_ARGS(unsigned, worker, uint64_t, id, uint64_t, lateness_ns),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker) ctf_integer_hex(uint64_t, id, id)
		  ctf_integer(uint64_t, lateness_ns, lateness_ns)))

TRACEPOINT_EVENT(pel, rt_stall,
	TP_ARGS(unsigned, worker, const void *, fn, uint64_t, running_ns),
	TP_FIELDS(ctf_integer(uint32_t, worker, worker)
		  ctf_integer_hex(uint64_t, fn, (uintptr_t)fn)
		  ctf_integer(uint64_t, running_ns, running_ns)))

#endif /* PEL_TRACE_TP_H */

#include <lttng/tracepoint-event.h>
