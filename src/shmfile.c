/* shmkit — the shmfile API (seed 002 and the calls its later releases added): fshm_*
 * over the stream core, keeping the seed's NULL / -1 with errno conventions. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmkit/shmfile.h>
#include <shmkit/stream.h>
#include <shmkit/version.h>
#include "internal.h"

/* Where glibc keeps shm_open() objects: a stream's descriptor is a file on its device. */
#define SHM_DIR "/dev/shm"

/* The shmfile release whose whole interface this file provides. */
#define SHMFILE_MAJOR 1
#define SHMFILE_MINOR 1
#define SHMFILE_PATCH 0
/* shmfile_get_version()'s extra: names the implementation after the API level. */
#define SHMFILE_EXTRA "+shmkit." SHMKIT_VERSION_STRING

FILE *fshm_open(const char *name, mode_t mode, int fshm_flags)
{
	unsigned flags;
	FILE *fp;

	/* The seed's flags are public constants of their own; map them rather than assume
	 * they equal the core's bits. */
	switch (fshm_flags & ~FSHM_PERSIST) {
	case FSHM_OWNER:
		flags = SHMKIT_STREAM_OWNER;
		if (fshm_flags & FSHM_PERSIST)
			flags |= SHMKIT_STREAM_PERSIST;
		break;
	case FSHM_GUEST:
		/* shmfile took PERSIST from a guest and ignored it (a guest's close never
		 * removes the stream); the core refuses it, so drop it here. */
		flags = SHMKIT_STREAM_GUEST;
		break;
	default:
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

FILE *fshm_create(const char *name, mode_t mode)
{
	return fshm_open(name, mode, FSHM_OWNER);
}

FILE *fshm_guest_open(const char *name)
{
	return fshm_open(name, 0, FSHM_GUEST);
}

/* The descriptor of a stream fshm_open() returned, with its status, or -errno. A cookie
 * FILE cannot be told apart from others, so accept any FILE whose descriptor is a file
 * on the shared-memory device: that keeps fshm_chmod(stdout, ...) from changing a
 * terminal's or a regular file's mode, which shmfile itself would have done. */
static int stream_fd(FILE *fp, struct stat *st)
{
	struct stat dir;
	if (!fp)
		return -EINVAL;
	int fd = fileno(fp);
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, st) < 0)
		return -errno;
	if (stat(SHM_DIR, &dir) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode) || st->st_dev != dir.st_dev)
		return -EBADF;
	return fd;
}

int fshm_chmod(FILE *fshm_file, mode_t mode)
{
	struct stat st;
	int fd = stream_fd(fshm_file, &st);
	if (fd < 0)
		return shmkit__compat_fail(fd);
	/* Permission bits only, as fshm_open() accepts them. */
	if (mode & ~(mode_t)0777)
		return shmkit__compat_fail(-EINVAL);
	/* fchmod() needs no write access: a read-only guest that owns the object (its
	 * creating user) may change the mode too, and the kernel refuses anyone else. */
	if (fchmod(fd, mode) < 0)
		return shmkit__compat_fail(-errno);
	return 0;
}

int fshm_chgrp(FILE *fshm_file, gid_t group)
{
	struct stat st;
	int fd = stream_fd(fshm_file, &st);
	if (fd < 0)
		return shmkit__compat_fail(fd);
	/* shmfile answered a change to the current group with success, whoever asked;
	 * the kernel would refuse a non-owner (EPERM), so keep shmfile's answer. */
	if (st.st_gid == group)
		return 0;
	/* The owner stays: only the group changes. */
	if (fchown(fd, (uid_t)-1, group) < 0)
		return shmkit__compat_fail(-errno);
	return 0;
}

int fshm_force_destroy(const char *name)
{
	int r = shmkit_stream_destroy(name);
	return r < 0 ? shmkit__compat_fail(r) : 0;
}

void shmfile_get_version(unsigned char *major, unsigned char *minor, unsigned char *patchlevel,
			 const char **extra)
{
	if (major)
		*major = SHMFILE_MAJOR;
	if (minor)
		*minor = SHMFILE_MINOR;
	if (patchlevel)
		*patchlevel = SHMFILE_PATCH;
	if (extra)
		*extra = SHMFILE_EXTRA;
}

void _fshm_printCopyrightVersion(void)
{
	printf("shmfile %d.%d.%d%s\nThe shmfile API, provided by shmkit %s.\n\n", SHMFILE_MAJOR,
	       SHMFILE_MINOR, SHMFILE_PATCH, SHMFILE_EXTRA, SHMKIT_VERSION_STRING);
}
