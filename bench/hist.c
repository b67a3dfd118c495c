/* SPDX-License-Identifier: MIT */
/*
 * bench/hist.c - a log-linear latency histogram with 3 significant digits (see hist.h).
 *
 * Bucket of v: e = max(0, msb(v) - 10), so that v >> e is in [1024, 2048) (or v < 2048 when
 * e = 0); the bucket is e * 1024 + (v >> e). Buckets of e = 0 are the values 0 .. 2047 one by
 * one; each later e adds 1024 buckets of width 2^e.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#define SUB	(1u << PEL_HIST_SUB_BITS)

unsigned
pel_hist_bucket(uint64_t v)
{
	unsigned e;

	if (v < 2 * SUB)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v) - PEL_HIST_SUB_BITS;
	return e * SUB + (unsigned)(v >> e);
}

uint64_t
pel_hist_bucket_low(unsigned b, uint64_t *width)
{
	unsigned e;

	if (b < 2 * SUB) {
		*width = 1;
		return b;
	}
	e = b / SUB - 1;
	*width = UINT64_C(1) << e;
	return (uint64_t)(b - e * SUB) << e;
}

int
pel_hist_init(struct pel_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->count = calloc(PEL_HIST_BUCKETS, sizeof(*h->count));
	if (!h->count)
		return -ENOMEM;
	h->min = UINT64_MAX;
	return 0;
}

void
pel_hist_fini(struct pel_hist *h)
{
	free(h->count);
	h->count = NULL;
}

void
pel_hist_reset(struct pel_hist *h)
{
	memset(h->count, 0, PEL_HIST_BUCKETS * sizeof(*h->count));
	h->n = 0;
	h->min = UINT64_MAX;
	h->max = 0;
	h->sum = 0;
}

void
pel_hist_record(struct pel_hist *h, uint64_t v)
{
	h->count[pel_hist_bucket(v)]++;
	h->n++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void
pel_hist_merge(struct pel_hist *dst, const struct pel_hist *src)
{
	unsigned i;

	for (i = 0; i < PEL_HIST_BUCKETS; i++)
		dst->count[i] += src->count[i];
	dst->n += src->n;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
pel_hist_quantile(const struct pel_hist *h, double q)
{
	uint64_t rank, seen = 0, low, width, v;
	unsigned b;

	if (!h->n)
		return 0;
	if (q >= 1)
		return h->max;
	rank = q > 0 ? (uint64_t)ceil(q * (double)h->n) : 1;
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	for (b = 0; b < PEL_HIST_BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= rank)
			break;
	}
	low = pel_hist_bucket_low(b, &width);
	v = low + width / 2;
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

double
pel_hist_mean(const struct pel_hist *h)
{
	return h->n ? h->sum / (double)h->n : 0;
}
