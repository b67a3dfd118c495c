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

#ifdef __cplusplus
}
#endif

#endif /* PEL_SELF_H */
