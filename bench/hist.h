/* SPDX-License-Identifier: MIT */
/*
 * bench/hist.h - a log-linear latency histogram with 3 significant digits.
 *
 * Values are uint64_t (ns, say). Below 2048 each value has its own bucket; above, every power of
 * two [2^k, 2^(k+1)) is cut into 1024 equal buckets, so a bucket is at most 1/1024 of its lower
 * edge wide. A quantile is reported as the middle of its bucket, clamped to the smallest and
 * largest value recorded: it is within 1/2048 of the exact sample quantile (relative), better
 * than 3 significant digits, and exact below 2048. Count, min, max and mean are exact.
 *
 * 56320 buckets of 8 bytes (440 KiB) cover every uint64_t; pel_hist_init() allocates them once,
 * pel_hist_record() is a few shifts and an add. A histogram belongs to one thread; merge them
 * with pel_hist_merge() afterwards.
 */
#ifndef PEL_BENCH_HIST_H
#define PEL_BENCH_HIST_H

#include <stdint.h>

#define PEL_HIST_SUB_BITS	10	/* 1024 buckets per power of two */
#define PEL_HIST_BUCKETS	((64 - PEL_HIST_SUB_BITS) * (1u << PEL_HIST_SUB_BITS) + \
				 (1u << PEL_HIST_SUB_BITS))

struct pel_hist {
	uint64_t *count;	/* PEL_HIST_BUCKETS */
	uint64_t n;
	uint64_t min;		/* UINT64_MAX while empty */
	uint64_t max;
	double sum;
};

/** Allocate an empty histogram. @return 0 or -ENOMEM. */
int pel_hist_init(struct pel_hist *h);

/** Free what pel_hist_init() allocated (a zeroed or freed @p h is fine too). */
void pel_hist_fini(struct pel_hist *h);

/** Empty @p h, keeping its buckets. */
void pel_hist_reset(struct pel_hist *h);

/** Record one value. */
void pel_hist_record(struct pel_hist *h, uint64_t v);

/** Add @p src's values to @p dst. */
void pel_hist_merge(struct pel_hist *dst, const struct pel_hist *src);

/**
 * The @p q quantile (0 <= q <= 1) by nearest rank: the value of rank ceil(q * n) (at least 1) in
 * sorted order, to within 1/2048 of it. q = 1 gives the max. @return 0 when empty.
 */
uint64_t pel_hist_quantile(const struct pel_hist *h, double q);

/** The mean of the recorded values (0 when empty). */
double pel_hist_mean(const struct pel_hist *h);

/** The bucket of @p v, 0 .. PEL_HIST_BUCKETS - 1 (for tests). */
unsigned pel_hist_bucket(uint64_t v);

/** The smallest value of bucket @p b and its width (for tests). */
uint64_t pel_hist_bucket_low(unsigned b, uint64_t *width);

#endif /* PEL_BENCH_HIST_H */
