/* shmkit — the shmfile API (seed 002): fshm_* over the stream core, keeping the
 * seed's NULL / -1 with errno conventions. */
#include <errno.h>
#include <stdio.h>

#include <shmkit/shmfile.h>
#include <shmkit/stream.h>
#include "internal.h"

FILE *fshm_open(const char *name, mode_t mode, int fshm_flags)
{
	unsigned flags;
	FILE *fp;

	/* The seed's flags are public constants of their own; map them rather than assume
	 * they equal the core's bits. */
	if (fshm_flags == FSHM_OWNER) {
		flags = SHMKIT_STREAM_OWNER;
	} else if (fshm_flags == FSHM_GUEST) {
		flags = SHMKIT_STREAM_GUEST;
	} else {
		errno = EINVAL;
		return NULL;
	}
	int r = shmkit_stream_open(name, (unsigned)mode, flags, &fp);
	if (r < 0) {
		shmkit__compat_fail(r);
		return NULL;
	}
	return fp;
}

int fshm_force_destroy(const char *name)
{
	int r = shmkit_stream_destroy(name);
	return r < 0 ? shmkit__compat_fail(r) : 0;
}
