/* SPDX-License-Identifier: MIT */
/* trace/tp.c - the "pel" LTTng-UST provider's probes, built into libpel: no LD_PRELOAD needed. */
#define TRACEPOINT_CREATE_PROBES
#define TRACEPOINT_DEFINE
#include "trace/tp.h"
