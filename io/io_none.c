/* SPDX-License-Identifier: MIT */
/* io/io_none.c - pel built without liburing: the I/O calls exist and say so. */
#include <errno.h>
#include <string.h>

#include <pel/io.h>

#include "sched/layer.h"

void
pel_io_config_default(struct pel_io_config *cfg)
{
	if (cfg)
		memset(cfg, 0, sizeof(*cfg));
}

int
pel_io_create(struct pel_runtime *rt, const struct pel_io_config *cfg, struct pel_io **out)
{
	(void)rt;
	(void)cfg;
	if (out)
		*out = NULL;
	return pel__fail(-ENOSYS, "this libpel was built without liburing (install liburing-dev "
			 "and rebuild)");
}

int
pel_io_submit(struct pel_io *io, struct pel_producer *p, unsigned worker,
	      const struct pel_io_req *req, uint64_t *handle)
{
	(void)io;
	(void)p;
	(void)worker;
	(void)req;
	(void)handle;
	return pel__fail(-ENOSYS, "this libpel was built without liburing");
}

int
pel_io_buf_release(struct pel_io *io, void *buf)
{
	(void)io;
	(void)buf;
	return pel__fail(-ENOSYS, "this libpel was built without liburing");
}

int
pel_io_file_register(struct pel_io *io, unsigned worker, int fd)
{
	(void)io;
	(void)worker;
	(void)fd;
	return pel__fail(-ENOSYS, "this libpel was built without liburing");
}

int
pel_io_file_unregister(struct pel_io *io, unsigned worker, unsigned index)
{
	(void)io;
	(void)worker;
	(void)index;
	return pel__fail(-ENOSYS, "this libpel was built without liburing");
}

int
pel_io_buffers_register(struct pel_io *io, unsigned worker, const struct iovec *iov, unsigned n)
{
	(void)io;
	(void)worker;
	(void)iov;
	(void)n;
	return pel__fail(-ENOSYS, "this libpel was built without liburing");
}

int
pel_io_buffers_unregister(struct pel_io *io, unsigned worker)
{
	(void)io;
	(void)worker;
	return pel__fail(-ENOSYS, "this libpel was built without liburing");
}

int
pel_io_stats(const struct pel_io *io, unsigned worker, struct pel_io_stats *out)
{
	(void)io;
	(void)worker;
	(void)out;
	return pel__fail(-ENOSYS, "this libpel was built without liburing");
}
