/* SPDX-License-Identifier: MIT */
/* sched/sysfs.h - where sysfs lists CPUs and NUMA nodes (sched/topology.c, tools/pel-check.c). */
#ifndef PEL_SCHED_SYSFS_H
#define PEL_SCHED_SYSFS_H

/* Relative to the root being read ("" for the live host, a copy under --root or in a test). */
#define PEL__CPU_DIR	"sys/devices/system/cpu"
#define PEL__NODE_DIR	"sys/devices/system/node"

#endif
