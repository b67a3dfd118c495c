/* SPDX-License-Identifier: MIT */
/* pel/task.h - the task type, shared by pel.h and ring.h (C and C++). */
#ifndef PEL_TASK_H
#define PEL_TASK_H

#ifdef __cplusplus
extern "C" {
#endif

/** A task function: runs once with the arg it was submitted with. */
typedef void (*pel_task_fn)(void *arg);

/** A task, stored by value in ring slots: two pointers, 16 bytes. */
struct pel_task {
	pel_task_fn fn;
	void *arg;
};

#ifdef __cplusplus
}
#endif

#endif /* PEL_TASK_H */
