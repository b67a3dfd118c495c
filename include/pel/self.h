/* SPDX-License-Identifier: MIT */
/*
 * pel/self.h - @internal which worker the calling thread is: the one thread-local of the runtime.
 * pool.h's inline fast paths read it; the runtime sets it when a worker starts its loop.
 */
#ifndef PEL_SELF_H
#define PEL_SELF_H

#ifdef __cplusplus
extern "C" {
#endif

struct pel_runtime;
struct pel_worker;

/** @internal {NULL, 0, NULL} on threads that are not workers. */
struct pel__tls {
	const struct pel_runtime *rt;	/* the runtime this worker belongs to */
	unsigned id;			/* its worker id */
	struct pel_worker *w;		/* the worker itself (the runtime's private struct) */
};

/* initial-exec: a fixed offset from the thread pointer, no __tls_get_addr call on hot paths */
extern __thread struct pel__tls pel__tls_worker __attribute__((tls_model("initial-exec")));

#ifndef __cplusplus
#include <stdatomic.h>
#include <stdint.h>
/**
 * @internal The TSC from which pel_should_yield() (pel/rt.h) is true for the task this thread
 * runs: UINT64_MAX never (every thread starts so), 0 at once. The worker sets it at each task's
 * start when a layer asks for it; a producer stores 0 into a worker's word when it queues work
 * that outranks the running task.
 */
extern __thread _Atomic uint64_t pel__yield_at __attribute__((tls_model("initial-exec")));
#endif

#ifdef __cplusplus
}
#endif

#endif /* PEL_SELF_H */
