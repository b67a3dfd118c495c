/* SPDX-License-Identifier: MIT */
/*
 * bench/trace.c - "pel-bench trace": what pel's tracepoints cost.
 *
 * Tasks per second of one SPIN worker fed in bursts of 32 (pel-bench-tasks), three ways, reps
 * interleaved: the same sources with every tracepoint compiled out (pel-bench-tasks-notrace),
 * compiled in with no session recording, and recording pel:* into an LTTng session. Then the cost
 * of one recorded event: pel:timer_entry (through PEL_TIMER_START) against a bare LTTng-UST
 * tracepoint with the same payload in the same process, both recording.
 * Ratios: inactive_vs_compiled_out (throughput, higher is better; target >= 0.98),
 * recording_vs_compiled_out, event_cost_vs_bare_lttng (lower is better; target <= 1.2).
 * It starts an lttng-sessiond --no-kernel when none runs (and stops it at the end).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static char dir[PATH_MAX];

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Run "DIR/PROG ARGS", return the number after "key=" in its output, or -1. */
static double
run_get(const char *prog, const char *args, const char *key, const char *key2, double *second)
{
	char cmd[PATH_MAX + 256], line[512];
	double v = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s/%s' %s 2>/dev/null", dir, prog, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *k = strstr(line, key), *k2 = key2 ? strstr(line, key2) : NULL;

		if (k)
			v = strtod(k + strlen(key), NULL);
		if (k2 && second)
			*second = strtod(k2 + strlen(key2), NULL);
	}
	if (pclose(f) != 0)
		return -1;
	return v;
}

static int
session_start(const char *name, const char *events, const char *out)
{
	return sh("lttng create %s --output='%s' >/dev/null 2>&1 && "
		  "lttng enable-event -u '%s' -s %s >/dev/null 2>&1 && "
		  "lttng start %s >/dev/null 2>&1", name, out, events, name, name);
}

static void
session_end(const char *name, const char *out)
{
	sh("lttng stop %s >/dev/null 2>&1; lttng destroy %s >/dev/null 2>&1; rm -rf '%s'", name,
	   name, out);
}

int
pel_bench_trace(const struct pel_bench_opts *o, struct pel_bench_report *rep)
{
	unsigned reps = o->reps ? o->reps : 5;
	unsigned long n = o->items ? (unsigned long)o->items : 20000000ul;
	double out_tps[64], in_tps[64], rec_tps[64], pel_ns, bare_ns = -1;
	char exe[PATH_MAX], args[64], session[64], out[PATH_MAX];
	bool have_lttng, started = false;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len <= 0)
		return 1;
	exe[len] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(exe));
	if (reps > 64)
		reps = 64;
	if (access(strcat(strcpy(out, dir), "/pel-bench-tasks-notrace"), X_OK)) {
		fprintf(stderr, "pel-bench: trace: %s is missing: libpel was built without "
			"tracing (-Dtracing)\n", out);
		return 1;
	}
	have_lttng = sh("command -v lttng >/dev/null && command -v lttng-sessiond >/dev/null") == 0;
	if (have_lttng && sh("lttng list >/dev/null 2>&1") != 0) {
		started = sh("lttng-sessiond --no-kernel --daemonize >/dev/null 2>&1") == 0;
		for (int i = 0; i < 50 && sh("lttng list >/dev/null 2>&1"); i++)
			usleep(100000);
	}
	snprintf(session, sizeof(session), "pelbench-%d", (int)getpid());
	snprintf(out, sizeof(out), "/tmp/pelbench-trace-%d", (int)getpid());
	snprintf(args, sizeof(args), "tasks %d %d %lu", o->cpu_a, o->cpu_b, n);

	printf("trace cpus=%d,%d tasks=%lu reps=%u burst=32 idle=SPIN\n", o->cpu_a, o->cpu_b, n,
	       reps);
	printf("note: tasks/s of one worker; rows: tracepoints compiled out, compiled in with no "
	       "session, compiled in and recording pel:* (LTTng %s)\n",
	       have_lttng ? "session per run" : "not installed: no recording rows");
	fflush(stdout);
	for (unsigned r = 0; r < reps; r++) {
		out_tps[r] = run_get("pel-bench-tasks-notrace", args, "tasks_per_sec=", NULL, NULL);
		in_tps[r] = run_get("pel-bench-tasks", args, "tasks_per_sec=", NULL, NULL);
		rec_tps[r] = -1;
		if (have_lttng && !session_start(session, "pel:*", out)) {
			rec_tps[r] = run_get("pel-bench-tasks", args, "tasks_per_sec=", NULL, NULL);
			session_end(session, out);
		}
		if (out_tps[r] < 0 || in_tps[r] < 0) {
			fprintf(stderr, "pel-bench: trace: a task run failed\n");
			return 1;
		}
		usleep(500000);	/* rest: see README.md */
	}
	double mo = pel_bench_summarise(out_tps, reps).median, mi = pel_bench_summarise(in_tps, reps).median;

	printf("baseline  compiled out    Mtask/s median=%.2f\n", mo / 1e6);
	printf("pel       not recording   Mtask/s median=%.2f\n", mi / 1e6);
	pel_bench_metric(rep, "compiled_out_tasks_per_sec", mo, "tasks/s");
	pel_bench_metric(rep, "inactive_tasks_per_sec", mi, "tasks/s");
	if (rec_tps[0] > 0) {
		double mr = pel_bench_summarise(rec_tps, reps).median;

		printf("pel       recording       Mtask/s median=%.2f (each task: dequeue, "
		       "task_start, task_end and its submit)\n", mr / 1e6);
		pel_bench_metric(rep, "recording_tasks_per_sec", mr, "tasks/s");
		printf("ratio     not recording / compiled out   x=%.3f (inactive_vs_compiled_out, "
		       "higher is better)\n", mi / mo);
		printf("ratio     recording / compiled out       x=%.3f (recording_vs_compiled_out)\n",
		       mr / mo);
		pel_bench_ratio(rep, "recording_vs_compiled_out", mr / mo);
	} else {
		printf("ratio     not recording / compiled out   x=%.3f (inactive_vs_compiled_out, "
		       "higher is better)\n", mi / mo);
	}
	pel_bench_ratio(rep, "inactive_vs_compiled_out", mi / mo);

	if (have_lttng && !session_start(session, "pel:timer_entry,pelbench:bare", out)) {
		pel_ns = run_get("pel-bench-tasks", "events 1000000", "pel_ns=", "bare_ns=",
				 &bare_ns);
		session_end(session, out);
		if (pel_ns > 0 && bare_ns > 0) {
			printf("peer      bare lttng-ust  ns/event median=%.1f\n", bare_ns);
			printf("pel       pel:timer_entry ns/event median=%.1f\n", pel_ns);
			printf("ratio     pel / bare lttng               x=%.3f "
			       "(event_cost_vs_bare_lttng, lower is better)\n", pel_ns / bare_ns);
			pel_bench_metric(rep, "bare_lttng_ns_per_event", bare_ns, "ns");
			pel_bench_metric(rep, "pel_ns_per_event", pel_ns, "ns");
			pel_bench_ratio(rep, "event_cost_vs_bare_lttng", pel_ns / bare_ns);
		}
	}
	if (started)
		sh("pkill -x lttng-sessiond >/dev/null 2>&1");
	return 0;
}
