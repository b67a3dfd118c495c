/* SPDX-License-Identifier: MIT */
/*
 * bench/sim_main.c - pel-sim: the placement simulator's command line (see bench/sim.h).
 *
 *   pel-sim [--policy P[,P...]|all] [--workers N[,N...]] [--load L[,L...]] [--service SPEC]
 *           [--arrivals SPEC] [--requests N] [--warmup N] [--seed S] [--steal-cost T]
 *           [--json FILE] [--csv]
 *
 * Exit status: 0 ran; 1 could not run (out of memory, a file not written); 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hist.h"
#include "sim.h"
#include "trace_gen.h"

#define MAX_LIST	32

static const char usage_text[] =
	"usage: pel-sim [--policy P[,P...]|all] [--workers N[,N...]] [--load L[,L...]]\n"
	"               [--service SPEC] [--arrivals SPEC] [--requests N] [--warmup N]\n"
	"               [--seed S] [--steal-cost T] [--json FILE] [--csv]\n"
	"\n"
	"Simulates placement policies on N identical workers fed one seeded trace; prints the\n"
	"sojourn time (arrival to completion) of each policy at each load.\n"
	"\n"
	"  --policy P      cfcfs (one central FIFO), dfcfs (random worker, its FIFO),\n"
	"                  jsq (shortest queue), p2c (shorter of two random), steal (dfcfs,\n"
	"                  idle workers take the oldest request of the longest queue),\n"
	"                  or all (default all)\n"
	"  --workers N     1 .. 64, or a list 4,16,64 (default 16)\n"
	"  --load L        utilisation rate * mean service / N, 0.01 .. 0.99, or a list\n"
	"                  0.5,0.7,0.9 (default 0.5,0.7,0.9)\n"
	"  --service SPEC  fixed:1us, exp:10us, bimodal:90:5us:55us, bimodal:99.5:0.5us:500us;\n"
	"                  units ns, us, ms, s (default exp:10us)\n"
	"  --arrivals A    poisson, fixed, bursty (bursts of mean 16 at Poisson times), bursty:B\n"
	"                  (default poisson)\n"
	"  --requests N    simulated per policy and load, 1000 .. 1G (default 1M)\n"
	"  --warmup N      first requests left out of the figures (default requests / 20)\n"
	"  --seed S        trace and placement seed, 0 .. 2^64-1 (default 1)\n"
	"  --steal-cost T  extra time a stolen request costs its thief, 0 or a time with a unit\n"
	"                  (default 0)\n"
	"  --json FILE     also write the results as JSON to FILE\n"
	"  --csv           print CSV instead of the table\n"
	"\n"
	"N takes a k, M or G suffix (x1000).\n";

#define usage_exit(...)	pel_cli_usage_exit("pel-sim", usage_text, __VA_ARGS__)

#define parse_count	pel_cli_count

struct opts {
	bool policy[PEL_SIM_NPOLICIES];
	unsigned workers[MAX_LIST];
	unsigned nworkers;
	double load[MAX_LIST];
	unsigned nloads;
	struct pel_service svc;
	struct pel_arrival arr;
	uint64_t requests;
	uint64_t warmup;
	bool warmup_given;
	uint64_t seed;
	double steal_cost;
	const char *json;
	bool csv;
};

static void
parse_policies(const char *arg, struct opts *o)
{
	char buf[256], *tok, *save = NULL;
	int p;

	if (strlen(arg) >= sizeof(buf))
		usage_exit("--policy \"%.40s...\": too long", arg);
	memset(o->policy, 0, sizeof(o->policy));
	snprintf(buf, sizeof(buf), "%s", arg);
	if (!*buf || buf[strlen(buf) - 1] == ',')
		usage_exit("--policy \"%s\": wants cfcfs, dfcfs, jsq, p2c, steal or all", arg);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "all")) {
			for (p = 0; p < PEL_SIM_NPOLICIES; p++)
				o->policy[p] = true;
			continue;
		}
		p = pel_sim_policy_parse(tok);
		if (p < 0)
			usage_exit("--policy %s: unknown \"%s\" (cfcfs dfcfs jsq p2c steal all)",
				   arg, tok);
		o->policy[p] = true;
	}
}

/* A comma-separated list of items, each checked by @p one; count into *n. */
static void
parse_list(const char *opt, const char *arg, unsigned *n,
	   bool (*one)(const char *, void *, unsigned), void *out, const char *want)
{
	char buf[512], *tok, *save = NULL;

	if (strlen(arg) >= sizeof(buf))
		usage_exit("%s \"%.40s...\": too long", opt, arg);
	snprintf(buf, sizeof(buf), "%s", arg);
	*n = 0;
	if (!*buf || buf[strlen(buf) - 1] == ',' || buf[0] == ',' || strstr(buf, ",,"))
		usage_exit("%s \"%s\": wants %s", opt, arg, want);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_LIST)
			usage_exit("%s \"%s\": at most %d values", opt, arg, MAX_LIST);
		if (!one(tok, out, *n))
			usage_exit("%s \"%s\": \"%s\" is not %s", opt, arg, tok, want);
		(*n)++;
	}
}

static bool
one_worker(const char *s, void *out, unsigned i)
{
	uint64_t v;

	if (!parse_count(s, 1, PEL_SIM_MAX_WORKERS, &v))
		return false;
	((unsigned *)out)[i] = (unsigned)v;
	return true;
}

static bool
one_load(const char *s, void *out, unsigned i)
{
	char *end;
	double v;

	if (!((*s >= '0' && *s <= '9') || *s == '.'))
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.01 && v <= 0.99))
		return false;
	((double *)out)[i] = v;
	return true;
}

static void
parse_steal_cost(const char *arg, struct opts *o)
{
	struct pel_service s;
	char spec[128], err[256];

	if (!strcmp(arg, "0")) {
		o->steal_cost = 0;
		return;
	}
	/* the same times as the service specs */
	snprintf(spec, sizeof(spec), "fixed:%s", arg);
	if (strlen(arg) > 100 || pel_service_parse(spec, &s, err, sizeof(err)))
		usage_exit("--steal-cost \"%s\": wants 0 or a time with a unit (200ns, 1us)", arg);
	o->steal_cost = s.a;
}

enum {
	OPT_POLICY = 256,
	OPT_WORKERS,
	OPT_LOAD,
	OPT_SERVICE,
	OPT_ARRIVALS,
	OPT_REQUESTS,
	OPT_WARMUP,
	OPT_SEED,
	OPT_STEAL_COST,
	OPT_JSON,
	OPT_CSV,
	OPT_HELP,
};

static const struct option long_opts[] = {
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "load", required_argument, NULL, OPT_LOAD },
	{ "service", required_argument, NULL, OPT_SERVICE },
	{ "arrivals", required_argument, NULL, OPT_ARRIVALS },
	{ "requests", required_argument, NULL, OPT_REQUESTS },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "steal-cost", required_argument, NULL, OPT_STEAL_COST },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "csv", no_argument, NULL, OPT_CSV },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void
parse_args(int argc, char **argv, struct opts *o)
{
	char err[256];
	int c, p;

	for (p = 0; p < PEL_SIM_NPOLICIES; p++)
		o->policy[p] = true;
	o->workers[0] = 16;
	o->nworkers = 1;
	o->load[0] = 0.5;
	o->load[1] = 0.7;
	o->load[2] = 0.9;
	o->nloads = 3;
	o->svc = (struct pel_service){ .kind = PEL_SERVICE_EXP, .a = 10000 };
	o->arr = (struct pel_arrival){ .kind = PEL_ARRIVAL_POISSON, .burst = 1 };
	o->requests = 1000000;
	o->seed = 1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_POLICY:
			parse_policies(optarg, o);
			break;
		case OPT_WORKERS:
			parse_list("--workers", optarg, &o->nworkers, one_worker, o->workers,
				   "a worker count in 1 .. 64");
			break;
		case OPT_LOAD:
			parse_list("--load", optarg, &o->nloads, one_load, o->load,
				   "a load in 0.01 .. 0.99");
			break;
		case OPT_SERVICE:
			if (pel_service_parse(optarg, &o->svc, err, sizeof(err)))
				usage_exit("--%s", err);
			break;
		case OPT_ARRIVALS:
			if (pel_arrival_parse(optarg, &o->arr, err, sizeof(err)))
				usage_exit("--%s", err);
			break;
		case OPT_REQUESTS:
			if (!parse_count(optarg, 1000, UINT64_C(1000000000), &o->requests))
				usage_exit("--requests wants a count in 1000 .. 1G, got \"%s\"",
					   optarg);
			break;
		case OPT_WARMUP:
			if (!parse_count(optarg, 0, UINT64_MAX, &o->warmup))
				usage_exit("--warmup wants a count, got \"%s\"", optarg);
			o->warmup_given = true;
			break;
		case OPT_SEED:
			if (!parse_count(optarg, 0, UINT64_MAX, &o->seed))
				usage_exit("--seed wants a number in 0 .. 2^64-1, got \"%s\"",
					   optarg);
			break;
		case OPT_STEAL_COST:
			parse_steal_cost(optarg, o);
			break;
		case OPT_JSON:
			o->json = optarg;
			break;
		case OPT_CSV:
			o->csv = true;
			break;
		case OPT_HELP:
			fputs(usage_text, stdout);
			exit(0);
		case ':':
			usage_exit("%s needs a value", argv[optind - 1]);
			break;
		default:
			usage_exit("unknown option \"%s\"", argv[optind - 1]);
			break;
		}
	}
	if (optind < argc)
		usage_exit("unexpected argument \"%s\"", argv[optind]);
	if (!o->warmup_given)
		o->warmup = o->requests / 20;
	if (o->warmup >= o->requests / 2)
		usage_exit("--warmup %" PRIu64 ": keep it under half of --requests (%" PRIu64 ")",
			   o->warmup, o->requests);
}

struct row {
	enum pel_sim_policy policy;
	unsigned workers;
	double load;
	struct pel_sim_result res;
	double model;		/* closed-form mean, ns, or NaN */
	uint64_t q[6];		/* p50, p90, p99, p99.9, p99.99, max; ns */
};

static const double quantiles[] = { 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0 };
static const char *const qnames[] = { "p50", "p90", "p99", "p99.9", "p99.99", "max" };

static void
print_header(const struct opts *o, const char *svc, const char *arr)
{
	if (o->csv) {
		printf("policy,workers,load,util,requests,mean_us,p50_us,p90_us,p99_us,p99.9_us,"
		       "p99.99_us,max_us,model_mean_us,steals\n");
		return;
	}
	printf("pel-sim: service %s (mean %.4g us), arrivals %s, requests %" PRIu64
	       " (warm-up %" PRIu64 "), seed %" PRIu64 ", steal cost %g ns\n",
	       svc, pel_service_mean(&o->svc) / 1e3, arr, o->requests, o->warmup, o->seed,
	       o->steal_cost);
	printf("sojourn times in us; model = closed-form mean (M/M/c, M/G/1) where there is one\n");
	printf("%-6s %3s %5s %6s %9s %9s %9s %9s %9s %9s %9s %9s\n", "policy", "N", "load", "util",
	       "mean", "p50", "p90", "p99", "p99.9", "p99.99", "max", "model");
}

static void
print_row(const struct opts *o, const struct row *r)
{
	char model[32];
	unsigned i;

	if (o->csv) {
		printf("%s,%u,%g,%.4f,%" PRIu64 ",%.4f", pel_sim_policy_name(r->policy), r->workers,
		       r->load, r->res.util, r->res.measured, r->res.mean_sojourn / 1e3);
		for (i = 0; i < 6; i++)
			printf(",%.3f", (double)r->q[i] / 1e3);
		if (isnan(r->model))
			printf(",");
		else
			printf(",%.4f", r->model / 1e3);
		printf(",%" PRIu64 "\n", r->res.steals);
		return;
	}
	if (isnan(r->model))
		snprintf(model, sizeof(model), "-");
	else
		snprintf(model, sizeof(model), "%.2f", r->model / 1e3);
	printf("%-6s %3u %5.2f %6.3f %9.2f", pel_sim_policy_name(r->policy), r->workers, r->load,
	       r->res.util, r->res.mean_sojourn / 1e3);
	for (i = 0; i < 6; i++)
		printf(" %9.2f", (double)r->q[i] / 1e3);
	printf(" %9s\n", model);
}

static void
json_number(FILE *f, const char *name, double v)
{
	fprintf(f, ", \"%s\": ", name);
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

static int
write_json(const char *path, const struct opts *o, const char *svc, const char *arr,
	   const struct row *rows, unsigned nrows)
{
	FILE *f = fopen(path, "w");
	unsigned i, j;
	char name[32];

	if (!f) {
		fprintf(stderr, "pel-sim: %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* svc and arr come from the formatters: no character to escape */
	fprintf(f, "{\"bench\": \"sim\", \"service\": \"%s\", \"arrivals\": \"%s\", "
		"\"requests\": %" PRIu64 ", \"warmup\": %" PRIu64 ", \"seed\": %" PRIu64,
		svc, arr, o->requests, o->warmup, o->seed);
	json_number(f, "steal_cost_ns", o->steal_cost);
	fputs(", \"results\": [", f);
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];

		fprintf(f, "%s{\"policy\": \"%s\", \"workers\": %u", i ? ", " : "",
			pel_sim_policy_name(r->policy), r->workers);
		json_number(f, "load", r->load);
		json_number(f, "util", r->res.util);
		fprintf(f, ", \"measured\": %" PRIu64 ", \"steals\": %" PRIu64, r->res.measured,
			r->res.steals);
		json_number(f, "mean_us", r->res.mean_sojourn / 1e3);
		json_number(f, "mean_wait_us", r->res.mean_wait / 1e3);
		for (j = 0; j < 6; j++) {
			snprintf(name, sizeof(name), "%s_us", qnames[j]);
			json_number(f, name, (double)r->q[j] / 1e3);
		}
		json_number(f, "model_mean_us", r->model / 1e3);
		fputc('}', f);
	}
	fputs("]}\n", f);
	if (fclose(f)) {
		fprintf(stderr, "pel-sim: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct row rows[MAX_LIST * MAX_LIST * PEL_SIM_NPOLICIES];
	struct opts o = { 0 };
	struct pel_hist h;
	struct pel_sim_cfg cfg;
	char svc[64], arr[32];
	unsigned nrows = 0, wi, li, j;
	int p, err;

	parse_args(argc, argv, &o);
	pel_service_format(&o.svc, svc, sizeof(svc));
	pel_arrival_format(&o.arr, arr, sizeof(arr));
	if (pel_hist_init(&h)) {
		fprintf(stderr, "pel-sim: out of memory\n");
		return 1;
	}
	print_header(&o, svc, arr);
	for (wi = 0; wi < o.nworkers; wi++) {
		for (li = 0; li < o.nloads; li++) {
			for (p = 0; p < PEL_SIM_NPOLICIES; p++) {
				struct row *r = &rows[nrows];

				if (!o.policy[p])
					continue;
				cfg = (struct pel_sim_cfg){
					.policy = (enum pel_sim_policy)p,
					.workers = o.workers[wi],
					.load = o.load[li],
					.arr = o.arr,
					.svc = o.svc,
					.requests = o.requests,
					.warmup = o.warmup,
					.seed = o.seed,
					.steal_cost = o.steal_cost,
				};
				pel_hist_reset(&h);
				err = pel_sim_run(&cfg, &h, NULL, NULL, &r->res);
				if (err) {
					fprintf(stderr, "pel-sim: %s, %u workers, load %g: %s\n",
						pel_sim_policy_name(cfg.policy), cfg.workers,
						cfg.load, strerror(-err));
					pel_hist_fini(&h);
					return 1;
				}
				r->policy = cfg.policy;
				r->workers = cfg.workers;
				r->load = cfg.load;
				r->model = pel_sim_model_mean(&cfg);
				for (j = 0; j < 6; j++)
					r->q[j] = pel_hist_quantile(&h, quantiles[j]);
				print_row(&o, r);
				fflush(stdout);
				nrows++;
			}
		}
	}
	pel_hist_fini(&h);
	if (o.json && write_json(o.json, &o, svc, arr, rows, nrows))
		return 1;
	return 0;
}
